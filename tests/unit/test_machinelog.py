"""duplicity's machine log (--log-fd), parsed from real output captured from duplicity 3.2.1.
How a name from it is shown (``units.printable``, ``pasteable``) is in
``test_printable_names.py``."""

from __future__ import annotations

import os

from cfbackup.actions.listing import parse_file_entry
from cfbackup.duplicity import machinelog

COLLECTION = """\
NOTICE 1
. Local and Remote metadata are synchronized, no sync needed.

INFO 3
backend BackendWrapper
archive-dir (. dir)
chain-complete
 full 20261126T022239Z 1 enc
 inc 20261126T022301Z 1 enc
orphaned-sets-num 0
incomplete-sets-num 1
. Collection Status
. -----------------

INFO 10 20261126T022239Z 'sub/b c.txt' reg
. Thu Nov 26 02:22:39 2026 sub/b c.txt

NOTICE 1
. --------------[ Backup Statistics ]--------------
. SourceFiles 5
. SourceFileSize 8205 (8.01 KB)
. TotalDestinationSizeChange 291 (291 bytes)
. Errors 0
.
""".replace("INFO 3\n", "INFO 3 \n")  # duplicity writes a trailing space


def _records(text):
    parser = machinelog.MachineLogParser()
    records = [r for line in text.splitlines(keepends=True) if (r := parser.feed(line))]
    last = parser.close()
    return records + ([last] if last else [])


def test_records_and_multiline_control():
    records = _records(COLLECTION)
    assert [(r.level, r.code) for r in records] == [
        ("NOTICE", 1),
        ("INFO", 3),
        ("INFO", 10),
        ("NOTICE", 1),
    ]
    status = machinelog.parse_collection_status(records[1].extra)
    assert status["chains"] == [
        {
            "state": "complete",
            "sets": [
                {"type": "full", "time": "20261126T022239Z", "volumes": 1, "encrypted": True},
                {"type": "inc", "time": "20261126T022301Z", "volumes": 1, "encrypted": True},
            ],
        }
    ]
    assert status["incomplete_sets"] == 1


def test_file_list_entry_and_statistics():
    records = _records(COLLECTION)
    assert parse_file_entry(records[2].extra) == {
        "time": "20261126T022239Z",
        "path": "sub/b c.txt",
        "type": "reg",
    }
    stats = machinelog.parse_statistics(records[3].message)
    assert stats == {
        "SourceFiles": 5,
        "SourceFileSize": 8205,
        "TotalDestinationSizeChange": 291,
        "Errors": 0,
    }


def test_a_record_of_an_upload_process_says_which_and_keeps_its_message_plain():
    """duplicity's upload processes (``--concurrency``) start each message with ``PoolN: ``:
    the message reads as duplicity's own (a retry is a retry), the process is kept apart."""
    text = (
        "WARNING 0\n. Pool1: Attempt of put Nr. 1 failed. ConnectionError: refused\n\n"
        "WARNING 0\n. Attempt of put Nr. 2 failed. Pool1: not a prefix here\n\n"
    )
    worker, own = _records(text)
    assert (worker.worker, worker.message) == (
        "Pool1",
        "Attempt of put Nr. 1 failed. ConnectionError: refused",
    )
    assert (own.worker, own.message) == (
        "",
        "Attempt of put Nr. 2 failed. Pool1: not a prefix here",
    )


def test_a_failed_upload_in_the_pool_is_reported_by_the_upload_process_s_own_error():
    """duplicity's own error for it only says "in background pool Pool1"; the upload
    process's says what failed, and that is the sentence a failure no pattern knows ends with."""
    from cfbackup.duplicity.failures import classify_failure
    from cfbackup.duplicity.result import DuplicityResult

    text = (
        "WARNING 0\n. Pool1: Attempt of put Nr. 1 failed. OSError: disk on fire\n\n"
        "ERROR 50\n. Pool1: Giving up after 2 attempts. OSError: disk on fire\n\n"
        "ERROR 50\n. Exception BackendException in background pool Pool1: . For trace back "
        "set loglevel to DEBUG and check output for given pool.\n\n"
    )
    error = classify_failure(DuplicityResult(("duplicity", "backup"), 50, _records(text), ()))
    assert "Giving up after 2 attempts. OSError: disk on fire" in error.message, error.message
    assert "background pool" not in error.message


