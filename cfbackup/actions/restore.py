"""``cfbackup restore``: the whole tree or one path, at a point in time, into TARGET.

A non-empty TARGET is refused without ``--force``, so a restore typed in a hurry never
overwrites what is there. What the restore does to TARGET on disk is elsewhere: those refusals in
``cfbackup/restore_target.py``, ``--force``'s staging and merge in ``cfbackup/restore_merge.py``;
which path ``--path`` names in ``actions/restore_paths.py``; what the result says in
``actions/restore_report.py``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

from cfbackup import chains, prefetch, restore_lock, restore_merge, restore_target, stores
from cfbackup.actions import restore_paths, restore_report
from cfbackup.actions.common import (
    chains_at_time,
    duplicity,
    prepare,
    require_target,
    scratch,
    target_view,
    warm_duplicity,
    when_of,
)
from cfbackup.actions.restore_paths import relative_path, target_of
from cfbackup.duplicity import commands
from cfbackup.duplicity.commands import STAGE_PREFIX  # backups leave these folders out
from cfbackup.errors import (
    CryptoError,
    ExitCode,
    NoBackupFound,
    NoSpaceLeft,
    PathNotInBackup,
    RestoreTargetError,
    RunRefused,
)
from cfbackup.runtypes import Run, RunResult
from cfbackup.units import printable_name
from cfbackup.volume_keys import passphrase_source

log = logging.getLogger("cfbackup")


def run_restore(run: Run) -> RunResult:
    # the folder is held against any other restore into it (restore_lock.py) from the checks
    # of the target to the last move and clean-up: a folder there is locked first (a second
    # restore into it hears of the first, not that the first's files make it "not empty"); a
    # folder to be made is checked first, so that what is in its way is refused before
    # anything is made, then again under the lock
    target, destination, rel, exact = _places(run)
    folder = destination.parent if exact else target
    if not folder.is_dir() or folder.is_symlink():
        _check(run)
    with restore_lock.held(folder):
        # one login and one listing of the target for the checks and the prefetch's plan,
        # whose downloads start with that login's token
        with target_view(run, retries=stores.request_retries(run.profile)):
            if run.target_view is not None and prefetch.enabled(run.profile):
                # the first volumes' connections, opened while the checks list the target
                run.target_view.connect_ahead(prefetch.WORKERS)
            return _restore(run)


def _places(run: Run) -> tuple[Path, Path, str | None, bool]:
    """The restore's target folder, where it restores (``--path``'s place in it, or the file's
    own path: ``exact``), the path restored, and ``exact``."""
    target = target_of(run.options)
    path = run.options.get("path")
    rel = relative_path(run, path) if path else None
    exact = bool(run.options.get("exact_destination"))
    when_of(run)  # a mistyped --time is a usage error before anything else happens
    return target, target / rel if rel and not exact else target, rel, exact


def _check(run: Run) -> tuple[Path, Path, str | None, bool]:
    """``_places``, refused (restore_target.py) when they cannot take the restore, before
    anything downloads."""
    target, destination, rel, exact = _places(run)
    force = bool(run.options.get("force"))

    def elsewhere(real: str) -> str | None:  # the same restore into the folder a symlink names
        return None if exact else restore_report.restore_command(run, real, rel, force)

    a_folder = bool(run.options.get("restore_dir"))  # dt-cf-backup --restore-dir DIR
    restore_target.check_target(
        target, destination, force, rel=rel, exact=exact, folder=a_folder, again=elsewhere
    )
    return target, destination, rel, exact


def _restore(run: Run) -> RunResult:
    profile = run.profile
    target, destination, rel, exact = _check(run)
    force = bool(run.options.get("force"))

    def elsewhere(real: str) -> str | None:  # the same restore into the folder a symlink names
        return None if exact else restore_report.restore_command(run, real, rel, force)

    require_target(run)
    env = prepare(run, need_secret_key=True)
    wanted, inside = chains.for_path(chains.of(profile), rel or "")
    if not wanted:
        raise restore_paths.outside_roots(run, rel or "")
    picked = chains_at_time(run, wanted, env)  # refused here, before the hooks: nothing to undo
    if rel and inside and picked:  # a path the backup surely lacks: before any volume downloads
        restore_paths.refuse_absent(run, picked[0], rel)
    kept = {c.label for c in picked}
    too_new = [c.label for c in wanted if c.label not in kept]  # split_chains: left out
    vetoes = [reason for reason in run.hooks.cfbackup_pre_restore(run=run) if reason]
    if vetoes:
        raise RunRefused("restore refused: " + "; ".join(vetoes))
    # again: a symlink the hooks put there meanwhile, before any folder is made through it
    restore_target.check_path_to(target, destination, elsewhere)
    try:
        created = _make_parents(destination.parent)
    except OSError as error:  # a name too long, a parent that is a file, no permission
        raise RestoreTargetError(
            f"{printable_name(str(destination)[:200])}: {error.strerror}: choose another target."
        ) from None
    # one path restored onto anything there, an empty folder too, is staged: when the backup
    # has a file there, the merge refuses it instead of duplicity replacing the folder
    existed = os.path.lexists(destination)
    occupied = existed if rel else _occupied(destination) or _current_folder(destination)
    emptied = existed and not occupied  # an empty folder (mkdir first, as the runbook says)
    try:
        with (
            restore_merge.staging(destination, occupied) as stage,
            _passphrase_hint(profile),
            _prefetch_folder(run) as folder,
        ):
            try:
                no_backup, failed = _restore_chains(
                    run, stage.into, rel, env, folder, picked, inside
                )
            except NoSpaceLeft as error:
                raise restore_target.no_space_here(error, destination, force) from None
            if occupied:
                again = None if exact else restore_report.restore_command(run, target, rel, True)
                if not inside:  # split_chains: folders made to hold each root, not restored
                    stage.made = _made_folders(stage.into, rel, picked)
                restore_merge.merge(stage, destination, rel, exact, again)
    except BaseException:
        if not existed:  # what a failed restore wrote where nothing was: remove it
            restore_merge.remove_tree(destination)  # its read-only (0555) folders too
            with contextlib.suppress(OSError):
                destination.unlink()
        elif emptied:  # the folder stays, empty as it was: a retry needs no --force
            _empty(destination)
        for folder in created:  # leave no empty folders behind a failed restore
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    # a name that is not UTF-8 is shown as caf\\xe9, a newline in it as \\x0a
    shown, into = printable_name(rel or ""), printable_name(str(destination))
    what = f"{shown} restored to {into}" if rel else f"restored into {into}"
    if (rel or ".") in failed:  # duplicity could not restore what was asked for itself
        what = f"{shown or 'the backup'} could not be restored to {into}"
    when = restore_report.from_backup(run, picked)
    outcome = RunResult(
        profile=profile.name, action="restore", message=f"{profile.name}: {what}{when}"
    )
    # not all that was asked: a script must not read it as a whole restore (exit 9); what was
    # restored stays
    missing = []
    if no_backup:
        missing.append(
            f"{', '.join(no_backup)}: the target holds no backup of "
            f"{'it' if len(no_backup) == 1 else 'them'} (an include root added since the last "
            "backup, or its objects are gone from the target)"
        )
    if too_new:  # as a root with no backup yet is (docs/runbook-restore.md)
        missing.append(
            f"{', '.join(too_new)}: no backup of {'it' if len(too_new) == 1 else 'them'} at or "
            f"before --time {run.options['time']} (its first backup is newer)"
        )
    if missing:
        outcome.exit_code = ExitCode.PARTIAL
        outcome.message += ", except " + "; except ".join(missing)
    if failed:
        outcome.exit_code = ExitCode.PARTIAL
        whole = (rel or ".") not in failed

        def again(name: str) -> str | None:  # a path not there yet needs no --force
            return None if exact else restore_report.restore_command(run, target, name, False)

        joint = ", but " if missing else "; but " if whole else ": "
        outcome.message += joint + restore_report.not_restored(failed, whole, again)
    elif missing:
        outcome.message += "."
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
) -> tuple[list[str], dict[str, str]]:
    """Restore ``rel`` (everything when None) into ``into`` from the chain that holds it
    (``inside``), or, when it holds several include roots of a split profile, each root from
    its chain: ``picked`` (``chains.for_path``, less the chains with no backup at --time);
    the roots the target holds no backup of at all are left out (``chains.run_each``).
    Returns those roots, and the entries duplicity could not restore (``_restore_one``)."""
    profile = run.profile
    if inside:
        return [], _restore_one(run, picked[0], into, rel, env, folder)

    def restore_root(chain: chains.Chain) -> dict[str, str]:
        place = _place(into, rel, chain)
        made = _make_parents(place.parent)
        try:
            return _restore_one(run, chain, place, chain.root, env, folder)
        except NoBackupFound:  # a root with no backup yet leaves no empty folder behind
            for folder_made in (place, *made):  # deepest first
                with contextlib.suppress(OSError):
                    folder_made.rmdir()
            raise

    restored = chains.run_each(profile, picked, restore_root, skip_empty=True)
    no_backup = [
        f"/{chain.root}" for chain, done in zip(picked, restored, strict=True) if done is None
    ]
    return no_backup, {name: why for done in restored if done for name, why in done.items()}


def _place(into: Path, rel: str | None, chain: chains.Chain) -> Path:
    """Where a split profile's ``chain`` restores its root, in a restore of ``rel`` (a folder
    above the roots; None: everything) into ``into``."""
    return into / (chain.root[len(rel) + 1 :] if rel else chain.root)


def _made_folders(into: Path, rel: str | None, picked: list[chains.Chain]) -> set[Path]:
    """The folders a split restore into a staging folder made itself (``_make_parents``):
    ``into`` and those between it and each root. They hold nothing of the backup's own (no
    chain's root is another's parent: ``chains.py``), so their owner, mode and times are
    mkdir's, not to be copied onto the user's folders by the merge."""
    made = {into}
    for chain in picked:
        folder = _place(into, rel, chain).parent
        while folder != into and into in folder.parents:
            made.add(folder)
            folder = folder.parent
    return made


def _restore_one(
    run: Run,
    chain: chains.Chain,
    into: Path,
    path: str | None,
    env: dict[str, str],
    folder: Path | None,
) -> dict[str, str]:
    """One duplicity restore of one chain: from a local copy filled ahead while it runs when
    the profile prefetches (``prefetch.py``), else straight from the target. Returns the
    entries duplicity could not restore and went on without (it exits 0 then), by their path
    in the backup, with its reason (``DuplicityResult.not_processed``)."""
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
                    store=stores.open_store(chain.profile, run.target_view),
                )
            )
            if plan is not None:
                source, extra = plan.profile, plan.env
        place = stack.enter_context(_utf8_place(into))
        owners = restore_target.can_chown()
        try:
            result = duplicity(
                run,
                lambda fd: commands.restore_argv(
                    source, str(place), path=path, time=when, log_fd=fd, owners=owners
                ),
                {**env, **extra},
                warm=warm,  # unless there is no copy to read after all (then a cold start)
            )
        except PathNotInBackup as error:
            found = restore_paths.not_in_backup(run, chain, path or "")
            found.detail = error.detail
            raise found from None
    return result.not_processed_under(path)


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
    # named as restore_merge.staging's: a restore killed with -9 leaves one the next
    # restore removes
    stage = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", dir=parent))
    restored = stage / "restored"
    try:
        yield restored
        if os.path.lexists(restored):
            if into.is_dir() and not into.is_symlink():
                into.rmdir()  # empty: duplicity restores only into an empty target
            # a read-only (0555) folder moves to another parent only when writable ('..'
            # changes): as a user, shutil.move copied it, failed to remove it (exit 1)
            info = os.lstat(restored)
            opened = stat.S_ISDIR(info.st_mode) and restore_merge.owner_may_write(restored, info)
            shutil.move(restored, into)
            if opened:
                os.chmod(into, stat.S_IMODE(info.st_mode))
    finally:
        restore_merge.remove_tree(stage)


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
            f"profile {profile.name}: check {passphrase_source(profile)}."
        ) from None


def _current_folder(destination: Path) -> bool:
    """``destination`` is the folder cfbackup runs in (``cfbackup restore web .`` typed in the
    empty /srv/restore): duplicity refuses to restore into its current folder ("is not empty
    or is current_dir"), so it is staged inside it and moved in, as for --force, and the
    folder itself (the shell's current one) stays."""
    try:
        return os.path.samefile(destination, os.getcwd())
    except OSError:
        return False


def _occupied(destination: Path) -> bool:
    if not os.path.lexists(destination):
        return False
    return not (
        destination.is_dir() and not destination.is_symlink() and not any(destination.iterdir())
    )


def _empty(folder: Path) -> None:
    """Remove what a failed restore wrote into ``folder``, empty before it: its read-only
    (0555) folders too, which rmtree could not empty as a user (the retry was refused, the
    folder not empty)."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            restore_merge.remove_tree(entry)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()


def _make_parents(folder: Path) -> list[Path]:
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)  # split chains' threads may make the same parent
    return missing
