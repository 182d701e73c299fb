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


def holder(state_dir: Path, profile: str) -> dict | None:
    """Who holds the profile's lock (``pid``, ``action``, ``since``), or None when nobody does.

    Looks without touching the lock: a probe that took it, even shared and for a moment, would
    refuse a backup starting in that moment. The kernel's table of flock locks
    (``/proc/locks``) says whether the file is held; without it (not Linux), a live holder's
    PID is taken as the answer."""
    path = state_dir / "locks" / f"{profile}.lock"
    try:
        found = os.stat(path)
        recorded = _recorded(path)
    except OSError:
        return None
    file_id = f"{os.major(found.st_dev):02x}:{os.minor(found.st_dev):02x}:{found.st_ino}"
    try:
        with open("/proc/locks") as table:
            held = any(
                len(words) > 5 and words[1] == "FLOCK" and words[5] == file_id
                for words in (line.split() for line in table)
            )
    except OSError:
        held = pid_alive(recorded.get("pid"))
    return (recorded or {"pid": None, "action": None, "since": None}) if held else None


def pid_alive(pid) -> bool:
    """A process with this id runs (another user's too); False for what is not a pid."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recorded(path: Path) -> dict:
    """What the holder wrote into the lock file (empty when unreadable)."""
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _held_message(path: Path, profile: str) -> str:
    holder = _recorded(path)
    since = holder.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "unknown"
    who = f"PID {holder.get('pid', '?')} ({holder.get('action', '?')}, since {when})"
    return (
        f"profile {profile} is locked by another cfbackup run, {who}: wait for it to finish "
        f"(the lock is released when that process ends)."
    )
