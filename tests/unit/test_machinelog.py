"""duplicity's machine log (--log-fd), parsed from real output captured from duplicity 3.2.1."""

from __future__ import annotations

import os
import subprocess
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cfbackup.actions.listing import parse_file_entry
from cfbackup.duplicity import machinelog
from cfbackup.units import pasteable, printable, printable_name

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


# characters a terminal acts on instead of showing: the listing line must not hold them raw
TERMINAL_CONTROLS = ("Cc", "Cf", "Zl", "Zp")
TRICKY = (  # valid UTF-8 names with a C1 control, a separator or a format or bidi control
    "invoice\u202etxt.exe",  # RLO: shown as "invoiceexe.txt"
    "a\u2028b",  # LINE SEPARATOR
    "a\u2029b",  # PARAGRAPH SEPARATOR
    "nel\u0085x",  # C1 NEXT LINE
    "csi\u009b31m",  # C1 CSI: starts a terminal escape sequence
    "\u200eltr\u200frtl\u061calm",
    "\u202aembed\u202b\u202c\u202d",
    "\u2066iso\u2067\u2068\u2069",
    "zero\u200bwidth",
    "lang\U000e0001",  # a format character outside the BMP (LANGUAGE TAG)
    "soft\u00adhyphen",
)


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=1, max_size=24).filter(lambda b: b"\0" not in b))
@example("invoice\u202etxt.exe".encode())
@example("a\u2028b".encode())
@example("nel\u0085x".encode())
def test_a_name_as_list_prints_it_is_its_bytes_again_in_bash(name):
    """What the user pastes into ``restore --path`` is what bash hands cfbackup: the bytes."""
    shown = pasteable(os.fsdecode(name))
    if shown == os.fsdecode(name):  # printed as it is: UTF-8, nothing a terminal acts on
        text = name.decode("utf-8")
        assert not text.startswith("$'")
        assert all(unicodedata.category(c) not in TERMINAL_CONTROLS for c in text), shown
        return
    pasted = subprocess.run(
        ["bash", "-c", f"printf %s {shown}"], capture_output=True, check=True
    ).stdout
    assert pasted == name


@pytest.mark.parametrize("locale", ["C", "POSIX", "C.UTF-8"])
@pytest.mark.parametrize("name", TRICKY)
def test_a_name_with_a_bidi_or_format_control_is_quoted_and_bash_gives_it_back(name, locale):
    """A U+202E shown raw makes the listing lie about the name; quoted, and pasted into bash
    under any locale (a server's cron or ssh session is often C), it is the name again."""
    shown = pasteable(name)
    assert shown.startswith("$'") and shown.isascii() and shown.isprintable(), shown
    pasted = subprocess.run(
        ["bash", "-c", f"printf %s {shown}"],
        capture_output=True,
        check=True,
        env={"PATH": os.environ["PATH"], "LC_ALL": locale},
    ).stdout
    assert pasted == name.encode()


@pytest.mark.parametrize("name", ["café.txt", "日本/報告.pdf", "naïve résumé", "a b's"])
def test_letters_that_are_not_ascii_are_listed_and_named_as_they_are(name):
    assert pasteable(name) == name
    assert printable(name) == name


# ordinary text whose joiners are format characters (Cf): a Persian word with a zero width
# non-joiner, an emoji ZWJ sequence (woman, ZWJ, laptop), a flag of tag characters (Scotland),
# a Devanagari conjunct with a joiner, and an emoji with its variation selector (U+FE0F, Mn)
JOINED = (
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.txt",
    "\U0001f469\u200d\U0001f4bb.png",
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f flag",
    "\u0915\u094d\u200d\u0937",
    "\u2764\ufe0f.jpg",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # a family
    "\U0001f3f3\ufe0f\u200d\U0001f308",  # the rainbow flag: white flag, U+FE0F, ZWJ
    "\U0001f469\U0001f3fd\u200d\U0001f4bb",  # a skin tone before the joiner
    "\U0001f3f4\u200d\u2620\ufe0f",  # the pirate flag
    "1\ufe0f\u20e3",  # a keycap
    "\u0d05\u0d35\u0d28\u0d4d\u200d",  # Malayalam, a chillu ending the name
    "\u09b0\u200d\u09cd\u09af",  # Bengali ra-phala: the joiner before the virama
    "#\ufe0f\u20e3",  # a keycap
    "\u00a9\ufe0f \u203c\ufe0f \u2194\ufe0f",  # emoji whose base is no symbol above U+2000
    "\U0001f441\ufe0f\u200d\U0001f5e8\ufe0f",  # eye in speech bubble
)


@pytest.mark.parametrize("name", JOINED)
def test_the_joiners_of_words_and_emoji_are_shown_as_they_are(name):
    """The docs promise letters as they are: ZWNJ and ZWJ (U+200C, U+200D) and the tag
    characters of emoji flags (U+E0020-U+E007F) are format characters, but text, not
    something a terminal acts on; bidi controls around them are still spelled out."""
    assert pasteable(name) == name
    assert printable(name) == printable_name(name) == name
    assert pasteable(f"{name}\u202e") == f"$'{name}\\xe2\\x80\\xae'"
    assert printable(f"\u2067{name}") == f"\\u2067{name}"


