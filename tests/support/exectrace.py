"""Every program a command starts, with its full argv and environment: ``strace -f -e execve``.

Exhaustive where a sampler of /proc is not: a gpg or a hook that lives a millisecond is
recorded all the same, whoever starts it (cfbackup, duplicity, gpg, a shell), by any path, and
nothing in cfbackup is changed or configured for it. Failed execve attempts (a PATH search
trying each folder) are left out: only programs that really ran are records.
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

_LINE = re.compile(r"^(\d+) +(.*)$")
# execve's arguments as strace -v prints them: path, [argv], [environment]
_CALL = re.compile(r'^execve\("((?:[^"\\]|\\.)*)", \[(.*?)\], \[(.*)\]$')
_OK = re.compile(r"\)\s*= 0$")
_UNFINISHED = " <unfinished ...>"
_RESUMED = "<... execve resumed>"
_SUPERSEDED = re.compile(r"^\+\+\+ superseded by execve in pid (\d+) \+\+\+$")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _unescape(text: str) -> str:
    return codecs.escape_decode(text.encode())[0].decode("utf-8", "replace")


@dataclasses.dataclass
class Exec:
    pid: int
    path: str
    argv: list[str]
    env: dict[str, str]

    @property
    def program(self) -> str:
        return os.path.basename(self.path)

    def __str__(self) -> str:
        return f"pid {self.pid}: {' '.join(self.argv)[:300]}"


@dataclasses.dataclass
class Traced:
    returncode: int
    stdout: str
    stderr: str
    execs: list[Exec]


def parse(text: str) -> list[Exec]:
    """Every successful execve in an ``strace -f`` log. When another traced process has an event
    between an execve's start and its end, strace splits it in two lines (``<unfinished ...>``,
    then ``<... execve resumed>) = 0``, busy machines see it often); a thread that is not its
    process's leader resumes under the leader's pid (``+++ superseded by execve in pid N``).
    A resumed execve whose start cannot be found fails: the record must be exhaustive."""
    records = []
    pending: dict[int, str] = {}  # pid -> the arguments of its unfinished execve
    superseded: dict[int, int] = {}  # leader pid -> pid of the thread whose execve replaced it

    def add(pid: int, call: str) -> None:
        found = _CALL.match(call)
        assert found, f"unparsed execve in the strace log: {call[:300]}"
        path, argv, env = found.groups()
        records.append(Exec(
            pid, _unescape(path), [_unescape(a) for a in _STRING.findall(argv)],
            dict(_unescape(e).partition("=")[::2] for e in _STRING.findall(env)),
        ))

    for line in text.splitlines():
        found = _LINE.match(line)
        if not found:
            continue
        pid, rest = int(found[1]), found[2]
        if rest.startswith("execve("):
            if rest.endswith(_UNFINISHED):
                pending[pid] = rest[: -len(_UNFINISHED)]
            elif ok := _OK.search(rest):
                add(pid, rest[: ok.start()])
        elif rest.startswith(_RESUMED):
            call = pending.pop(pid, None)
            if call is None and pid in superseded:
                call = pending.pop(superseded.pop(pid), None)
            if _OK.search(rest):
                assert call is not None, f"execve resumed with no start in the strace log: {line}"
                add(pid, call)
        elif gone := _SUPERSEDED.match(rest):
            superseded[pid] = int(gone[1])
    return records


def run_traced(argv: list[str], *, env: dict, log: Path, timeout: float = 300,
               after_exit: Callable[[], None] = lambda: None) -> Traced:
    """Run ``argv`` under strace: its exit code, output, and every program it (or its
    children) started. Daemons it left (gpg-agent) keep strace waiting: ``after_exit`` ends
    them once the command itself has exited."""
    strace = shutil.which("strace")
    assert strace, "strace is missing (scripts/setup.sh --dev installs it)"
    process = subprocess.Popen(
        [strace, "-f", "-q", "-v", "-s", "1000000", "-e", "trace=execve", "-e", "signal=none",
         "-o", str(log), *argv],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    deadline = time.monotonic() + timeout
    exited = re.compile(r"^(\d+) +\+\+\+ exited with (\d+) \+\+\+$", re.M)  # pids padded
    code = None
    try:
        while code is None:
            ended = process.poll() is not None  # asked before the read: then the log is whole
            text = log.read_text(errors="replace") if log.exists() else ""
            first = re.match(r"^(\d+) ", text)
            for pid, status in exited.findall(text):
                if first and pid == first[1]:
                    code = int(status)
            if ended and code is None:
                raise AssertionError(f"strace ended first: {process.communicate()}")
            assert time.monotonic() < deadline, f"{argv} did not end within {timeout} s"
            time.sleep(0.1)
    finally:
        after_exit()
        if code is None:  # failed: leave no strace (nor what it runs) behind
            process.kill()
    out, err = process.communicate(timeout=60)
    return Traced(code, out, err, parse(log.read_text(errors="replace")))
