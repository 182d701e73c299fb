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

_EXECVE = re.compile(r'^(\d+) +execve\("((?:[^"\\]|\\.)*)", \[(.*?)\], \[(.*)\]\) = 0$')
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
    records = []
    for line in text.splitlines():
        found = _EXECVE.match(line)
        if found:
            pid, path, argv, env = found.groups()
            records.append(Exec(
                int(pid), _unescape(path), [_unescape(a) for a in _STRING.findall(argv)],
                dict(_unescape(e).partition("=")[::2] for e in _STRING.findall(env)),
            ))
    return records


def run_traced(argv: list[str], *, env: dict, log: Path, timeout: float = 300,
               after_exit: Callable[[], None] = lambda: None) -> Traced:
    """Run ``argv`` under strace: its exit code, output, and every program it (or its
    children) started. Daemons it left (gpg-agent) keep strace waiting: ``after_exit`` ends
    them once the command itself has exited."""
    strace = shutil.which("strace")
    assert strace, "strace is missing (scripts/setup.sh installs it)"
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
            text = log.read_text(errors="replace") if log.exists() else ""
            first = re.match(r"^(\d+) ", text)
            for pid, status in exited.findall(text):
                if first and pid == first[1]:
                    code = int(status)
            if process.poll() is not None and code is None:
                raise AssertionError(f"strace ended first: {process.communicate()}")
            assert time.monotonic() < deadline, f"{argv} did not end within {timeout} s"
            time.sleep(0.1)
    finally:
        after_exit()
        if code is None:  # failed: leave no strace (nor what it runs) behind
            process.kill()
    out, err = process.communicate(timeout=60)
    return Traced(code, out, err, parse(log.read_text(errors="replace")))
