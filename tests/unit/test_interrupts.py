"""A Ctrl-C or SIGTERM at any moment of a run ends it in one line and exit 130: while the
parser is built or the plugins load (a Python traceback before), and while the run's history
row is written (left "running" before, then closed as killed by kill -9). Real processes get
real signals, at points the child itself names: it signals itself there, or announces in a
file that it waits there for the test's signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cfbackup import history

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ``stop_at(module, function, how)``: the real function, preceded ("before") or followed
# ("after") by the stop signal; "wait" writes the marker file and waits for the test's signal
DRIVER = """
import functools, importlib, os, signal, sys, time
sys.path.insert(0, {root!r})
front_end, module_name, function_name, how, sig, marker = sys.argv[1:7]
module = importlib.import_module(module_name)
real = getattr(module, function_name)

stopped = []

def stop():  # the first call only
    if stopped:
        return
    stopped.append(True)
    if how == "wait":
        open(marker, "w").close()
        signal.pause()
    else:
        os.kill(os.getpid(), getattr(signal, sig))

@functools.wraps(real)
def patched(*args, **kwargs):
    if how in ("before", "wait"):
        stop()
    value = real(*args, **kwargs)
    if how == "after":
        stop()
    return value

setattr(module, function_name, patched)
if front_end == "cfbackup":
    from cfbackup.cli import main
else:
    from cfbackup.legacy_cli import main
sys.exit(main(sys.argv[7:]))
"""

STOPPED = "interrupted: the drill of main was stopped before it finished; run the command again."
LINE = "cfbackup: error: interrupted (Ctrl-C or SIGTERM): run the same command again.\n"


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_text("x")
    config = tmp_path / "c.toml"
    config.write_text(
        f'state_dir = "{tmp_path}/state"\n'
        "[profiles.main]\n"
        f'source = "{tmp_path}/src"\n'
        f'target = "file://{tmp_path}/backup"\n'
        f'archive_dir = "{tmp_path}/archive"\n'
        "[profiles.main.encryption]\n"
        'passphrase_env = "T_PASSPHRASE"\n'
    )
    config.chmod(0o600)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(root=ROOT))
    return tmp_path


def _start(setup: Path, point: str, how: str, sig: str = "SIGTERM", front_end="cfbackup",
           argv=None) -> subprocess.Popen:  # fmt: skip
    module, function = point.rsplit(".", 1)
    argv = argv or ["-c", str(setup / "c.toml"), "drill", "main"]
    return subprocess.Popen(
        [sys.executable, str(setup / "driver.py"), front_end, module, function, how, sig,
         str(setup / "here"), *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "T_PASSPHRASE": "pw"}, start_new_session=True,
    )  # fmt: skip


def _end(process: subprocess.Popen, line: str = LINE) -> None:
    try:
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert err == line, err  # one line, no traceback


def _rows(setup: Path) -> list[dict]:
    return history.runs(setup / "state", "main")


@pytest.mark.parametrize(
    "point", ["cfbackup.cli.parser.make_parser", "cfbackup.plugins.make_plugin_manager"]
)
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_signal_while_cfbackup_starts_ends_in_one_line_and_records_nothing(setup, point, sig):
    """As the scheduler's children and systemd's stops meet it: the signal comes from outside,
    once the child says it is there."""
    process = _start(setup, point, "wait")
    deadline = time.monotonic() + 30
    while not (setup / "here").exists():  # the child writes it, then waits for the signal
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.01)
    process.send_signal(getattr(signal, sig))
    _end(process)
    assert _rows(setup) == []


def test_dt_cf_backup_interrupted_while_it_starts_ends_in_the_same_line(setup):
    process = _start(setup, "cfbackup.legacy_cli.make_parser", "before", front_end="dt-cf-backup",
                     argv=["-c", str(setup / "c.toml"), "--backup"])  # fmt: skip
    _end(process)


@pytest.mark.parametrize("how", ["before", "after"])
@pytest.mark.parametrize("point", ["cfbackup.history.record_start", "cfbackup.history._connect"])
def test_a_signal_while_the_run_is_recorded_leaves_an_interrupted_row(setup, point, how):
    """In record_start (its connection opened, before the row's INSERT) and just after it,
    before the run's ``try``: the row is finished as interrupted, not left "running"."""
    process = _start(setup, point, how)
    process.wait(timeout=60)
    rows = _rows(setup)
    assert len(rows) == 1, rows
    assert rows[0]["finished"] is not None, rows
    assert rows[0]["result"] == "interrupted" and rows[0]["exit_code"] == 130, rows
    assert rows[0]["message"] == STOPPED, rows
    _end(process, f"cfbackup: error: {STOPPED}\n")


def test_a_signal_stops_every_profile_of_the_command_not_only_the_running_one(setup):
    """``cfbackup backup`` with no profile runs each in turn: the profile after the one a
    SIGTERM stopped started before, and systemd's stop ended it with SIGKILL."""
    config = setup / "c.toml"
    config.write_text(
        config.read_text()
        + f'[profiles.other]\nsource = "{setup}/src"\ntarget = "file://{setup}/other"\n'
        + f'archive_dir = "{setup}/archive-other"\n[profiles.other.encryption]\nmode = "none"\n'
    )
    process = _start(
        setup, "cfbackup.history.record_start", "after", argv=["-c", str(config), "backup"]
    )
    _end(process, "cfbackup: error: " + STOPPED.replace("drill", "backup").replace(
        "again.", "again (a backup resumes where it stopped).") + "\n")  # fmt: skip
    assert [r["result"] for r in _rows(setup)] == ["interrupted"]
    assert history.runs(setup / "state", "other") == []


def test_a_sigint_ignored_from_the_start_stays_ignored():
    """``cfbackup backup &`` in a script: the shell ignores SIGINT for it, and so did cfbackup
    (Python keeps an inherited ignore); SIGTERM stops it still."""
    from cfbackup import interrupts

    previous = {sig: signal.getsignal(sig) for sig in interrupts.STOP_SIGNALS}
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        interrupts.install()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert callable(signal.getsignal(signal.SIGTERM))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_a_signal_while_the_outcome_is_written_leaves_the_run_as_it_ended(setup):
    """A SIGTERM right after record_finish wrote a success turned it into exit 130 ("run the
    same command again") and skipped the run_finished hooks (no success ping): the run is
    over, and it ends as recorded."""
    process = _start(
        setup,
        "cfbackup.history.record_finish",
        "after",
        argv=["-c", str(setup / "c.toml"), "backup", "main"],
    )
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert [r["result"] for r in _rows(setup)] == ["success"]


def test_a_run_waiting_for_the_lock_is_not_closed_as_killed(setup):
    """Runs waiting for the profile lock (CFBACKUP_LOCK_WAIT) have their rows open: the one
    that got the lock first closed every other as "killed (kill -9, the OOM killer)" while
    they still waited; a row whose cfbackup is gone is still closed."""
    from cfbackup import runner

    state = setup / "state"
    waiting = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "cfbackup", "backup"]
    )
    try:
        alive = history.record_start(state, "main", "backup", {"pid": waiting.pid})
        dead = history.record_start(state, "main", "drill", {"pid": 2**22 + 1})
        current = history.record_start(state, "main", "backup", {"pid": os.getpid()})
        runner._close_abandoned_runs(state, "main", current)
        rows = {r["id"]: r for r in _rows(setup)}
        assert rows[alive]["finished"] is None, rows[alive]
        assert rows[dead]["result"] == "interrupted", rows[dead]
        assert "pid" not in (rows[dead]["stats"] or {}), rows[dead]
    finally:
        waiting.kill()
        waiting.wait()
