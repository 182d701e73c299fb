"""``cfbackup restore``: the whole tree or one path, at a point in time, into TARGET.

A non-empty TARGET is refused without ``--force``, so a restore typed in a hurry never
overwrites what is there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import shutil
import stat
import tempfile
from pathlib import Path, PurePosixPath

from cfbackup import chains, prefetch
from cfbackup.actions.common import (
    chains_at_time,
    duplicity,
    prepare,
    scratch,
    warm_duplicity,
    when_of,
)
from cfbackup.duplicity import commands
from cfbackup.duplicity.commands import STAGE_PREFIX  # backups leave these folders out
from cfbackup.errors import (
    CfbackupError,
    CryptoError,
    ExitCode,
    Interrupted,
    NoBackupFound,
    NoSpaceLeft,
    RestoreTargetError,
    RunRefused,
)
from cfbackup.lock import pid_alive
from cfbackup.runtypes import Run, RunResult
from cfbackup.units import printable


def relative_path(run: Run, path: str) -> str:
    """A path inside the backup, relative to the source; absolute paths under source accepted."""
    source = PurePosixPath(str(run.profile.source))
    candidate = PurePosixPath(path)
    if candidate.is_absolute():
        try:
            candidate = candidate.relative_to(source)
        except ValueError:
            raise RestoreTargetError(
                f"{path} is not under the profile's source {source}: give a path inside it."
            ) from None
    parts = [p for p in candidate.parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise RestoreTargetError(f"{path}: '..' is not allowed in a path to restore.")
    return "/".join(parts)


def run_restore(run: Run) -> RunResult:
    profile = run.profile
    target = Path(run.options["target"]).expanduser().absolute()
    force = bool(run.options.get("force"))
    path = run.options.get("path")
    rel = relative_path(run, path) if path else None
    exact = bool(run.options.get("exact_destination"))
    destination = target / rel if rel and not exact else target
    when_of(run)  # a mistyped --time is a usage error before anything else happens
    _check_target(target, destination, force)
    env = prepare(run, need_secret_key=True)
    picked, inside = chains.for_path(chains.of(profile), rel or "")
    picked = chains_at_time(run, picked, env)  # refused here, before the hooks: nothing to undo
    vetoes = [reason for reason in run.hooks.cfbackup_pre_restore(run=run) if reason]
    if vetoes:
        raise RunRefused("restore refused: " + "; ".join(vetoes))
    try:
        created = _make_parents(destination.parent)
    except OSError as error:  # a name too long, a parent that is a file, no permission
        raise RestoreTargetError(
            f"{str(destination)[:200]}: {error.strerror}: choose another target."
        ) from None
    occupied = _occupied(destination)
    existed = os.path.lexists(destination)
    emptied = existed and not occupied  # an empty folder (mkdir first, as the runbook says)
    try:
        with (
            _staging(destination, occupied) as stage,
            _passphrase_hint(profile),
            _prefetch_folder(run) as folder,
        ):
            try:
                no_backup = _restore_chains(run, stage.into, rel, env, folder, picked, inside)
            except NoSpaceLeft as error:
                raise _no_space_here(error, destination, force) from None
            if occupied:
                _merge(stage, destination, rel, exact)
    except BaseException:
        if not existed:  # what a failed restore wrote where nothing was: remove it
            shutil.rmtree(destination, ignore_errors=True)
            with contextlib.suppress(OSError):
                destination.unlink()
        elif emptied:  # the folder stays, empty as it was: a retry needs no --force
            _empty(destination)
        for folder in created:  # leave no empty folders behind a failed restore
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    what = f"{rel} restored to {destination}" if rel else f"restored into {destination}"
    what = printable(what)  # a name that is not UTF-8 is shown as caf\\xe9
    when = f" as of {run.options['time']}" if run.options.get("time") else ""
    outcome = RunResult(
        profile=profile.name, action="restore", message=f"{profile.name}: {what}{when}"
    )
    if no_backup:  # not all that was asked: a script must not read it as a whole restore
        outcome.exit_code = ExitCode.PARTIAL
        outcome.message += (
            f", except {', '.join(no_backup)}: the target holds no backup of "
            f"{'it' if len(no_backup) == 1 else 'them'} (an include root added since the last "
            "backup, or its objects are gone from the target)."
        )
    run.hooks.cfbackup_post_restore(run=run, result=outcome)
    return outcome


def _restore_chains(
    run: Run,
    into: Path,
    rel: str | None,
    env: dict[str, str],
    folder: Path | None,
    picked: list[chains.Chain],
    inside: bool,
) -> list[str]:
    """Restore ``rel`` (everything when None) into ``into`` from the chain that holds it
    (``inside``), or, when it holds several include roots of a split profile, each root from
    its chain: ``picked`` (``chains.for_path``, less the chains with no backup at --time);
    the roots the target holds no backup of at all are left out (``chains.run_each``)."""
    profile = run.profile
    if not picked:  # chains_at_time refuses a --time before every picked chain's backups
        roots = ", ".join(f"/{c.root}" for c in chains.of(profile))
        raise RestoreTargetError(
            f"{rel} is in none of the include roots backed up by profile {profile.name} "
            f"({roots}): give a path under one of them."
        )
    if inside:
        _restore_one(run, picked[0], into, rel, env, folder)
        return []

    def restore_root(chain: chains.Chain) -> bool:
        place = into / (chain.root[len(rel) + 1 :] if rel else chain.root)
        made = _make_parents(place.parent)
        try:
            _restore_one(run, chain, place, chain.root, env, folder)
        except NoBackupFound:  # a root with no backup yet leaves no empty folder behind
            for folder_made in (place, *made):  # deepest first
                with contextlib.suppress(OSError):
                    folder_made.rmdir()
            raise
        return True

    restored = chains.run_each(profile, picked, restore_root, skip_empty=True)
    return [f"/{chain.root}" for chain, done in zip(picked, restored, strict=True) if not done]


def _restore_one(
    run: Run,
    chain: chains.Chain,
    into: Path,
    path: str | None,
    env: dict[str, str],
    folder: Path | None,
) -> None:
    """One duplicity restore of one chain: from a local copy filled ahead while it runs when
    the profile prefetches (``prefetch.py``), else straight from the target."""
    when = run.options.get("time")
    source, extra = chain.profile, {}
    with contextlib.ExitStack() as stack:
        warm = None
        if folder is not None:
            own = folder / (chain.slug or "main")
            # duplicity starts now and waits for its arguments while the volumes are planned
            expected = {**env, **prefetch.environment(chain.profile, own)}
            warm = stack.enter_context(warm_duplicity(run, expected))
            own.mkdir(mode=0o700)
            plan = stack.enter_context(
                prefetch.restore_source(
                    chain.profile,
                    env,
                    own,
                    path=path,
                    when=when_of(run),
                    user_folder=_prefetch_root(run),
                )
            )
            if plan is not None:
                source, extra = plan.profile, plan.env
        place = stack.enter_context(_utf8_place(into))
        duplicity(
            run,
            lambda fd: commands.restore_argv(source, str(place), path=path, time=when, log_fd=fd),
            {**env, **extra},
            warm=warm,  # unless there is no copy to read after all (then a cold start)
        )


def _utf8(path: Path) -> bool:
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@contextlib.contextmanager
def _utf8_place(into: Path):
    """Where duplicity restores what goes to ``into``: duplicity 3.2 decodes its target's path
    as UTF-8 before it restores anything (cli_main) and crashes on a name that is not (a
    ``--path`` such as ``weird/caf\\xe9``), so such a target is restored into a folder beside
    it whose path is UTF-8, then moved into place. (``--path-to-restore`` itself takes any
    bytes, as do the names it restores.)"""
    if _utf8(into):
        yield into
        return
    parent = into.parent
    while not _utf8(parent):
        parent = parent.parent
    # named as _staging's: a restore killed with -9 leaves one the next restore removes
    stage = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", dir=parent))
    try:
        yield stage / "restored"
        if os.path.lexists(stage / "restored"):
            if into.is_dir() and not into.is_symlink():
                into.rmdir()  # empty: duplicity restores only into an empty target
            shutil.move(stage / "restored", into)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def _prefetch_folder(run: Run):
    """The run's scratch folder for prefetched volumes (under the profile's tempdir when it has
    one, else under state_dir), or None when it does not prefetch. duplicity's temp dir goes
    there too: it moves each volume out of the copy instead of copying it."""
    if not prefetch.enabled(run.profile):
        yield None
        return
    with scratch(run, "restore", _prefetch_root(run)) as folder:
        yield folder


def _prefetch_root(run: Run) -> Path:
    """Where the prefetch's scratch folder goes: the profile's tempdir, else state_dir. The
    user chose it and can make room there; a no-space message names it."""
    tempdir = run.profile.get("tempdir")
    return Path(tempdir).expanduser() if tempdir else run.config.state_dir


@contextlib.contextmanager
def _passphrase_hint(profile):
    """A restore has no passphrase pre-check (``passcheck.py`` guards backups against starting
    a chain with a typo; it costs a listing and a key derivation, 0.3 s, measured): duplicity
    fails on the first volume instead, before anything is in place, and with a symmetric
    profile that failure names the passphrase."""
    try:
        yield
    except CryptoError:
        if profile["encryption"]["mode"] != "symmetric":
            raise
        raise CryptoError(
            f"gpg could not decrypt the backups at {profile.target} with the passphrase of "
            f"profile {profile.name}: check encryption.passphrase."
        ) from None


def _occupied(destination: Path) -> bool:
    if not os.path.lexists(destination):
        return False
    return not (
        destination.is_dir() and not destination.is_symlink() and not any(destination.iterdir())
    )


def _empty(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()


@dataclasses.dataclass
class _Stage:
    into: Path  # where duplicity restores
    folder: Path | None = None  # the staging folder holding ``into``; None: straight in place
    keep: bool = False  # a merge stopped part-way: the rest of the restore stays here
    # the target folder and the staged folder's times, set again once the staging folder
    # inside it is gone (removing it changes the folder's time)
    times: tuple[Path, os.stat_result] | None = None


@contextlib.contextmanager
def _staging(destination: Path, occupied: bool):
    """duplicity never restores over existing files, even with --force; with --force cfbackup
    restores beside what is there, on the same filesystem, and moves each entry into place:
    inside a target folder (which may be a mount point of its own, such as a database's
    volume), else next to the target. The folder is named after this process, so a restore
    killed with -9 leaves one that the next restore there removes (``_remove_stale``)."""
    if not occupied:
        yield _Stage(into=destination)
        return
    inside = destination.is_dir() and not destination.is_symlink()
    where = destination if inside else destination.parent
    _remove_stale(where)
    folder = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", dir=where))
    stage = _Stage(into=folder / "restored", folder=folder)
    try:
        yield stage
    finally:
        if not stage.keep:
            shutil.rmtree(folder, ignore_errors=True)
            if stage.times is not None:
                target, info = stage.times
                with contextlib.suppress(OSError):
                    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))


def _remove_stale(where: Path) -> None:
    """Staging folders in ``where`` left by restores killed with -9 (their pid is dead); never
    one a failed merge kept on purpose (``.cfbackup-restore-kept-*``)."""
    for old in where.glob(f"{STAGE_PREFIX}*"):
        pid = old.name[len(STAGE_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)) and old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)


def _no_space_here(error: NoSpaceLeft, destination: Path, force: bool) -> NoSpaceLeft:
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
        f"no space left on the local disk: the filesystem of {destination} (mounted at "
        f"{_mount_point(probe)}) is full{room}: free some space there or restore elsewhere."
    )
    full.detail = error.detail
    return full


class _Clash(Exception):
    """Paths in the target in the way of the restore, found before anything was moved."""

    def __init__(self, clashes: list[tuple[Path, str]]):
        super().__init__(clashes)
        self.clashes = clashes


def _merge(stage: _Stage, destination: Path, rel: str | None, exact: bool) -> None:
    """Move the staged restore over ``destination``: files replaced one by one (os.replace,
    atomic), directories merged; entries only in ``destination`` are kept. Every pair is
    checked before anything moves (``_check_merge``): a clash is refused with nothing changed.
    A move that still fails part-way keeps the staging folder, with what was moved listed."""
    staged = stage.into
    try:
        room = _check_merge(staged, destination)
    except _Clash as clash:
        raise _clash_error(clash.clashes, staged, destination, rel, exact) from None
    _check_room(room)
    info = os.lstat(staged)
    if (
        stat.S_ISDIR(info.st_mode)
        and stage.folder is not None
        and destination == stage.folder.parent
    ):
        stage.times = (destination, info)
    moved: list[Path] = []
    try:
        _move(staged, destination, os.lstat(staged.parent).st_dev, moved)
    except BaseException as error:
        if not moved:
            if isinstance(error, OSError):
                raise RestoreTargetError(
                    f"moving the restored files into {destination} failed, nothing was changed "
                    f"({error.strerror or error}): restore into an empty directory instead."
                ) from None
            raise
        assert stage.folder is not None
        stage.keep = True
        raise _unfinished(stage, destination, moved, error) from None


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
                f"the filesystem mounted at {_mount_point(folder)} has {free} bytes free, the "
                f"restore must copy {need} bytes onto it (--force keeps the old files until each "
                "is replaced), nothing was changed: free some space there or restore into an "
                "empty directory elsewhere."
            )


def _move(source: Path, target: Path, home: int, moved: list[Path]) -> None:
    """Move ``source`` (staged) to ``target``: folders merged, then given the staged folder's
    owner, mode and times (taken before its entries move out, which changes its time)."""
    info = os.lstat(source)
    there = _lstat(target)
    if stat.S_ISDIR(info.st_mode) and there is not None and stat.S_ISDIR(there.st_mode):
        for entry in sorted(os.listdir(source)):
            _move(source / entry, target / entry, home, moved)
        if os.geteuid() == 0:
            _set_metadata(target, info)
        else:  # a folder of another user's that this one may write in: its metadata stays
            with contextlib.suppress(PermissionError):
                _set_metadata(target, info)
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
    _replace(source, target)
    moved.append(target)


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
    # which _remove_stale must never take for a stale staging folder
    aside = target.parent / f"{STAGE_PREFIX}old-{os.getpid()}-{target.name}"[:255]
    os.rename(target, aside)
    try:
        os.replace(new, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _remove(path: Path) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
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


def _clash_error(
    clashes: list[tuple[Path, str]], staged: Path, destination: Path, rel: str | None, exact: bool
) -> RestoreTargetError:
    if len(clashes) == 1 and clashes[0][0] == destination and not staged.is_dir():
        if exact:  # dt-cf-backup --restore-file FILE DEST: DEST is the file's own path
            return RestoreTargetError(
                f"{destination} is a folder and {rel} in the backup is a file, nothing was "
                "changed: give the file's own path as the destination, such as "
                f"{destination / PurePosixPath(rel or '').name}."
            )
        return RestoreTargetError(
            f"{destination} is a folder and {rel} in the backup is a file, nothing was changed: "
            f"move the folder away (mv {shlex.quote(str(destination))} "
            f"{shlex.quote(str(destination) + '.old')}) and run the restore again, or restore "
            "into an empty directory."
        )
    shown = "; ".join(f"{path} is {what}" for path, what in clashes[:5])
    more = f" (and {len(clashes) - 5} more)" if len(clashes) > 5 else ""
    return RestoreTargetError(
        f"{len(clashes)} path(s) in {destination} are in the way of the restore, nothing was "
        f"changed: {shown}{more}: move them away (mv PATH PATH.old) and run the restore "
        "again, or restore into an empty directory."
    )


def _unfinished(
    stage: _Stage, destination: Path, moved: list[Path], error: BaseException
) -> CfbackupError:
    """A merge that failed part-way: the staging folder stays, renamed so that no later
    restore removes it as stale, with the paths already moved listed in it."""
    assert stage.folder is not None
    kept = stage.folder.with_name(stage.folder.name.replace(STAGE_PREFIX, STAGE_PREFIX + "kept-"))
    with contextlib.suppress(OSError):
        os.rename(stage.folder, kept)
        stage.folder = kept
    listing = stage.folder / "moved.txt"
    with contextlib.suppress(OSError):
        listing.write_text("".join(f"{path}\n" for path in moved))
    rest = stage.folder / "restored"
    copy = (
        f"cp -a {shlex.quote(str(rest))}/. {shlex.quote(str(destination))}/"
        if rest.is_dir() and not rest.is_symlink()
        else f"cp -a {shlex.quote(str(rest))} {shlex.quote(str(destination))}"
    )
    cause = (
        error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
    )
    where = f" at {error.filename}" if isinstance(error, OSError) and error.filename else ""
    message = (
        f"moving the restored files into {destination} stopped part-way{where} ({cause}) "
        f"after {len(moved)} entries were moved (listed in {listing}): the rest of the restore "
        f"is kept in {rest}: finish by hand ({copy}) once the cause is fixed, then delete "
        f"{stage.folder}, or run the restore again."
    )
    if isinstance(error, (KeyboardInterrupt, Interrupted)):
        return Interrupted(message)
    return RestoreTargetError(message)


def _make_parents(folder: Path) -> list[Path]:
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)  # split chains' threads may make the same parent
    return missing


def _existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _mount_point(path: Path) -> Path:
    """The mount point of the filesystem holding ``path`` (an existing folder)."""
    path = Path(os.path.realpath(path))
    dev = os.stat(path).st_dev
    while path != path.parent and os.stat(path.parent).st_dev == dev:
        path = path.parent
    return path


def _check_target(target: Path, destination: Path, force: bool) -> None:
    """Refuse, before anything is downloaded, a destination the restore cannot use."""
    found = _existing(destination)
    if found != destination:  # what is missing is made; what holds it must be a folder
        if not found.is_dir():
            raise RestoreTargetError(
                f"{found} is a file where the restore needs a folder (to hold {destination}): "
                "move it away or choose another target."
            )
        _check_writable(found, destination)
        return
    if destination == target and destination.is_symlink() and destination.is_dir():
        raise RestoreTargetError(
            f"{destination} is a symlink to {os.path.realpath(destination)}: give "
            f"{os.path.realpath(destination)} as the target."
        )
    if destination.is_dir() and not destination.is_symlink():
        if any(destination.iterdir()) and not force:
            raise RestoreTargetError(
                f"{destination} is not empty: restore into an empty directory, or add --force to "
                "overwrite what is there."
            )
        _check_writable(destination, destination)
        return
    if not force:
        raise RestoreTargetError(
            f"{destination} already exists: choose another target, or add --force to overwrite it."
        )
    _check_writable(destination.parent, destination)


def _check_writable(folder: Path, destination: Path) -> None:
    """``folder``, which exists, must take new entries."""
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False  # the access check below still speaks
    if read_only:
        try:
            mount = _mount_point(folder)
        except OSError:  # a parent that cannot be stat-ed: the folder itself, then
            mount = folder
        raise RestoreTargetError(
            f"{destination} is on a read-only file system: remount it read-write "
            f"(mount -o remount,rw {shlex.quote(str(mount))}) or restore elsewhere."
        )
    if not os.access(folder, os.W_OK):
        raise RestoreTargetError(f"{folder} is not writable: fix permissions or run as root.")
