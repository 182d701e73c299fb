"""The local servers' child processes (Swift's, Keystone's uwsgi): each in its own process group,
alive while any member of that group lives, stopped group by group with SIGTERM then SIGKILL,
and never a stranger's process when a PID was reused. Standard library only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (all bound at once so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def spawn(argv: Sequence[str], log: str | os.PathLike, env: Mapping[str, str],
          cwd: str | os.PathLike) -> subprocess.Popen:
    """Start ``argv`` as the leader of its own process group, output appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)  # own process group


def group_alive(pgid: int | None, popen: subprocess.Popen | None = None) -> bool:
    """True while the leader or any other member of its process group lives (a forked updater
    sweep may outlive its parent); zombies do not count."""
    if not pgid:
        return False
    if popen is not None and popen.poll() is None:
        return True
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def cmdline(pid: int) -> list[bytes] | None:
    """The argv of ``pid`` (to tell our process from one that reused its PID), or None."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    except OSError:
        return None


def stop_groups(pgids: Sequence[int], alive: Callable[[int], bool], *, grace: float,
                kill_wait: float = 2.0) -> None:
    """SIGTERM the groups, wait up to ``grace`` s (0: no SIGTERM), then SIGKILL what is left
    and wait up to ``kill_wait`` s."""
    targets = list(pgids)
    steps = [(signal.SIGTERM, grace)] if grace > 0 else []
    for sig, wait in steps + [(signal.SIGKILL, kill_wait)]:
        for pgid in targets:
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        end = time.monotonic() + wait
        while time.monotonic() < end and any(alive(p) for p in targets):
            time.sleep(0.05)
        targets = [p for p in targets if alive(p)]
        if not targets:
            break
