"""Processes as the fault suite sees them through /proc: alive or a zombie, a process group's
members, a run's duplicity child, and a watch on the argv of every process a test starts."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline")
            .read_bytes()
            .replace(b"\0", b" ")
            .decode("utf-8", "replace")
        )
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        for child in children(todo.pop()):
            seen.append(child)
            todo.append(child)
    return seen


def duplicity_child(pid: int, command: str = "") -> int | None:
    """The duplicity process cfbackup ``pid`` runs (for ``command``, e.g. "backup")."""
    for child in children(pid):
        line = cmdline(child)
        if "duplicity" in line and f" {command} " in f"{line} ":
            return child
    return None


class CmdlineWatcher:
    """Samples the argv of every process this test session started (its descendants) while a
    test runs: a secret there is visible to every user of the machine (ps, /proc)."""

    def __init__(self, secrets: list[str], interval: float = 0.2):
        self.interval = interval
        self.leaks: list[str] = []
        self.sampled = 0
        self.seen: set[str] = set()  # every distinct command line sampled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cmdline-watch", daemon=True)
        self._secrets = secrets

    def __enter__(self) -> CmdlineWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.interval):
            for pid in descendants(me):
                line = cmdline(pid)
                self.sampled += 1
                self.seen.add(line)
                for secret in self._secrets:
                    if secret in line:
                        self.leaks.append(f"pid {pid}: {line[:300]}")


    def saw(self, *words: str) -> bool:
        """True when some sampled command line held all ``words`` (the watch really looked
        at the processes it guards)."""
        return any(all(word in line for word in words) for line in self.seen)
