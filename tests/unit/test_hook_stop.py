"""A command hook and everything it starts stop with cfbackup. ``sh -c`` got cfbackup's
parent-death signal, but the command's own children (the ``sleep`` below, a real hook's
pg_dump) were left running under PID 1 when cfbackup alone was stopped: SIGTERM (systemd's
``KillMode=process``, a user's ``kill PID``) or kill -9. The real cfbackup runs a real
before_backup hook (a file:// target: nothing is uploaded before the hook), and is signalled
once the hook says its child runs."""

from __future__ import annotations

import contextlib
import os
import pty
import select
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
    # its own process group, in cfbackup's session (the terminal stays within its reach)
    ids = execute.capture(
        [sys.executable, "-c", "import os; print(os.getpgrp() == os.getpid(), os.getsid(0))"],
        own_group=True,
    )
    assert ids.stdout.split() == ["True", str(os.getsid(0))]
    assert groupwatch.GRACE <= 10  # cfbackup waits twice the grace for the watch


@pytest.mark.parametrize(
    "sig", [signal.SIGKILL, signal.SIGUSR1, signal.SIGABRT, signal.SIGPIPE], ids=lambda s: s.name
)
def test_a_command_killed_by_any_signal_is_reported_as_that_signal(sig):
    """As without the watch: -N and an empty tail (SIGKILL is the OOM killer's: the watch
    crashed with a traceback trying to give it a default; SIGUSR1 came back as 138)."""
    command = ["/bin/sh", "-c", f"kill -{sig.name[3:]} $$"]
    alone = execute.capture(command)
    watched = execute.capture(command, own_group=True)
    assert (watched.returncode, watched.tail) == (alone.returncode, alone.tail) == (-sig, ())


def test_a_command_in_its_own_group_gets_the_environment_unchanged(monkeypatch):
    """Under a C locale, the watch's Python start-up adds LC_CTYPE=C.UTF-8 to its own
    environment: the command gets the one cfbackup gave, without it."""
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        monkeypatch.delenv(name, raising=False)
    command = ["/usr/bin/env"]
    alone = execute.capture(command, env={"LANG": "C"}).stdout
    watched = execute.capture(command, env={"LANG": "C"}, own_group=True).stdout
    assert sorted(watched.splitlines()) == sorted(alone.splitlines())
    assert "LC_CTYPE" not in watched


def test_a_stop_signal_ignored_when_cfbackup_started_stays_ignored():
    """``nohup cfbackup backup &``: the terminal's hang-up SIGHUP reaches cfbackup's group,
    the watch with it; ignored by cfbackup, it stopped the hook (a before hook then vetoed the
    backup). The command gets it ignored too."""
    watch = subprocess.Popen(
        [sys.executable, "-I", "-S", execute.GROUPWATCH,
         "/bin/sh", "-c", "kill -HUP $$; sleep 1; echo done"],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )  # fmt: skip
    try:
        time.sleep(0.5)
        os.killpg(watch.pid, signal.SIGHUP)  # the watch's group, as bash's SIGHUP to a job
        out, _ = watch.communicate(timeout=30)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.communicate()
    assert (watch.returncode, out) == (0, "done\n")


CAPTURE_AT_TERMINAL = """
import sys
from cfbackup import execute
try:
    result = execute.capture(["/bin/sh", "-c", sys.argv[1]], own_group=True, timeout=30)
except KeyboardInterrupt:
    print("interrupted")
else:
    print("result", result.returncode, repr(result.stdout), result.tail)
"""


# a job-control shell's part (as bash's at a terminal): cfbackup runs as a job, in a group of
# its own with the terminal; stopped (Ctrl-Z), the shell takes the terminal, says so and
# continues it in the foreground (fg)
AS_A_JOB = """
import os, signal, sys
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    if sys.argv[1] == "fg":
        os.tcsetpgrp(0, os.getpid())
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)
    os.execv(sys.executable, [sys.executable, "-c", *sys.argv[2:]])
try:
    os.setpgid(pid, pid)
except PermissionError:  # the job has run its program already (its own setpgid came first)
    pass
while True:
    _, status = os.waitpid(pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):
        break
    os.tcsetpgrp(0, os.getpgrp())
    print("job stopped", flush=True)
    os.tcsetpgrp(0, pid)
    os.killpg(pid, signal.SIGCONT)
"""


def _at_terminal(command: str, steps: list[tuple[bytes, bytes]], job: str = "") -> str:
    """``capture(own_group=True)`` of ``sh -c COMMAND`` by a process in the foreground of a
    terminal (a pty; ``job`` "fg" or "bg": a job of a shell there): each answer of ``steps`` is
    typed once what it follows was shown; all it shows."""
    pid, master = pty.fork()
    if pid == 0:  # the session leader, in the terminal's foreground group, as at a shell
        try:
            code = [AS_A_JOB, job] if job else []
            os.execv(sys.executable, [sys.executable, "-c", *code, CAPTURE_AT_TERMINAL, command])
        finally:
            os._exit(127)
    shown = b""
    steps = list(steps)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if steps and steps[0][0] in shown:
                os.write(master, steps.pop(0)[1])
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the terminal's last process has ended
                    break
                if not chunk:
                    break
                shown += chunk
    finally:
        os.close(master)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return shown.decode(errors="replace")


def test_a_command_in_its_own_group_can_ask_at_the_terminal():
    """A secret command or hook asking at the terminal (``read </dev/tty``, an ssh or sudo
    prompt): a session of its own had none ("cannot create /dev/tty")."""
    shown = _at_terminal(
        "printf 'name? ' >/dev/tty; read name </dev/tty; echo \"got $name\"",
        [(b"name? ", b"hello\r")],
    )
    assert "result 0 'got hello\\n' ()" in shown, shown


def test_ctrl_c_at_the_terminal_stops_the_command_its_children_and_cfbackup(tmp_path):
    """The command's group has the terminal, so a Ctrl-C reaches it alone: the watch stops
    what is left of it (the background sleep, which sh runs with SIGINT ignored) and passes
    the SIGINT on to cfbackup, which stops as on any Ctrl-C."""
    pid_file = tmp_path / "pid"
    try:
        shown = _at_terminal(
            f"sleep 300 & echo $! > {pid_file}; echo ready >/dev/tty; wait",
            [(b"ready", b"\x03")],
        )
        assert "interrupted" in shown, shown
        grandchild = int(pid_file.read_text())
        _wait_for(lambda: not alive(grandchild), 10, f"the sleep ({grandchild}) to end")
    finally:
        _kill_left(pid_file)


def test_ctrl_z_at_the_terminal_stops_cfbackup_too_and_fg_continues_the_command():
    """Stopped alone, the command kept the terminal: cfbackup's job did not stop, and the shell
    never got the terminal back."""
    shown = _at_terminal(
        'echo ready >/dev/tty; read name </dev/tty; echo "got $name"',
        [(b"ready", b"\x1a"), (b"job stopped", b"hello\r")],
        job="fg",
    )
    assert "job stopped" in shown, shown
    assert "result 0 'got hello\\n' ()" in shown, shown


def test_a_command_reading_the_terminal_in_the_background_stops_cfbackup_until_fg():
    """``cfbackup backup &`` and a command asking at the terminal: stopped alone (SIGTTIN),
    it waited unseen until its hour was up; now cfbackup's job shows as stopped, and fg gives
    the terminal to the command."""
    shown = _at_terminal(
        'read name </dev/tty; echo "got $name"', [(b"job stopped", b"hello\r")], job="bg"
    )
    assert "result 0 'got hello\\n' ()" in shown, shown
