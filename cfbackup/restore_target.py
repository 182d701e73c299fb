"""What a restore checks of its TARGET on disk before anything downloads: a non-empty folder
without ``--force``, a symlinked target, a symlink or a file in the way of ``--path``, a
read-only filesystem; and the messages that name what is in the way, shared with
``restore --force``'s merge (``restore_merge.py``). Kept apart from ``actions/restore.py`` (the
action's flow) because it is plain file-system work, tested on folders made by the tests.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from cfbackup import suggest
from cfbackup.duplicity.commands import STAGE_PREFIX
from cfbackup.errors import NoSpaceLeft, RestoreTargetError
from cfbackup.lock import pid_alive
from cfbackup.units import printable_name

log = logging.getLogger("cfbackup")

# the command that runs the same restore into another target (a path, as given), to paste as it
# is printed; None when there is none to give
Again = Callable[[str], "str | None"]


def check_target(
    target: Path,
    destination: Path,
    force: bool,
    *,
    rel: str | None = None,
    exact: bool = False,
    folder: bool = False,
    again: Again | None = None,
) -> None:
    """Refuse, before anything is downloaded, a destination the restore cannot use. ``rel``:
    the one path restored (``--path``), at ``destination``; ``exact``: ``destination`` is its
    own path (``dt-cf-backup --restore-file FILE DEST``), not ``target / rel``; ``folder``:
    ``rel`` is known to be a folder (``dt-cf-backup --restore-dir``), so a file at
    ``destination`` is refused as the whole backup's target is; ``again``:
    ``check_path_to``'s."""
    check_path_to(target, destination, again)
    shown = printable_name(str(destination))
    found = _existing(destination)
    if found != destination:  # what is missing is made; what holds it must be a folder
        if not found.is_dir():
            raise _in_the_way(found, destination)
        _check_writable(found, destination)
        return
    if destination.is_dir() and not destination.is_symlink():
        blocking = [e for e in destination.iterdir() if not stale_stage(e)] if not force else []
        if blocking:
            raise RestoreTargetError(
                _restores_left(destination, blocking) or _not_empty(destination, rel, exact)
            )
        _check_writable(destination, destination)
        return
    if not rel or folder:  # a folder there: --force would only refuse it after downloading
        raise RestoreTargetError(
            _one_clash(destination, f"{_kind(destination)} where the backup has a folder")
        )
    if not force:
        raise RestoreTargetError(
            f"{shown} already exists: choose another target, or add --force to overwrite it."
        )
    _check_writable(destination.parent, destination)


def stale_stage(entry: Path) -> bool:
    """``entry`` is a staging folder a restore killed with -9 left (its pid is dead): it holds
    only what that restore copied from the backup, which the next restore there removes
    (``restore_merge.remove_stale``) and restores again; so it leaves a folder empty. Never
    one a failed merge kept on purpose (``.cfbackup-restore-kept-*``), nor a folder of the
    user's set aside during a merge (``.cfbackup-restore-old-*``: its only copy)."""
    if not entry.name.startswith(STAGE_PREFIX):
        return False
    pid = entry.name[len(STAGE_PREFIX) :].split("-", 1)[0]
    return pid.isdigit() and not pid_alive(int(pid)) and entry.is_dir() and not entry.is_symlink()


def _restores_left(destination: Path, entries: list[Path]) -> str | None:
    """The refusal of a folder that holds nothing but folders of cfbackup's restores (hidden:
    ``ls`` shows the folder empty), naming each and what to do with it; None when the user's
    own files are there too (the usual sentence)."""
    said, tails = [], []
    for entry in entries:
        kind = _restores_folder(entry)
        if kind is None:
            return None
        rest, name, path = entry.name[len(STAGE_PREFIX) :], printable_name(entry.name), entry
        if kind == "kept":
            said.append(
                f"{name}, the rest of a restore --force whose merge stopped part-way (the "
                f"entries it moved are listed in {printable_name(str(path / MOVED))}): finish "
                f"it by hand or delete it (rm -rf {quoted(str(path))}), then restore again"
            )
        elif kind == "old":
            said.append(
                f"{name}, a folder a restore --force set aside to replace it (its only copy): "
                "move it back or delete it, then restore again"
            )
        else:
            pid = rest.split("-", 1)[0]
            said.append(
                f"{name}, the staging folder of a restore still running there (PID {pid}): "
                "wait for that restore to finish"
            )
            tails.append(
                f" (if PID {pid} is no cfbackup restore, remove the folder: rm -rf "
                f"{quoted(str(path))})"
            )
    return (
        f"{printable_name(str(destination))} is not empty: it holds {'; and '.join(said)}, or "
        f"restore into another directory{''.join(tails)}."
    )