def test_an_error_no_pattern_knows_is_summed_up_by_what_it_says_not_its_first_line():
    """duplicity logs an error it did not expect as a traceback, whose first line says
    nothing; a multi-line error says what it is about after its first line."""
    from cfbackup.duplicity.failures import classify_failure
    from cfbackup.duplicity.result import DuplicityResult

    traceback = (
        'ERROR 30 TypeError\n. Traceback (innermost last):\n.   File "dup_main.py", line 9, '
        "in main\n.  TypeError: unsupported operand type(s) for +: 'int' and 'str'\n\n"
    )
    multiline = (
        "ERROR 23\n. Fatal Error: the chain is odd.\n. The set 20261201T000000Z has no "
        "manifest\n.\x20\n. and cannot be read.\n\n"
    )
    for text, summary in (
        (traceback, "TypeError: unsupported operand type(s) for +: 'int' and 'str'"),
        (multiline, "Fatal Error: the chain is odd. The set 20261201T000000Z has no manifest "
         "and cannot be read."),
    ):  # fmt: skip
        error = classify_failure(DuplicityResult(("duplicity", "backup"), 30, _records(text), ()))
        assert error.message == f"duplicity backup failed with exit code 30: {summary}", (
            error.message
        )


def test_duplicity_s_own_progress_file_cut_short_is_no_unreadable_source_file():
    """A kill -9 can cut duplicity's progress file (archive dir) short; the next run warns with
    the code of a file it cannot stat and starts afresh. No source file was skipped: the run
    is a success, not PARTIAL (CI met it once after test_kill's kill -9)."""
    from cfbackup.duplicity.result import DuplicityResult

    text = (
        "WARNING 9\n. WARNING. cannot read stored progress info from previous backup: Ran "
        "out of input\n\n"
        "WARNING 9 'srv/locked'\n. Error accessing possibly locked file srv/locked\n\n"
    )
    result = DuplicityResult(("duplicity", "backup"), 0, _records(text), ())
    assert result.unreadable == ["srv/locked"]


# duplicity 3.2.1's records for an incremental after a move (manifest.check_dirinfo), captured;
# an empty line of a message is ". " (\x20: a space)
SOURCE_HOST_CHANGED = """\
ERROR 3 'new-host' 'old-host.example'
. Fatal Error: Backup source host has changed.
. Current hostname: new-host
. Previous hostname: old-host.example
.\x20
. Aborting because you may have accidentally tried to backup two different data sets to the \
same remote location, or using the same archive directory.  If this is not a mistake, use the \
--allow-source-mismatch switch to avoid seeing this message

"""
SOURCE_DIRECTORY_CHANGED = """\
ERROR 42 '/srv/restored' '/srv/data'
. Fatal Error: Backup source directory has changed.
. Current directory: /srv/restored
. Previous directory: /srv/data
.\x20

"""


def test_a_changed_source_host_or_folder_is_refused_with_the_fixes_that_work(monkeypatch):
    """The first backup after a restore onto a new machine (or into another folder): one
    sentence with what changed, the full backup (with the user's -c FILE) and duplicity's
    --allow-source-mismatch as a profile would set it; REFUSED, nothing was uploaded."""
    from cfbackup import suggest
    from cfbackup.config import build_config
    from cfbackup.duplicity.failures import classify_failure
    from cfbackup.duplicity.result import DuplicityResult
    from cfbackup.errors import ExitCode

    monkeypatch.setattr(suggest, "_config", "/etc/cf backup.toml")
    config = build_config(
        {"profiles": {"web1": {"source": "/srv/data", "target": "file:///t"}}}, path=None
    )
    profile = config.profiles["web1"]
    full = "cfbackup -c '/etc/cf backup.toml' backup web1 --full"
    for text, code, changed in (
        (SOURCE_HOST_CHANGED, 3, "host has changed (this machine is new-host, the last backup "
         "came from old-host.example)"),
        (SOURCE_DIRECTORY_CHANGED, 42, "directory has changed (the source is /srv/restored now, "
         "the last backup read /srv/data)"),
    ):  # fmt: skip
        result = DuplicityResult(("duplicity", "backup"), code, _records(text), (), profile=profile)
        error = classify_failure(result)
        assert error.exit_code == ExitCode.REFUSED, error.message
        assert (
            f"the backup source {changed}; if the backups at the target are of another "
            "source (another machine or config backs up there), give this profile its own "
            "container or prefix, since a full backup there would let retention delete them; "
            f"otherwise run {full} to start a new chain"
        ) in error.message, error.message
        assert 'extra_options = ["--allow-source-mismatch"]' in error.message, error.message
        assert error.message.endswith(f"(duplicity exit code {code}).")


