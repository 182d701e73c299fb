"""A command hook and everything it starts stop with cfbackup. ``sh -c`` got cfbackup's
parent-death signal, but the command's own children (the ``sleep`` below, a real hook's
pg_dump) were left running under PID 1 when cfbackup alone was stopped: SIGTERM (systemd's
``KillMode=process``, a user's ``kill PID``) or kill -9. The real cfbackup runs a real
before_backup hook (a file:// target: nothing is uploaded before the hook), and is signalled
once the hook says its child runs."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faults.procwatch import alive

from cfbackup import execute, groupwatch

MAIN = "import sys; from cfbackup.cli import main; sys.exit(main(sys.argv[1:]))"
# the grandchild: a sleep in the background of the hook's shell, its pid in a file
HOOK = "sleep 300 & echo $! > {pid}; touch {marker}; wait"


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.05)


def _kill_left(pid_file: Path) -> None:
    """The grandchild, should the test fail: never left running for the next test."""
    if pid_file.exists() and pid_file.read_text().strip():
        pid = int(pid_file.read_text())
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def _config(tmp_path: Path, where: str) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_text("x")
    command = HOOK.format(pid=tmp_path / "pid", marker=tmp_path / "marker")
    if where == "hook":
        encryption = 'passphrase_env = "T_PASSPHRASE"\n'
        hooks = f"[profiles.main.command_hooks]\nbefore_backup = [{command!r}]\n"
    else:  # a secret command, read as the config loads
        encryption = f"passphrase_command = {shlex.join(['/bin/sh', '-c', command])!r}\n"
        hooks = ""
    config = tmp_path / "c.toml"
    config.write_text(
        f'state_dir = "{tmp_path}/state"\n'
        "[profiles.main]\n"
        f'source = "{tmp_path}/src"\n'
        f'target = "file://{tmp_path}/backup"\n'
        f'archive_dir = "{tmp_path}/archive"\n'
        "[profiles.main.encryption]\n" + encryption + hooks
    )
    config.chmod(0o600)
    return config


@pytest.mark.parametrize("where", ["hook", "passphrase_command"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_hook_and_its_children_stop_when_cfbackup_alone_is_stopped(tmp_path, sig, where):
    """The same for a secret command (``*_command``), a user's command too."""
    setup = tmp_path
    config = _config(tmp_path, where)
    process = subprocess.Popen(
        [sys.executable, "-c", MAIN, "-c", str(config), "backup", "main"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "T_PASSPHRASE": "pw"}, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for(lambda: (setup / "marker").exists() or process.poll() is not None, 60, "the hook")
        assert process.poll() is None, process.communicate()
        grandchild = int((setup / "pid").read_text())
        assert alive(grandchild)
        process.send_signal(sig)  # cfbackup alone, not its group
        _, err = process.communicate(timeout=60)
        _wait_for(lambda: not alive(grandchild), 10, f"the hook's sleep ({grandchild}) to end")
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        _kill_left(setup / "pid")
    if sig == signal.SIGTERM:  # it unwound as a SIGTERM makes it, at once
        assert process.returncode == 130, err
        assert "interrupted" in err, err


def test_a_timed_out_command_in_its_own_group_is_stopped_whole(tmp_path):
    """The hooks' hour-long timeout, shortened: the command's children go with it."""
    pid_file = tmp_path / "pid"
    command = f"sleep 300 & echo $! > {pid_file}; wait"
    try:
        with pytest.raises(execute.CfbackupError, match="did not finish within 1 s"):
            execute.capture(["/bin/sh", "-c", command], timeout=1, own_group=True)
        grandchild = int(pid_file.read_text())
        _wait_for(lambda: not alive(grandchild), 10, f"the sleep ({grandchild}) to end")
    finally:
        _kill_left(pid_file)


def test_a_command_in_its_own_group_keeps_its_output_stdin_and_exit_code():
    result = execute.capture(
        ["/bin/sh", "-c", 'read line; echo "got $line"; echo oops >&2; exit 3'],
        input_text="hello\n",
        own_group=True,
    )
    assert (result.returncode, result.stdout, result.tail) == (3, "got hello\n", ("oops",))
    # killed by a signal: reported as the command itself would be
    killed = execute.capture(["/bin/sh", "-c", "kill -TERM $$"], own_group=True)
    assert killed.returncode == -signal.SIGTERM
    # its own session: a hook never meets cfbackup's terminal or process group
    ids = execute.capture(
        [sys.executable, "-c", "import os; print(os.getsid(0) == os.getpid() == os.getpgrp())"],
        own_group=True,
    )
    assert ids.stdout.strip() == "True"
    assert groupwatch.GRACE <= 10  # cfbackup waits twice the grace for the watch