MOVED = "moved.nul"  # a kept merge's list of what it moved (docs/runbook-restore.md)

# the names cfbackup gives its folders in a target (after STAGE_PREFIX): a staging folder
# (PID-random, restore_merge.staging), a kept merge (kept-PID-random), a folder set aside
# (old-PID-name)
_OWN_NAMES = re.compile(r"(?:(?P<kind>kept|old)-)?[0-9]+-.", re.DOTALL)


def _restores_folder(entry: Path) -> str | None:
    """What cfbackup folder ``entry`` is ("stage", "kept", "old"); None when it is none: not
    a real folder (a file, a symlink), or a name cfbackup never gives, such as a user's file
    .cfbackup-restore-notes.txt, which a message must never tell to ``rm -rf``."""
    if not entry.name.startswith(STAGE_PREFIX):
        return None
    match = _OWN_NAMES.match(entry.name[len(STAGE_PREFIX) :])
    try:
        folder = stat.S_ISDIR(os.lstat(entry).st_mode)
    except OSError:
        return None
    if match is None or not folder:
        return None
    return match["kind"] or "stage"


def check_path_to(target: Path, destination: Path, again: Again | None = None) -> None:
    """Every folder between ``target`` and ``destination`` (``--path``'s parents) must be a
    folder, never a symlink: the restore would write through it, outside the target (a
    symlink such as var/run -> /run comes back with a restore of the backup's own symlinks).
    Nor may ``target`` itself be a symlink to a folder, whether the whole tree or one path is
    restored: the folder it points to may be a live tree the user never typed; the message
    names it, with ``again(it)``: the command that restores there (None: none to give).
    Checked with lstat before anything downloads, and again right before duplicity runs."""
    if os.path.islink(target) and os.path.isdir(target):
        raise _symlinked(target, again)
    try:
        parts = destination.relative_to(target).parts[:-1]
    except ValueError:
        return
    path = target
    for part in parts:
        path = path / part
        try:
            info = os.lstat(path)
        except OSError:  # missing (made by the restore), or a name too long: said when made
            return
        if stat.S_ISLNK(info.st_mode):
            raise clash_error(
                [(path, "a symlink where the backup has a folder")], path, target, None, False
            )
        if not stat.S_ISDIR(info.st_mode):
            raise _in_the_way(path, destination)


def _symlinked(target: Path, again: Again | None) -> RestoreTargetError:
    real = os.path.realpath(target)
    command = again(real) if again else None
    return RestoreTargetError(
        f"{printable_name(str(target))} is a symlink to {printable_name(real)}: give "
        f"{quoted(real)} as the target{f' ({command})' if command else ''}."
    )


def _kind(path: Path) -> str:
    """What ``path``, which exists and is not a folder, is, for a message: a file, or a symlink
    and where it points (a link to a folder is refused on its own: ``_symlinked``)."""
    if not os.path.islink(path):
        return "a file"
    real = os.path.realpath(path)
    missing = "" if os.path.exists(path) else " (which does not exist)"
    return f"a symlink to {printable_name(real)}{missing}"


def _in_the_way(path: Path, destination: Path) -> RestoreTargetError:
    return RestoreTargetError(
        f"{printable_name(str(path))} is {_kind(path)} where the restore needs a folder (to hold "
        f"{printable_name(str(destination))}): move it away ({_mv(path)}) or choose another "
        "target."
    )


def _not_empty(destination: Path, rel: str | None, exact: bool) -> str:
    """The refusal of a folder that is not empty, without --force. For one path restored
    there it cannot yet say whether the backup has a file or a folder at ``rel``: it gives
    the fix of each (with --force, a file over a folder is refused: ``clash_error``)."""
    shown = printable_name(str(destination))
    if not rel:
        return (
            f"{shown} is not empty: restore into an empty directory, or add --force to "
            "overwrite what is there."
        )
    shown_rel = printable_name(rel)
    if exact:
        return (
            f"{shown} is a folder and not empty, nothing was changed: give the file's own path "
            f"as the destination, such as {quoted(str(destination / PurePosixPath(rel).name))}, "
            f"or move the folder away first ({_mv(destination)})."
        )
    return (
        f"{shown} is not empty: restore into an empty directory, or add --force to merge the "
        f"backup's folder {shown_rel} into it (if {shown_rel} is a file, move the folder away "
        f"first: {_mv(destination)})."
    )


def _check_writable(folder: Path, destination: Path) -> None:
    """``folder``, which exists, must take new entries."""
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False  # the access check below still speaks
    if read_only:
        try:
            mount = mount_point(folder)
        except OSError:  # a parent that cannot be stat-ed: the folder itself, then
            mount = folder
        raise RestoreTargetError(
            f"{printable_name(str(destination))} is on a read-only file system: remount it "
            f"read-write (mount -o remount,rw {quoted(str(mount))}) or restore elsewhere."
        )
    if not os.access(folder, os.W_OK):
        raise RestoreTargetError(
            f"{printable_name(str(folder))} is not writable: fix permissions or run as root."
        )