def test_a_file_list_entry_whose_name_is_not_utf8_keeps_its_bytes_and_a_form_to_paste():
    """duplicity writes the name with util.escape (its real output for these bytes)."""
    from duplicity import util

    for name, shown in (
        (b"weird/caf\xe9.txt", "$'weird/caf\\xe9.txt'"),
        (b"caf\xc3\xa9 it's", None),  # UTF-8, printed as it is
        (b"a\nb\\c", "$'a\\nb\\\\c'"),
    ):
        entry = parse_file_entry(f"20261126T022239Z {util.escape(name)} reg")
        assert os.fsencode(entry["path"]) == name
        assert entry.get("path_shell") == shown


def test_a_carriage_return_in_a_name_does_not_split_its_record():
    """duplicity's messages hold names as they are; only "\\n" ends a line of its log."""
    from duplicity import util

    from cfbackup.duplicity.run import read_records

    name = util.escape(b"a\rb")
    read_fd, write_fd = os.pipe()
    os.write(write_fd, f"INFO 10 20261126T022239Z {name} reg\n. Thu Nov 26 a\rb\n\n".encode())
    os.close(write_fd)
    records: list[machinelog.Record] = []
    read_records(read_fd, records.append)
    assert [(r.level, r.code) for r in records] == [("INFO", 10)], records
    entry = parse_file_entry(records[0].extra)
    assert (entry["path"], entry["type"], entry["path_shell"]) == ("a\rb", "reg", "$'a\\rb'")


def test_an_unreadable_file_is_named_as_list_prints_it():
    """The name of a file duplicity could not read, as ``list`` prints it (units.pasteable),
    for the user to fix its permissions or exclude it: a byte that is not UTF-8 as $'\\xe9',
    a UTF-8 name as it is."""
    from duplicity import util

    from cfbackup.duplicity.result import DuplicityResult

    text = "".join(
        f"WARNING 10 {util.escape(name)}\n. Error accessing possibly locked file x\n\n"
        for name in (b"srv/caf\xe9", "srv/café".encode(), b"srv/plain")
    )
    result = DuplicityResult(("duplicity", "backup"), 0, _records(text), ())
    assert result.unreadable == ["$'srv/caf\\xe9'", "srv/café", "srv/plain"]


def test_unreadable_files_whose_names_look_alike_spelled_out_are_each_counted():
    """An ESC and the four characters \\x1b, a U+202E and the text \\u202e: four files, each
    warned about twice (signatures, then data), are four files, each named unambiguously."""
    from duplicity import util

    from cfbackup.duplicity.result import DuplicityResult

    names = ["a\x1bb", "a\\x1bb", "inv\u202etxt", "inv\\u202etxt"]
    text = "".join(
        f"WARNING 10 {util.escape(name.encode())}\n. Error accessing possibly locked file x\n\n"
        for name in names * 2
    )
    result = DuplicityResult(("duplicity", "backup"), 0, _records(text), ())
    assert result.unreadable == [
        "$'a\\x1bb'",
        "a\\x1bb",
        "$'inv\\xe2\\x80\\xaetxt'",
        "inv\\u202etxt",
    ]


def test_entries_a_restore_could_not_process_are_named_with_duplicity_s_reason():
    """duplicity's restore warns "Error '...' processing NAME" (code 12) and "Skipping NAME
    because of previous error" (13) and exits 0: each entry once (a folder's start and end
    may both fail), with the reason, its name as os.fsdecode gives it (bytes that are not
    UTF-8 kept)."""
    from duplicity import util

    from cfbackup.duplicity.result import DuplicityResult

    mknod = "Error running ['mknod', b'/r/dev/mynull', 'c', '1', '3']"
    text = (
        f"WARNING 12 {util.escape(b'dev/mynull')}\n. Error '{mknod}' processing dev/mynull\n\n"
        f"WARNING 12 {util.escape(b'caf' + bytes([0xE9]))}\n. Error '[Errno 16] Device or "
        "resource busy: x' processing caf\\xe9\n\n"
        f"WARNING 12 {util.escape(b'caf' + bytes([0xE9]))}\n. Error 'again' processing caf\n\n"
        f"WARNING 13 {util.escape(b'caf' + bytes([0xE9]) + b'/in')}\n. Skipping caf/in because "
        "of previous error\n\n"
        "WARNING 12 'src/x'\n. Error 'a patch' patching src/x\n\n"
        "WARNING 10 'unrelated'\n. Error accessing possibly locked file unrelated\n\n"
    )
    result = DuplicityResult(("duplicity", "restore"), 0, _records(text), ())
    assert result.not_processed == {
        "dev/mynull": mknod,
        "caf\udce9": "[Errno 16] Device or resource busy: x",
        "caf\udce9/in": "skipped: the folder it is in could not be restored",
        "src/x": "a patch",
    }
