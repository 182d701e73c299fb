"""What every child cfbackup starts gets for signals (``execute``): the stop signals held back
while it forks (a Ctrl-C between fork and exec printed a Python traceback from the child), and
let through again before its command runs, with their defaults: duplicity and gpg must stop on
SIGINT and SIGTERM as they always did."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

from cfbackup import execute


def _mask(status: str, field: str) -> int:
    line = next(ln for ln in status.splitlines() if ln.startswith(field + ":"))
    return int(line.split()[1], 16)


def _bit(sig: signal.Signals) -> int:
    return 1 << (int(sig) - 1)


def test_children_run_with_the_stop_signals_let_through_and_at_their_defaults():
    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # as cfbackup's CLI installs one
    try:
        status = execute.capture(["cat", "/proc/self/status"]).stdout
        popened = execute.background(["sleep", "5"])
        try:
            with open(f"/proc/{popened.pid}/status") as handle:
                sleeping = handle.read()
        finally:
            popened.kill()
            popened.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    for seen in (status, sleeping):
        for sig in (signal.SIGINT, signal.SIGTERM):
            assert not _mask(seen, "SigBlk") & _bit(sig), seen
            assert not _mask(seen, "SigIgn") & _bit(sig), seen
    # and this process's own mask is as it was
    assert not signal.pthread_sigmask(signal.SIG_BLOCK, []) & {signal.SIGINT, signal.SIGTERM}


def test_a_stop_signal_while_a_child_is_forked_ends_it_quietly(tmp_path):
    """A Ctrl-C to the whole group while cfbackup starts children: no child prints a
    Python traceback (it did from threading's after-fork hook)."""
    script = tmp_path / "spawner.py"
    script.write_text(
        "import os, signal, sys, threading, time\n"
        f"sys.path.insert(0, {str(sys.path[0])!r})\n"
        "from cfbackup import execute\n"
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
        "try:\n"
        "    time.sleep(30)\n"
        "except KeyboardInterrupt:\n"
        "    os._exit(130)\n"
    )
    for _ in range(5):  # the window is small: several tries
        process = subprocess.Popen(
            [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )  # fmt: skip
        assert process.stdout.readline().strip() == "ready"
        threading.Event().wait(0.3)  # children forked by the hundred meanwhile
        import os

        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 130, err
        assert "Traceback" not in err and "Exception ignored" not in err, err
