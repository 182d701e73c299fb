"""Progress from duplicity's machine log: the record formats of duplicity 3.2.1, the plain and
rich reporters, and real backups and restores feeding them."""

from __future__ import annotations

import io
import os
import time

from cfbackup import progress
from cfbackup.config.load import build_config
from cfbackup.duplicity import commands
from cfbackup.duplicity.machinelog import Record
from cfbackup.duplicity.run import run_duplicity


def _upload(extra: str) -> Record:
    return Record(level="NOTICE", code=16, extra=extra, message="")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_parse_duplicity_upload_record():
    # NOTICE 16 control line: changed_bytes elapsed percent eta speed stalled
    snap = progress.parse_upload("9900000 3 34 1 3145728 0")
    assert (snap.bytes_done, snap.percent, snap.eta, snap.speed) == (9900000, 34.0, 1.0, 3145728.0)
    assert not snap.final and not snap.stalled
    last = progress.parse_upload("200471303 6 100 0 0 0")  # the final record has no speed
    assert last.final and last.speed == 200471303 // 6
    stalled = progress.parse_upload("10 20 5 999 0 1")
    assert stalled.stalled and stalled.eta is None
    assert progress.parse_upload("garbage") is None
    assert progress.parse_volumes("3 10") == (3, 10) and progress.parse_volumes("42") == (42, None)


def test_plain_reporter_first_periodic_and_last_line():
    out = io.StringIO()
    reporter = progress.PlainReporter("backup", "demo", out, interval=3600)
    reporter.on_record(_upload("0 1 0 1 0 0"))
    reporter.on_record(_upload("1048576 2 50 2 524288 0"))  # within the interval: not shown
    reporter.on_record(Record("NOTICE", 1, "", "some notice"))  # ignored
    reporter.on_record(_upload("2097152 4 100 0 524288 0"))  # the last one always is
    lines = out.getvalue().splitlines()
    assert lines == [
        "cfbackup: backup demo: 0 B uploaded, 0%, ETA 1s",
        "cfbackup: backup demo: 2.0 MiB uploaded, 100%, 512.0 KiB/s",
    ]


def test_restore_volumes_and_rich_bar():
    terminal = FakeTerminal()
    reporter = progress.make_reporter("restore", "demo", stream=terminal)
    assert isinstance(reporter, progress.RichReporter)
    reporter.on_record(Record("INFO", 2, "1 4", "Processed volume 1 of 4"))
    reporter.on_record(Record("INFO", 2, "4 4", "Processed volume 4 of 4"))
    reporter.close()
    shown = terminal.getvalue()
    assert "restore demo" in shown and "volume 4 of 4, 100%" in shown


def test_who_gets_a_reporter():
    assert progress.make_reporter("backup", "p", quiet=True) is None
    assert progress.make_reporter("verify", "p") is None
    plain = progress.make_reporter("backup", "p", stream=io.StringIO())
    assert isinstance(plain, progress.PlainReporter)
    assert plain.duplicity_flags("backup") == ("--progress", "--progress-rate=1")
    assert plain.duplicity_flags("full") == ("--progress", "--progress-rate=1")
    assert plain.duplicity_flags("restore") == ("--verbosity=info",)
    assert plain.duplicity_flags("restore", "debug") == ()  # never less verbose
    assert plain.duplicity_flags("remove-all-but-n-full") == ()


def _file_profile(tmp_path, source, **more):
    """Profile "demo": ``source`` to a file:// target, unencrypted, its state under tmp_path."""
    config = build_config(
        {
            "state_dir": str(tmp_path / "state"),
            "profiles": {
                "demo": {
                    "source": str(source),
                    "target": f"file://{tmp_path / 'target'}",
                    "archive_dir": str(tmp_path / "archive"),
                    "encryption": {"mode": "none"},
                    **more,
                }
            },
        },
        path=None,
    )
    return config.profile("demo")


def test_real_duplicity_backup_and_restore_feed_the_reporter(tmp_path):
    """The flags a reporter asks for work with the installed duplicity, and its records parse."""
    source = tmp_path / "src"
    source.mkdir()
    for i in range(3):
        (source / f"f{i}").write_bytes(os.urandom(700_000))
    profile = _file_profile(tmp_path, source, volsize=1)

    out = io.StringIO()
    reporter = progress.PlainReporter("backup", "demo", out, interval=0)
    run_duplicity(
        lambda fd: (
            commands.backup_argv(profile, full=True, log_fd=fd) + reporter.duplicity_flags("full")
        ),
        {},
        on_record=reporter.on_record,
    )
    lines = out.getvalue().splitlines()
    assert lines and lines[-1].startswith("cfbackup: backup demo: 2.0 MiB uploaded, 100%")

    out = io.StringIO()
    reporter = progress.PlainReporter("restore", "demo", out, interval=0)
    run_duplicity(
        lambda fd: (
            commands.restore_argv(profile, str(tmp_path / "restored"), log_fd=fd)
            + reporter.duplicity_flags("restore")
        ),
        {},
        on_record=reporter.on_record,
    )
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("cfbackup: restore demo: volume 1 of 3, 33%")
    assert lines[-1] == "cfbackup: restore demo: volume 3 of 3, 100%"
    assert (tmp_path / "restored" / "f2").read_bytes() == (source / "f2").read_bytes()


def test_plain_lines_from_a_real_backup_and_quiet(setup):
    profile = setup.profile("demo")
    (setup.root / "src-demo" / "big.bin").write_bytes(os.urandom(3_000_000))
    profile["volsize"] = 1
    setup.write()
    result = setup.cli("backup", check=0)
    lines = [line for line in result.stderr.splitlines() if line.startswith("cfbackup: backup")]
    assert lines, result.stderr
    assert lines[-1].startswith("cfbackup: backup demo: ") and " 100%" in lines[-1]
    assert "backup of demo done" in result.stdout

    quiet = setup.cli("--quiet", "backup", "--full", check=0)
    assert "cfbackup: backup demo" not in quiet.stderr
    assert "backup of demo done" in quiet.stdout


def test_a_backup_with_progress_ends_when_its_uploads_do(tmp_path):
    """duplicity joins its progress thread at the end of a backup; unpatched, that thread
    finished its --progress-rate sleep first (``patches/progress_stop.py``)."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "f").write_bytes(os.urandom(300_000))
    profile = _file_profile(tmp_path, source)
    out = io.StringIO()
    reporter = progress.PlainReporter("backup", "demo", out, interval=0)
    started = time.monotonic()
    run_duplicity(
        lambda fd: (
            commands.backup_argv(profile, full=True, log_fd=fd)
            + reporter.duplicity_flags("full")
            + ("--progress-rate=120",)  # the last one wins: a sleep no backup should wait for
        ),
        {},
        on_record=reporter.on_record,
    )
    assert time.monotonic() - started < 60
    assert out.getvalue().splitlines()[-1].startswith("cfbackup: backup demo: ")
