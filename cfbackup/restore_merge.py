"""``restore --force``'s merge: the restore is staged beside what is in the target, every pair
checked before anything moves, then moved into place entry by entry (copied across a mount
inside the target), owners, modes and times kept; a merge that stops part-way keeps its staging
folder. The refusals made before anything downloads are in ``restore_target.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

from cfbackup import interrupts
from cfbackup.duplicity.commands import STAGE_PREFIX  # backups leave these folders out
from cfbackup.errors import CfbackupError, Interrupted, RestoreTargetError
from cfbackup.restore_target import MOVED, clash_error, mount_point, quoted, stale_stage
from cfbackup.units import printable_name

log = logging.getLogger("cfbackup")


@dataclasses.dataclass
class Stage:
    into: Path  # where duplicity restores
    folder: Path | None = None  # the staging folder holding ``into``; None: straight in place
    keep: bool = False  # a merge stopped part-way: the rest of the restore stays here
    # the target folder and the staged folder's times, set again once the staging folder
    # inside it is gone (removing it changes the folder's time)
    times: tuple[Path, os.stat_result] | None = None
    # staged folders cfbackup made itself, not restored from the backup (split_chains: the
    # top folder and those above each root): merged into a folder there, they leave its
    # owner, mode and times alone (mkdir's root 0755 on a user's folder, else)
    made: set[Path] = dataclasses.field(default_factory=set)


@contextlib.contextmanager
def staging(destination: Path, occupied: bool):
    """duplicity never restores over existing files, even with --force; with --force cfbackup
    restores beside what is there, on the same filesystem, and moves each entry into place:
    inside a target folder (which may be a mount point of its own, such as a database's
    volume), else next to the target. The folder is named after this process, so a restore
    killed with -9 leaves one that the next restore there removes (``remove_stale``)."""
    if not occupied:
        yield Stage(into=destination)
        return
    inside = destination.is_dir() and not destination.is_symlink()
    where = destination if inside else destination.parent
    remove_stale(where)
    folder = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", dir=where))
    stage = Stage(into=folder / "restored", folder=folder)
    try:
        yield stage
    finally:
        if not stage.keep:
            _remove_from(folder)
            if stage.times is not None:
                target, info = stage.times
                with contextlib.suppress(OSError):
                    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))


def _remove_from(folder: Path) -> None:
    """Remove the staging ``folder`` from the target folder holding it, which the merge may
    have just given the backup's mode: a 0555 one is made writable for that, then given its
    mode again."""
    parent = folder.parent
    changed = False
    try:
        with contextlib.suppress(OSError), interrupts.held():  # not the user's: its mode stays
            info = os.lstat(parent)
            changed = owner_may_write(parent, info)
        remove_tree(folder)
    finally:
        if changed:
            with contextlib.suppress(OSError):
                os.chmod(parent, stat.S_IMODE(info.st_mode))


def remove_stale(where: Path) -> None:
    """Staging folders in ``where`` left by restores killed with -9 (``stale_stage``), each
    named in a warning: a hidden folder the user never saw, removed."""
    for old in where.glob(f"{STAGE_PREFIX}*"):
        if stale_stage(old):
            remove_tree(old)
            log.warning(
                "warning: removed %s, left by a restore that did not finish (its process is "
                "gone): it held only what that restore had copied from the backup",
                printable_name(str(old)),
            )


class _Clash(Exception):
    """Paths in the target in the way of the restore, found before anything was moved."""

    def __init__(self, clashes: list[tuple[Path, str]]):
        super().__init__(clashes)
        self.clashes = clashes


def merge(
    stage: Stage, destination: Path, rel: str | None, exact: bool, again: str | None = None
) -> None:
    """Move the staged restore over ``destination``: files replaced one by one (os.replace,
    atomic), directories merged; entries only in ``destination`` are kept. Every pair is
    checked before anything moves (``_check_merge``): a clash is refused with nothing changed.
    A move that still fails part-way keeps the staging folder, with what was moved listed;
    ``again``: the command that runs this restore again then (with --force: ``destination``
    is no longer empty), None when there is none to give."""
    staged = stage.into
    try:
        room = _check_merge(staged, destination)
    except _Clash as clash:
        raise clash_error(clash.clashes, staged, destination, rel, exact) from None
    _check_room(room)
    info = os.lstat(staged)
    if (
        stat.S_ISDIR(info.st_mode)
        and stage.folder is not None
        and destination == stage.folder.parent
        and staged not in stage.made
    ):
        stage.times = (destination, info)
    moved: list[Path] = []
    try:
        _move(staged, destination, os.lstat(staged.parent).st_dev, moved, stage.made)
    except BaseException as error:
        if not moved:
            if isinstance(error, OSError):
                raise RestoreTargetError(
                    f"moving the restored files into {printable_name(str(destination))} failed, "
                    "nothing was changed "
                    f"({error.strerror or error}): restore into an empty directory instead."
                ) from None
            raise
        assert stage.folder is not None
        stage.keep = True
        raise _unfinished(stage, destination, moved, error, again) from None


def _check_merge(staged: Path, destination: Path) -> dict[int, tuple[Path, int]]:
    """Walk the staged tree against ``destination`` before anything moves: raise ``_Clash`` for
    a folder where the backup has a file, a file or a symlink where it has a folder. An entry
    whose folder is on another filesystem than the staging folder (a mount inside the target)
    is copied there: return, by st_dev, a folder there and the bytes it must take."""
    home = os.lstat(staged.parent).st_dev
    clashes: list[tuple[Path, str]] = []
    room: dict[int, tuple[Path, int]] = {}

    def walk(source: Path, target: Path, parent_dev: int) -> None:
        mode = os.lstat(source).st_mode
        try:
            there = os.lstat(target)
        except FileNotFoundError:
            there = None
        if there is not None and stat.S_ISDIR(mode):
            if stat.S_ISLNK(there.st_mode):
                clashes.append((target, "a symlink where the backup has a folder"))
            elif not stat.S_ISDIR(there.st_mode):
                clashes.append((target, "a file where the backup has a folder"))
            else:
                for entry in sorted(os.listdir(source)):
                    walk(source / entry, target / entry, there.st_dev)
            return
        if there is not None and stat.S_ISDIR(there.st_mode):
            clashes.append((target, "a folder where the backup has a file"))
            return
        if parent_dev != home:
            folder, need = room.get(parent_dev, (target.parent, 0))
            room[parent_dev] = (folder, need + _size(source))

    walk(staged, destination, os.lstat(destination.parent).st_dev)
    if clashes:
        raise _Clash(clashes)
    return room


def _size(path: Path) -> int:
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        return info.st_size if stat.S_ISREG(info.st_mode) else 0
    return sum(_size(path / entry) for entry in os.listdir(path)) + info.st_size


def _check_room(room: dict[int, tuple[Path, int]]) -> None:
    """The entries copied to another filesystem (a mount inside the target) must fit there,
    with the old ones still in place until each is replaced."""
    for folder, need in room.values():
        disk = os.statvfs(folder)
        free = disk.f_bavail * disk.f_frsize
        if need > free:
            raise RestoreTargetError(
                f"the filesystem mounted at {printable_name(str(mount_point(folder)))} has "
                f"{free} bytes free, the "
                f"restore must copy {need} bytes onto it (--force keeps the old files until each "
                "is replaced), nothing was changed: free some space there or restore into an "
                "empty directory elsewhere."
            )


def _move(source: Path, target: Path, home: int, moved: list[Path], made: set[Path]) -> None:
    """Move ``source`` (staged) to ``target``: folders merged, then given the staged folder's
    owner, mode and times (taken before its entries move out, which changes its time), unless
    cfbackup made the staged folder itself (``made``: it holds nothing of the backup's)."""
    info = os.lstat(source)
    there = _lstat(target)
    if stat.S_ISDIR(info.st_mode) and there is not None and stat.S_ISDIR(there.st_mode):
        owner_may_write(source, info)  # its entries move out (info keeps the backup's mode)
        opened, own_mode = False, True  # the target folder made writable; its mode to put back
        try:
            with interrupts.held():  # a Ctrl-C in between leaves no mode changed
                opened = _opened(target, there)
            for entry in sorted(os.listdir(source)):
                _move(source / entry, target / entry, home, moved, made)
            if source not in made:
                if os.geteuid() == 0:
                    _set_metadata(target, info)
                else:  # a folder of another user's that this one may write in: it stays
                    with contextlib.suppress(PermissionError):
                        _set_metadata(target, info)
                own_mode = False  # it has the backup's mode now
        finally:
            if opened and own_mode:  # stopped part-way, or a folder cfbackup made: its own
                with contextlib.suppress(OSError):
                    os.chmod(target, stat.S_IMODE(there.st_mode))
        return
    if os.lstat(target.parent).st_dev != home:  # another filesystem: copy beside, then rename
        part = target.parent / f"{STAGE_PREFIX}{os.getpid()}-part-{target.name}"[:255]
        try:
            _copy(source, part)
            _replace(part, target)
        except BaseException:
            _remove(part)
            raise
        moved.append(target)
        _remove(source)  # the staged copy: room on the staging filesystem again
        return
    if stat.S_ISDIR(info.st_mode):
        # a Ctrl-C waits until the folder has the backup's mode again and is listed as moved
        with interrupts.held():
            changed = owner_may_write(source, info)
            try:  # a folder moved to another parent must be writable (its '..' changes)
                _replace(source, target)
            except BaseException:
                if changed:
                    os.chmod(source, stat.S_IMODE(info.st_mode))
                raise
            if changed:
                os.chmod(target, stat.S_IMODE(info.st_mode))  # the backup's mode again
            moved.append(target)
        return
    _replace(source, target)
    moved.append(target)


def _opened(folder: Path, info: os.stat_result) -> bool:
    """Give a folder of the user's in the target (its mode in ``info``) that its owner may not
    write, a 0555 one an earlier restore of the backup put there, its owner's bits while the
    restore moves entries into it: a ``restore --force`` as a user over an earlier restore
    stopped part-way there (Permission denied). Not one of another user's, nor where this
    process may write already (root). True when its mode was changed."""
    if info.st_uid != os.geteuid() or os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        return owner_may_write(folder, info)
    except OSError:  # the move into it says why
        return False


def owner_may_write(folder: Path, info: os.stat_result) -> bool:
    """Give ``folder`` (staged, its mode in ``info``) its owner's write and search bits when it
    lacks them, so that entries can move out of it, or it to another folder: a backup's 0555
    folder, which only root could otherwise change, a user restoring it got Permission denied
    and a staging folder left behind. True when its mode was changed."""
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o300 == 0o300:
        return False
    os.chmod(folder, mode | 0o700)
    return True


def remove_tree(path: Path) -> None:
    """Remove a staging folder of cfbackup's (never a user's tree), read-only folders in it
    too: as a user, shutil.rmtree cannot empty a 0555 folder a restore wrote there, and it
    silently left the staging folder behind. Each folder gets its owner's bits first."""
    if os.path.isdir(path) and not os.path.islink(path):
        with contextlib.suppress(OSError):
            owner_may_write(path, os.lstat(path))
        for folder, subfolders, _ in os.walk(path):  # top-down: a folder before its entries
            for name in subfolders:  # os.walk does not enter symlinks; chmod never follows one
                with contextlib.suppress(OSError):
                    info = os.lstat(os.path.join(folder, name))
                    if stat.S_ISDIR(info.st_mode):
                        owner_may_write(Path(folder, name), info)
    shutil.rmtree(path, ignore_errors=True)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _replace(new: Path, target: Path) -> None:
    """os.replace, but a folder in the way (it appeared after ``_check_merge``) is renamed
    aside first and deleted only once ``new`` is in its place."""
    there = _lstat(target)
    if there is None or not stat.S_ISDIR(there.st_mode):
        os.replace(new, target)
        return
    # not named PID-first: a restore killed right here leaves the only copy of that folder,
    # which remove_stale must never take for a stale staging folder
    aside = target.parent / f"{STAGE_PREFIX}old-{os.getpid()}-{target.name}"[:255]
    os.rename(target, aside)
    try:
        os.replace(new, target)
    except BaseException:
        os.rename(aside, target)
        raise
    remove_tree(aside)


def _remove(path: Path) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        remove_tree(path)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _copy(source: Path, target: Path) -> None:
    """Copy one staged entry to another filesystem as duplicity restored it: file type (FIFOs
    and device nodes too, never opened), symlink targets, owner (as root), mode, times."""
    info = os.lstat(source)
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        os.mkdir(target, 0o700)
        for entry in sorted(os.listdir(source)):
            _copy(source / entry, target / entry)
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(source), target)
    elif stat.S_ISREG(mode):
        shutil.copyfile(source, target, follow_symlinks=False)
    elif stat.S_ISFIFO(mode):
        os.mkfifo(target, 0o600)
    else:  # a device node or a socket
        os.mknod(target, stat.S_IFMT(mode) | 0o600, info.st_rdev)
    _set_metadata(target, info)


