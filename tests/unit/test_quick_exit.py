"""``quick_exit.exit_now`` ends a process as ``sys.exit`` does, without the interpreter's
teardown: the same exit code, output and files, whether it waits for a thread, runs atexit
functions (logging's flush among them), or cannot flush stdout. Each case runs in a child
process twice, once ending with ``sys.exit`` and once with ``exit_now``, and both must agree."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = """
import atexit, concurrent.futures, logging, os, sys, threading, time
sys.path.insert(0, {root!r})
from cfbackup import quick_exit
out, how, code = sys.argv[1], sys.argv[2], eval(sys.argv[3])

def later(name, delay):
    time.sleep(delay)
    with open(os.path.join(out, name), "w") as f:
        f.write(name)

threading.Thread(target=later, args=("thread", 0.3)).start()  # not a daemon: waited for
pool = concurrent.futures.ThreadPoolExecutor(1)  # stopped by threading's own exit hook
pool.submit(later, "pool", 0.2)
atexit.register(later, "atexit", 0)
log = logging.getLogger("t")
log.addHandler(logging.FileHandler(os.path.join(out, "log")))
log.warning("logged")  # the handler is flushed and closed by logging's atexit function
sys.stdout.write("buffered " * 200 + "end")  # not a tty: block-buffered, no newline
sys.stderr.write("to stderr")
time.sleep(float(os.environ.get("CHILD_DELAY", "0")))
if how == "exit_now":
    quick_exit.exit_now(code)
sys.exit(code)
"""


def _run(tmp_path, how: str, code: str, *, close_stdout: bool = False):
    out = tmp_path / how
    out.mkdir()
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=ROOT))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as from cron
    env["CHILD_DELAY"] = "0.5" if close_stdout else "0"
    process = subprocess.Popen(
        [sys.executable, str(script), str(out), how, code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    if close_stdout:  # the reader goes away before the last flush
        process.stdout.close()
        stdout = b""
    else:
        stdout = process.stdout.read()
    stderr = process.stderr.read()
    process.wait(timeout=30)
    files = {p.name: p.read_text() for p in sorted(out.iterdir())}
    return process.returncode, stdout, stderr, files


@pytest.mark.parametrize("code", ["None", "0", "3", "'a message'"])
def test_it_ends_as_sys_exit_does(tmp_path, code):
    ordinary = _run(tmp_path, "sys.exit", code)
    quick = _run(tmp_path, "exit_now", code)
    assert quick == ordinary
    returncode, stdout, stderr, files = quick
    assert returncode == {"None": 0, "0": 0, "3": 3, "'a message'": 1}[code]
    assert stdout.endswith(b"end")
    assert stderr.startswith(b"to stderr")
    assert files == {"atexit": "atexit", "log": "logged\n", "pool": "pool", "thread": "thread"}


def test_a_stdout_nobody_reads_any_more_ends_it_as_sys_exit_does(tmp_path):
    ordinary = _run(tmp_path, "sys.exit", "0", close_stdout=True)
    quick = _run(tmp_path, "exit_now", "0", close_stdout=True)
    assert ordinary[0] == 120  # the interpreter's own code for a failed flush at exit
    assert quick[0] == ordinary[0]
    assert quick[3] == ordinary[3]
    assert b"BrokenPipeError" in quick[2] and b"BrokenPipeError" in ordinary[2]


def test_it_skips_the_teardown(tmp_path):
    """What it is for: the interpreter's freeing of every module and object is left out, so a
    ``__del__`` still pending then never runs (the reason nothing of cfbackup's may rely on one)."""
    script = tmp_path / "child.py"
    script.write_text(
        f"import sys; sys.path.insert(0, {ROOT!r})\n"
        "from cfbackup import quick_exit\n"
        "class Held:\n"
        "    def __del__(self):\n"
        "        print('torn down', flush=True)\n"
        "held = Held()\n"
        "quick_exit.exit_now(int(sys.argv[1]))\n"
    )
    done = subprocess.run([sys.executable, str(script), "4"], capture_output=True, timeout=30)
    assert (done.returncode, done.stdout) == (4, b"")
