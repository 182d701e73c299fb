"""One lock per profile, so two runs of a profile never overlap.

An ``flock`` on ``STATE_DIR/locks/PROFILE.lock``: the kernel drops it when the holder dies, even
by kill -9, so a lock left by a dead process is simply taken over. The file records who holds it,
for the message the second run prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from cfbackup.errors import LockHeld


@contextlib.contextmanager
def profile_lock(state_dir: Path, profile: str, action: str) -> Iterator[Path]:
    lock_dir = state_dir / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = lock_dir / f"{profile}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(_held_message(path, profile)) from None
        holder = {
            "pid": os.getpid(),
            "action": action,
            "since": time.time(),
            "argv": " ".join(
                os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:4])
            ),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield path
    finally:
        os.close(fd)


def _held_message(path: Path, profile: str) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    since = holder.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "unknown"
    who = f"PID {holder.get('pid', '?')} ({holder.get('action', '?')}, since {when})"
    return (
        f"profile {profile} is locked by another cfbackup run, {who}: wait for it to finish "
        f"(the lock is released when that process ends)."
    )
