"""What every child cfbackup starts gets for signals (``execute``): the stop signals held back
while it forks (a Ctrl-C between fork and exec printed a Python traceback from the child), and
let through again before its command runs, with their defaults: duplicity and gpg must stop on
SIGINT and SIGTERM as they always did. And an interrupted short command (a hook) lets go at
once, even while a child of its own still holds its output open."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time

from cfbackup import execute

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _mask(status: str, field: str) -> int:
    line = next(ln for ln in status.splitlines() if ln.startswith(field + ":"))
    return int(line.split()[1], 16)


def _bit(sig: signal.Signals) -> int:
    return 1 << (int(sig) - 1)


def _script(tmp_path, body: str) -> str:
    path = tmp_path / "script.py"
    path.write_text(
        "import os, signal, sys, threading, time\n"
        f"sys.path.insert(0, {ROOT!r})\n"
        "from cfbackup import execute\n" + body
    )
    return str(path)


def test_children_run_with_the_stop_signals_let_through_and_at_their_defaults():
    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # as cfbackup's CLI installs one
    try:
        status = execute.capture(["cat", "/proc/self/status"]).stdout
        popened = execute.background(["sleep", "5"])
        try:
            deadline = time.monotonic() + 5  # until sleep runs (exec'd: no longer Python)
            while True:
                with open(f"/proc/{popened.pid}/status") as handle:
                    sleeping = handle.read()
                if "Name:\tsleep" in sleeping or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
        finally:
            popened.kill()
            popened.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    for seen in (status, sleeping):
        for sig in (signal.SIGINT, signal.SIGTERM):
            assert not _mask(seen, "SigBlk") & _bit(sig), seen
            assert not _mask(seen, "SigIgn") & _bit(sig), seen
    # and this thread's own mask is as it was
    assert not signal.pthread_sigmask(signal.SIG_BLOCK, []) & {signal.SIGINT, signal.SIGTERM}


def test_a_stop_signal_while_a_child_is_forked_ends_it_quietly(tmp_path):
    """A Ctrl-C to the whole group while cfbackup starts children: no child prints a
    Python traceback (it did from threading's after-fork hook, at the first try or so)."""
    script = _script(
        tmp_path,
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "def spawn():\n"
        "    while True:\n"
        "        try:\n"
        "            execute.capture(['true'])\n"
        "        except BaseException:\n"
        "            return\n"
        "for _ in range(2):\n"
        "    threading.Thread(target=spawn, daemon=True).start()\n"
        "print('ready', flush=True)\n"
        "try:\n"  # short sleeps: the signal may be handled in a spawning thread, and then
        "    for _ in range(600):\n"  # this one only sees it once its sleep ends
        "        time.sleep(0.05)\n"
        "except KeyboardInterrupt:\n"
        "    os._exit(130)\n",
    )
    for _ in range(5):  # the window is small: several tries
        process = subprocess.Popen(
            [sys.executable, script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )  # fmt: skip
        assert process.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # children forked by the hundred meanwhile
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 130, err
        assert "Traceback" not in err and "Exception ignored" not in err, err


def test_an_interrupted_hook_lets_go_at_once_though_its_own_child_holds_the_output(tmp_path):
    """The first attempt at holding the signals read a killed command's output to its end:
    ``sh -c 'sleep 60'`` (a before_backup hook) left its sleep holding the pipe, and SIGTERM
    stopped the scheduler's backup only when the sleep ended. As subprocess.run, the killed
    command is waited for, its output no longer read."""
    script = _script(
        tmp_path,
        "def stop(signum, frame):\n"
        "    raise KeyboardInterrupt\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    execute.capture(['/bin/sh', '-c', 'sleep 60; true'], timeout=120)\n"
        "except KeyboardInterrupt:\n"
        "    os._exit(130)\n"
        "os._exit(0)\n",
    )
    process = subprocess.Popen(
        [sys.executable, script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert process.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # sh and its sleep started
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 130, err
        assert time.monotonic() - started < 10
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the orphaned sleep
        process.wait()


def test_a_child_whose_parent_died_before_the_prctl_ends_before_its_command(tmp_path):
    """No SIGTERM would come to such a child: it must not run its command."""
    marker = tmp_path / "ran"
    not_the_parent = functools.partial(execute._die_with_parent, -1)
    process = subprocess.Popen(["touch", str(marker)], preexec_fn=not_the_parent)
    assert process.wait(timeout=10) == 128 + signal.SIGTERM
    assert not marker.exists()