def _set_metadata(target: Path, info: os.stat_result) -> None:
    """Owner (as root; before the mode: chown clears set-uid bits), mode, then times."""
    link = stat.S_ISLNK(info.st_mode)
    if os.geteuid() == 0:
        os.lchown(target, info.st_uid, info.st_gid)
    if not link:
        os.chmod(target, stat.S_IMODE(info.st_mode))
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)


def _unfinished(
    stage: Stage, destination: Path, moved: list[Path], error: BaseException, again: str | None
) -> CfbackupError:
    """A merge that failed part-way: the staging folder stays, renamed so that no later
    restore removes it as stale, with the paths already moved listed in it (``MOVED``: each
    path's bytes followed by a NUL, as ``find -print0`` writes them: a file name may hold a
    newline, never a NUL)."""
    assert stage.folder is not None
    staged = stage.folder
    kept = staged.with_name(staged.name.replace(STAGE_PREFIX, STAGE_PREFIX + "kept-"))
    with contextlib.suppress(OSError):
        os.rename(staged, kept)
        stage.folder = kept
    listing = stage.folder / MOVED
    try:
        listing.write_bytes(b"".join(os.fsencode(path) + b"\0" for path in moved))
        listed = f"listed in {printable_name(str(listing))}, NUL-separated"
    except OSError as failure:  # the disk that is full, say: no list, not a cut one
        with contextlib.suppress(OSError):
            listing.unlink()
        listed = f"their list could not be written ({failure.strerror or failure})"
    rest = stage.folder / "restored"
    copy = (
        f"cp -a {quoted(f'{rest}/.')} {quoted(f'{destination}/')}"
        if rest.is_dir() and not rest.is_symlink()
        else f"cp -a {quoted(str(rest))} {quoted(str(destination))}"
    )
    cause = (
        error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
    )
    failed = error.filename if isinstance(error, OSError) else None
    if failed:  # a path in the staging folder is named where it is now, after the rename
        failed = os.fsdecode(failed)
        if stage.folder != staged and Path(failed).is_relative_to(staged):
            failed = str(stage.folder / Path(failed).relative_to(staged))
    where = f" at {printable_name(failed)}" if failed else ""
    count = "1 entry was" if len(moved) == 1 else f"{len(moved)} entries were"
    retry = f"run the restore again ({again})" if again else "run the restore again with --force"
    kept_folder = printable_name(str(stage.folder))
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        # the kept copy takes room on that disk: a retry stages a whole copy beside it
        fix = (
            f"free room there first (the kept copy takes room too), then finish by hand "
            f"({copy}) and delete {kept_folder}; or delete {kept_folder} first and {retry}, or "
            f"restore into a folder on another disk"
        )
    else:
        fix = (
            f"once the cause is fixed, finish by hand ({copy}) or {retry}, then delete "
            f"{kept_folder}"
        )
    message = (
        f"moving the restored files into {printable_name(str(destination))} stopped "
        f"part-way{where} ({cause}) after {count} moved ({listed}): the rest of the restore "
        f"is kept in {printable_name(str(rest))}: {fix}."
    )
    if isinstance(error, (KeyboardInterrupt, Interrupted)):
        return Interrupted(message)
    return RestoreTargetError(message)