# the same characters where they join nothing and show as nothing: a name that looks like
# another's (report.pdf with tags spelling "evil" after it, a joiner at an end, a tag run that
# is no flag) is quoted and spelled out
HIDDEN = (
    "report.pdf\U000e0065\U000e0076\U000e0069\U000e006c",
    "\u200dreport.pdf",
    "report.pdf\u200c",
    "re\u200d\u200dport.pdf",
    "a \u200d b",
    "\U000e0067\U000e0062\U000e007f.txt",
    "\U0001f3f4\U000e0067\U000e0062.txt",  # a flag without its cancel tag
    "re\u200dport.pdf",  # a joiner between two Latin letters joins nothing
    "re\u200cport.pdf",
    "report.pdf\u200d\ufe0f",  # a variation selector after a letter shows as nothing
    "report.pdf\ufe0f",
    "report.pdf\U000e0100\U000e0101",
    "report.pdf\u034f",  # the combining grapheme joiner
    "report.pdf\u3164",  # a Hangul filler
    "report.pdf\U000e0080",  # an unassigned tag
    "report.pdf\U0001f3f4" + "".join(chr(0xE0000 + ord(c)) for c in "evilpayload") + "\U000e007f",
    "\U0001f3f4" + "".join(chr(0xE0000 + ord(c)) for c in "zz1") + "\U000e007f.txt",  # no flag
    "report1\ufe0f.pdf",  # a selector after a digit that is no keycap
    "\u05e9\u05dc\u200c\u05d5\u05dd.txt",  # Hebrew letters do not join
    "\u2122\u200d\u2122",  # a joiner between two symbols that are no pictographs
    "\u0915\u094d\u200c.txt",  # a non-joiner after a virama with no letter after it
    "re\u2065port.pdf",  # an unassigned default ignorable
    "report.pdf ",  # spaces a paste would lose, or that pass for another
    " report.pdf",
    "report\u00a0.pdf",
)


@pytest.mark.parametrize("name", HIDDEN)
def test_joiners_that_join_nothing_are_spelled_out(name):
    assert pasteable(name).startswith("$'"), pasteable(name)
    if name.strip(" ") == name and "\u00a0" not in name:  # spaces: only list quotes them
        assert printable(name) != name and printable(name).isprintable()


def test_spelling_out_is_idempotent_wherever_joiners_stand():
    """printable_name's output goes through printable again on its way to the terminal: a
    second pass changes nothing, whatever joiners, selectors, marks and tags stand where."""
    import random

    chars = [*"ab .#1", "\u200c", "\u200d", "\ufe0f", "\ufe0e", "\u094d", "\u0915", "\u0627",
             "\u0628", "\U0001f600", "\U0001f3fb", "\U000e0067", "\U000e007f", "\U0001f3f4",
             "\u034f", "\u20e3", "\u202e", "\n"]  # fmt: skip
    rng = random.Random(5)
    for _ in range(20_000):
        text = "".join(rng.choice(chars) for _ in range(rng.randint(0, 8)))
        for spell in (printable, printable_name):
            assert spell(spell(text)) == spell(text), ascii(text)
    assert printable_name("a\ud800b") == "a\\xed\\xa0\\x80b"  # no crash on a lone surrogate


def test_a_name_in_a_message_spells_out_its_newline_and_tab():
    """printable_name (one name inside a message or a listing line): printable, and a
    newline, a tab or a carriage return spelled out, so the name cannot start a line of its
    own that passes for another file's; idempotent, as printable is."""
    cases = {
        "evil\nThu Jan  1 00:00:00 2026 etc/shadow": "evil\\x0aThu Jan  1 00:00:00 2026 etc/shadow",
        "a\tb\rc": "a\\x09b\\x0dc",
        "inv\u202etxt\x1b": "inv\\u202etxt\\x1b",
        os.fsdecode(b"caf\xe9\n"): "caf\\xe9\\x0a",
        "caf\u00e9 \u65e5\u672c": "caf\u00e9 \u65e5\u672c",
    }
    for name, shown in cases.items():
        assert printable_name(name) == shown, name
        assert printable_name(shown) == printable(shown) == shown


def test_messages_spell_out_what_a_terminal_would_act_on():
    """printable (messages, the run history): a bidi override, a line separator, a C1 or an
    ASCII control in a name is written as its escape, so the terminal shows it; a message's
    own lines and tabs stay."""
    cases = {
        "web1: invoice\u202etxt.exe restored to /tmp/x": (
            "web1: invoice\\u202etxt.exe restored to /tmp/x"
        ),
        "a\u2028b\u2029c": "a\\u2028b\\u2029c",
        "nel\u0085 csi\u009b": "nel\\u0085 csi\\u009b",
        "\u200e\u200f\u061c\u2066\u2069\u202a": "\\u200e\\u200f\\u061c\\u2066\\u2069\\u202a",
        "esc\x1b[2J cr\r del\x7f": "esc\\x1b[2J cr\\x0d del\\x7f",
        "lang\U000e0001": "lang\\U000e0001",
        "line one\n\tline two": "line one\n\tline two",
        os.fsdecode(b"caf\xe9\xe2\x80\xae"): "caf\\xe9\\u202e",  # not UTF-8, then an RLO
    }
    for text, shown in cases.items():
        assert printable(text) == shown, text
        assert all(
            unicodedata.category(c) not in TERMINAL_CONTROLS or c in "\n\t" for c in printable(text)
        )


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