def quoted(path: str) -> str:
    """``path`` as the user pastes it into a shell command (``suggest.word``)."""
    return suggest.word(path)


CAP_CHOWN = 0  # linux/capability.h


@functools.cache  # asked per compared file by drills; a process keeps its capabilities
def can_chown() -> bool:
    """Whether this process may give files any owner (root with CAP_CHOWN). duplicity sets a
    restored entry's owner first, then its mode and times: a chown refused (any user but root,
    a container without CAP_CHOWN) lost the mode and times too (a private key restored 0644)
    and made duplicity log every entry as not processed. Without it, restores ask duplicity to
    leave owners alone (``--no-restore-ownership``): each entry is its restorer's, with its
    mode and times."""
    if os.geteuid() != 0:
        return False
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_CHOWN & 1)
    except (OSError, ValueError, IndexError):
        pass
    return True


def _mv(path: Path) -> str:
    """The command that moves ``path`` out of the restore's way, to paste as it is; a mount
    point cannot be moved (EBUSY): the command unmounts it."""
    if os.path.ismount(path):
        return f"umount {quoted(str(path))}"
    return f"mv {quoted(str(path))} {quoted(str(path) + '.old')}"


SHOWN_CLASHES = 5  # in the message; all of them in the run log


def clash_error(
    clashes: list[tuple[Path, str]], staged: Path, destination: Path, rel: str | None, exact: bool
) -> RestoreTargetError:
    shown_dest, shown_rel = printable_name(str(destination)), printable_name(rel or "")
    if len(clashes) == 1 and clashes[0][0] == destination and not staged.is_dir():
        if exact:  # dt-cf-backup --restore-file FILE DEST: DEST is the file's own path
            return RestoreTargetError(
                f"{shown_dest} is a folder and {shown_rel} in the backup is a file, nothing was "
                "changed: give the file's own path as the destination, such as "
                f"{quoted(str(destination / PurePosixPath(rel or '').name))}."
            )
        return RestoreTargetError(
            f"{shown_dest} is a folder and {shown_rel} in the backup is a file, nothing was "
            f"changed: move the folder away ({_mv(destination)}) and run the restore again, or "
            "restore into an empty directory."
        )
    if len(clashes) == 1:
        return RestoreTargetError(_one_clash(*clashes[0]))
    for path, what in clashes:  # the whole list, with a command each
        log.info(f"in the way of the restore: {printable_name(str(path))} is {what} ({_mv(path)})")
    first = clashes[:SHOWN_CLASHES]
    shown = "; ".join(f"{quoted(str(path))} is {what}" for path, what in first)
    rest = len(clashes) - len(first)
    more = f" (and {rest} more, listed in the run log)" if rest else ""
    commands = "; ".join(_mv(path) for path, _ in first)
    return RestoreTargetError(
        f"{len(clashes)} paths in {shown_dest} are in the way of the restore, nothing was "
        f"changed: {shown}{more}: move them away ({commands}) and run the restore again, or "
        "restore into an empty directory."
    )


def _one_clash(path: Path, what: str) -> str:
    return (
        f"{printable_name(str(path))} is {what}, nothing was changed: move it away "
        f"({_mv(path)}) and run the restore again, or restore into an empty directory."
    )


def no_space_here(error: NoSpaceLeft, destination: Path, force: bool) -> NoSpaceLeft:
    """A full disk during a restore: when it is the target's (what duplicity wrote fills it
    now), name that filesystem, not the backup's archive dir and temp dir."""
    if error.temp_check:
        return error
    probe = _existing(destination)
    try:
        disk = os.statvfs(probe)
    except OSError:
        return error
    free, size = disk.f_bavail * disk.f_frsize, disk.f_blocks * disk.f_frsize
    if free > max(1 << 20, size // 100):  # the target has room: the temp dir is the full one
        return error
    room = (
        " (--force needs room for the restored tree on top of the one it replaces, until it is "
        "moved into place)"
        if force
        else ""
    )
    full = NoSpaceLeft(
        f"no space left on the local disk: the filesystem of {printable_name(str(destination))} "
        f"(mounted at {printable_name(str(mount_point(probe)))}) is full{room}: free some space "
        "there or restore elsewhere."
    )
    full.detail = error.detail
    return full


def _existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem holding ``path`` (an existing folder)."""
    path = Path(os.path.realpath(path))
    dev = os.stat(path).st_dev
    while path != path.parent and os.stat(path.parent).st_dev == dev:
        path = path.parent
    return path
