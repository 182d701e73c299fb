"""One restore at a time into a folder, whatever its profile or config file.

The profile lock (``lock.py``) keeps one profile from running twice; it cannot see a restore of
another profile, or of the same backup through another config file (another state_dir), into
the same folder: with ``--force`` (or into ``.``) both merged beside each other and exited 0,
the folder an interleaving of two restores. So a restore holds its folder for its whole run:

- an exclusive ``flock`` on a descriptor of the folder itself: nothing is written into the
  user's folder (a lock file would make it "not empty"), every program opening that folder,
  by any path, bind mount or symlink, meets the same lock, and the kernel drops it when the
  restore ends in any way (error, Ctrl-C, SIGTERM, kill -9);
- a shared ``flock`` on each folder above it: a restore into a folder inside another
  restore's folder (or around it) is refused too, while restores into sibling folders (two
  new folders of /srv/restore) run side by side.

A folder that does not exist yet is made first (then locked): the lock needs something to hold,
and a restore fills an empty folder as it fills a new one (duplicity gives it the backup's
mode, owner and times). The folders it made are removed again when the restore fails (only
while empty: never anything restored there by someone else).

Nothing waits: a restore typed at 3 a.m. beside another is told at once (LockHeld, exit 4),
with the folder, the PID of the restore holding it (from the kernel's table, ``/proc/locks``)
and what to do. A file system that cannot lock folders (some network file systems) leaves the
restore unlocked, said in the run log: never refused for it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from cfbackup.errors import LockHeld, RestoreTargetError
from cfbackup.units import printable_name

log = logging.getLogger("cfbackup")
FIX = "wait for it to finish (the lock is released when that process ends), or restore into"


@contextlib.contextmanager
def held(folder: Path) -> Iterator[list[Path]]:
    """Hold ``folder`` (the restore's target folder, absolute) and the folders above it for the
    restore; yields the folders made to hold it (deepest first): removed again, when empty, if
    the restore fails. LockHeld names the restore holding it, before anything is made."""
    with contextlib.ExitStack() as stack:
        # the folders above first: nothing is made inside another restore's folder
        there = _existing(folder)
        for above in reversed([there, *Path(os.path.realpath(there)).parents]):
            if above != folder:
                _shared(stack, above, folder)
        made = _make(folder)
        try:
            # the folders between, made a moment ago (by another restore too, maybe)
            for above in reversed(
                folder.parents[: max(0, len(folder.parts) - len(there.parts) - 1)]
            ):
                _shared(stack, above, folder)
            _exclusive(stack, folder)
        except LockHeld:  # never removed: the restore holding them may be using them
            raise
        except BaseException:
            _remove_empty(made)
            raise
        try:
            yield made
        except BaseException:
            _remove_empty(made)  # still held: no other restore can be using them
            raise


def _existing(path: Path) -> Path:
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _shared(stack: contextlib.ExitStack, above: Path, folder: Path) -> None:
    """A shared lock on ``above``, a folder holding ``folder``; none on a folder this user may
    not read (the folders above it are still held)."""
    try:
        fd = os.open(above, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    stack.callback(os.close, fd)
    _flock(fd, fcntl.LOCK_SH, above, inner=folder)


def _exclusive(stack: contextlib.ExitStack, folder: Path) -> None:
    """The exclusive lock of ``folder``, the one that is the restore's own."""
    fd = _open(folder)
    stack.callback(os.close, fd)
    if not _flock(fd, fcntl.LOCK_EX, folder):
        return
    try:
        info, now = os.fstat(fd), os.lstat(folder)
        same = (info.st_ino, info.st_dev) == (now.st_ino, now.st_dev)
    except OSError:
        same = False
    if not same:  # removed (a failed restore's clean-up) or replaced between open and lock
        raise RestoreTargetError(
            f"{printable_name(str(folder))} was removed or replaced while the restore started: "
            "run the restore again."
        )


def _flock(fd: int, how: int, path: Path, inner: Path | None = None) -> bool:
    """flock ``fd`` without waiting; False when the file system cannot (said in the run log);
    LockHeld when another restore holds it. ``inner``: the restore's folder, inside ``path``."""
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        raise LockHeld(_held_message(fd, path, inner)) from None
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
            raise LockHeld(_held_message(fd, path, inner)) from None
        log.info(
            "the restore's folder %s cannot be locked against another restore into it (%s): "
            "make sure no other restore writes there",
            printable_name(str(path)),
            error.strerror,
        )
        return False


def _open(folder: Path) -> int:
    try:
        return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:  # made a symlink or a file since the checks, unreadable
        raise RestoreTargetError(
            f"{printable_name(str(folder)[:200])}: {error.strerror}: choose another target."
        ) from None


def _make(folder: Path) -> list[Path]:
    """Make ``folder`` and the folders above it that are missing; those made, deepest first.
    (``restore_target.check_target`` found the nearest one there a writable folder.)"""
    missing = []
    path = folder
    while not os.path.lexists(path) and path != path.parent:
        missing.append(path)
        path = path.parent
    made = []
    try:
        for path in reversed(missing):
            try:
                path.mkdir()
            except FileExistsError:  # another restore made it a moment ago: the lock decides
                continue
            made.insert(0, path)
    except OSError as error:  # a name too long, no permission
        _remove_empty(made)
        raise RestoreTargetError(
            f"{printable_name(str(folder)[:200])}: {error.strerror}: choose another target."
        ) from None
    return made


def _remove_empty(made: list[Path]) -> None:
    for path in made:  # deepest first; a folder holding anything stays
        with contextlib.suppress(OSError):
            path.rmdir()


def _held_message(fd: int, path: Path, inner: Path | None) -> str:
    """The one sentence of a restore refused because another one holds ``path``."""
    holders = _holders(fd)
    pids = sorted({pid for pid, _ in holders})
    who = "another restore" + (f" (PID {', '.join(map(str, pids))})" if pids else "")
    shown = printable_name(str(path))
    if inner is not None:  # another restore holds a folder above this one
        return (
            f"{shown} is being restored into by {who}, and {printable_name(str(inner))} is "
            f"inside it: {FIX} a folder outside {shown}."
        )
    if _only_shared(path):  # held by restores into folders inside this one
        places = [p for pid in pids for p in _folders_held(pid, path)]
        if not places:
            return f"a folder inside {shown} is being restored into by {who}: {FIX} another folder."
        return (
            f"{', '.join(printable_name(p) for p in places)} "
            f"{'is' if len(places) < 2 else 'are'} being restored into by {who}, inside "
            f"{shown}: {FIX} another folder."
        )
    return f"{shown} is being restored into by {who}: {FIX} another folder."


def _only_shared(path: Path) -> bool:
    """``path``, which an exclusive lock was refused, is held only shared (by restores into
    folders inside it): a shared lock is granted; taken for a moment and let go at once."""
    try:
        probe = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(probe)


def _holders(fd: int) -> list[tuple[int, str]]:
    """The PIDs holding a flock on ``fd``'s file, with its kind (WRITE, READ), from the
    kernel's table; PIDs it cannot show (another PID namespace: 0) and this process's own
    (two holds in one process, in the tests) left out; empty when unknown (not Linux)."""
    info = os.fstat(fd)
    file_id = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    found = []
    try:
        with open("/proc/locks") as table:
            for line in table:
                words = line.split()
                if "->" in words or len(words) < 6 or words[1] != "FLOCK":
                    continue  # a waiter, or another kind of lock
                if words[5] == file_id and words[4].isdigit():
                    pid = int(words[4])
                    if pid > 0 and pid != os.getpid():
                        found.append((pid, words[3]))
    except OSError:
        return []
    return found


def _folders_held(pid: int, around: Path) -> list[str]:
    """The folders inside ``around`` that process ``pid`` has open (a restore holding its
    folder: its descriptor); empty when they cannot be seen (another user's, as one not root)."""
    prefix = os.path.join(os.path.realpath(around), "")
    found = []
    with contextlib.suppress(OSError):
        for name in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                path = os.readlink(f"/proc/{pid}/fd/{name}")
                if path.startswith(prefix) and os.path.isdir(path) and path not in found:
                    found.append(path)
    return found
