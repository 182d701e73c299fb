"""Steps several actions share: preparing duplicity's environment, running one command."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from cfbackup import chains, gpgkeys, history, suggest
from cfbackup.duplicity import commands, early, machinelog, names, patches
from cfbackup.duplicity.environment import (
    duplicity_environment,
    handover_environment,
    late_handover_environment,
)
from cfbackup.duplicity.failures import no_backup_message
from cfbackup.duplicity.result import DuplicityResult
from cfbackup.duplicity.run import WarmDuplicity, run_duplicity
from cfbackup.duplicity.times import as_typed_later
from cfbackup.errors import (
    CfbackupError,
    ConfigError,
    ExitCode,
    NoBackupFound,
    RunRefused,
    VerifyDifferences,
)
from cfbackup.lock import pid_alive
from cfbackup.runtypes import Run

log = logging.getLogger("cfbackup")


def prepare(
    run: Run, *, need_secret_key: bool = False, keep_manifests: bool = True
) -> dict[str, str]:
    """Resolve secrets and check keys before anything touches the target; with
    ``keep_manifests`` (every command that runs duplicity on the target, which syncs the
    archive dir), copy aside the archive dir's manifests the target lost (a warning each)."""
    profile = run.profile
    env = duplicity_environment(profile)
    for warning in gpgkeys.check_keys(profile, need_secret=need_secret_key):
        log.warning("warning: %s", warning)
    profile.archive_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if keep_manifests:
        for lost in keep_lost_manifests(run):
            log.warning("warning: %s", lost)
    return env


def keep_lost_manifests(run: Run, listings: dict[str, dict[str, int]] | None = None) -> list[str]:
    """Copy each manifest that only the archive dir still has (its set is at the target
    without one: ``volumes.only_local_manifests``) to ``state_dir/kept-manifests/PROFILE``,
    before a duplicity syncing the archive dir deletes it; one sentence each, naming the set
    and the copy. Nothing when the target cannot be listed (duplicity will say why).
    ``listings``: each chain's objects (name: bytes) a backup's target view already listed, by
    chain label: no second login and listing."""
    from cfbackup import stores, volumes

    found: list[str] = []
    for chain in chains.of(run.profile):
        profile = chain.profile
        folder = profile.archive_dir / profile.backup_name
        if not stores.readable(profile.target) or not any(folder.glob("*.manifest")):
            continue  # no local manifest: nothing to lose, no listing
        store = stores.open_store(profile, run.target_view)
        try:
            sets = volumes.backup_sets(
                store,
                naming=names.of(profile),
                chain=chain.slug,
                listing=(listings or {}).get(chain.label),
            )
        except (CfbackupError, OSError) as error:  # duplicity will meet it and say so
            log.info(
                "the target's manifests were not compared: %s", getattr(error, "message", error)
            )
            continue
        for backup_set, local in volumes.only_local_manifests(sets, folder):
            kept = run.config.state_dir / "kept-manifests" / run.profile.name / chain.slug
            kept.mkdir(parents=True, exist_ok=True, mode=0o700)
            kept = kept / local.name
            shutil.copy2(local, kept)
            kept.chmod(0o600)
            where = f" of chain {chain.label}" if chain.root else ""
            found.append(
                f"the {backup_set.label}{where} has {len(backup_set.volumes)} volume(s) but no "
                f"manifest at {store.label}, so duplicity cannot restore it or any later backup "
                "of its chain; the archive dir's copy of its manifest, the last one (duplicity "
                f"deletes it), is kept at {kept}"
            )
    return found


@contextlib.contextmanager
def target_view(run: Run, *, retries: int = 1) -> Iterator[None]:
    """One login and one listing of a Swift target for the run's checks (``swift.TargetView``,
    ``run.target_view``): a backup's before duplicity starts (then dropped; only its token goes
    on, to the backup's duplicity: ``environment.handover_environment``); restore's, verify's,
    list's, prune's and cleanup's for the whole run, listed again after each duplicity command
    that deletes (:func:`duplicity`'s ``changes_target``). Nothing for another target.
    ``retries``: swiftclient's, of each request (those commands: their stores' own,
    ``stores.request_retries``, as their checks had when each made its own connection)."""
    from cfbackup.duplicity.target import swift_target

    if swift_target(run.profile.target) is None or run.target_view is not None:
        yield
        return
    from cfbackup import swift

    run.target_view = swift.TargetView(run.profile, retries=retries)
    ending = True  # interrupted (Ctrl-C, SIGTERM) or failed: its look-ups serve nothing more
    try:
        yield
        ending = False
    finally:
        view, run.target_view = run.target_view, None
        view.close(abort=ending)


@contextlib.contextmanager
def scratch(run: Run, kind: str, under: Path | None = None) -> Iterator[Path]:
    """A private folder ``state_dir/KIND/PROFILE-PID`` (or under ``under``) for one run (a
    drill's downloads and restores), removed on every way out; folders that runs killed with -9
    left behind are removed first."""
    root = (under or run.config.state_dir) / kind
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in root.glob(f"{run.profile.name}-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    folder = root / f"{run.profile.name}-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def missing_target(profile, view=None) -> str | None:
    """Why a swift:// or file:// target holds no backup because it does not exist (the folder,
    the container), or None when it exists (or cfbackup cannot tell: another scheme).
    ``view``: the run's target view, whose listing tells (:func:`target_view`)."""
    from cfbackup import stores
    from cfbackup.duplicity.target import swift_target

    if stores.target_exists(profile, view) is not False:
        return None
    found = swift_target(profile.target)
    return f"container {found.container} does not exist" if found else "the folder does not exist"


def require_target(run: Run) -> None:
    """Refuse a command that only reads backups when its target does not exist, before
    duplicity runs: duplicity would create the folder or the container (a typo in the target
    left behind as an empty one) and then fail with "no backup chains found"."""
    why = missing_target(run.profile, run.target_view)
    if why is not None:
        raise NoBackupFound(no_backup_message(run.profile, f"{why}; nothing was created"))


def check_source(run: Run) -> None:
    source = run.profile.source
    try:
        is_dir = source.is_dir()
    except OSError as error:  # e.g. a name longer than the filesystem allows
        raise ConfigError(
            f"profiles.{run.profile.name}.source: {str(source)[:200]}: {error.strerror}: fix the "
            "path."
        ) from None
    if not is_dir:
        raise ConfigError(
            f"profiles.{run.profile.name}.source: {source} is not a directory: fix the path."
        )


def duplicity(
    run: Run,
    build: Callable[[int], tuple[str, ...]],
    env: dict[str, str],
    *,
    changes_target: bool = False,
    **kwargs,
) -> DuplicityResult:
    """Run one duplicity command, with the patches the profile's plugins register for it; with a
    progress reporter, ask duplicity for the progress records it only emits on request
    (``--progress`` costs ~18% on a small incremental). ``changes_target``: the command deletes
    from the target (retention, cleanup): the run's target view lists it again for the next
    check, whether duplicity ended well or not.

    With the run's target view (restore, verify, list, prune, cleanup), duplicity gets its
    storage URL and token, as a backup's does (``patches/handed_token.py``): asked for at each
    command's start, so each gets one only while it is young
    (``environment.handover_environment``); older, duplicity logs in itself."""
    if changes_target and run.target_view is not None:
        try:
            return duplicity(run, build, env, **kwargs)
        finally:
            run.target_view.forget()
    if run.target_view is not None:
        env = {**env, **handover_environment(run.target_view.handover())}
    kwargs.setdefault("patches", patches.from_plugins(run.hooks))
    progress = run.options.get("progress")
    kwargs.setdefault("profile", run.profile)
    on_start = chains.on_start()  # inside a chain's thread: stoppable with the others
    if on_start is not None:
        kwargs.setdefault("on_start", on_start)
        progress = None  # several processes at once: one bar cannot show them
    if progress is None:
        return run_duplicity(build, env, **kwargs)

    def build_with_progress(fd: int) -> tuple[str, ...]:
        argv = tuple(build(fd))
        return argv[:-2] + progress.duplicity_flags(argv[1], run.profile["verbosity"]) + argv[-2:]

    return run_duplicity(build_with_progress, env, on_record=progress.on_record, **kwargs)


@contextlib.contextmanager
def warm_duplicity(run: Run, env: dict[str, str]) -> Iterator[WarmDuplicity | None]:
    """A duplicity started now for a backup's or a restore's duplicity command, with ``env``
    and the profile's patches (``run.WarmDuplicity``), given to :func:`duplicity` as
    ``warm=``; None where several run at once (split chains) or with ``CFBACKUP_NO_WARM=1``.
    With the run's target view it takes the view's token with its arguments (``LATE``).
    Stopped on the way out when nothing used it."""
    if os.environ.get(WarmDuplicity.OFF) or chains.is_split(run.profile):
        early.discard()  # started for a backup that runs its chains' duplicity at once
        yield None
        return
    late = late_handover_environment(run.target_view is not None)
    warm = WarmDuplicity({**env, **late}, patches.from_plugins(run.hooks))
    try:
        yield warm
    finally:
        warm.close()


def parse_time(text: str) -> float:
    """``--time`` as duplicity reads it (``duplicity/times.py``), in Unix time; a typo is a
    usage error naming the forms it accepts, so no path lets duplicity reject it later."""
    from cfbackup.duplicity.times import duplicity_time

    try:
        return duplicity_time(text)
    except ValueError as error:
        raise CfbackupError(f"--time {error}.", exit_code=ExitCode.USAGE) from None


def when_of(run: Run) -> float | None:
    """``--time`` in Unix time: as the CLI parsed it before the run started (``when``), else
    parsed now (an action called without the CLI)."""
    text = run.options.get("time")
    if not text:
        return None
    if run.options.get("when") is None:
        run.options["when"] = parse_time(text)
    return run.options["when"]


def chains_at_time(
    run: Run, chain_list: list[chains.Chain], env: dict[str, str]
) -> list[chains.Chain]:
    """The chains of ``chain_list`` that a restore or listing at ``--time`` reads (all of them
    without ``--time``). duplicity given a time before a chain's oldest full backup reads that
    oldest chain instead (``dup_collections.get_backup_chain_at_time`` falls back to the
    earliest one): a state newer than the one asked for, which after an incident may be the
    state after the break-in. So such a chain is left out with a warning when another chain
    (split_chains) has a backup at that time, as a root with no backup yet is (a restore then
    exits PARTIAL, naming it), and the run is refused (REFUSED) when none has, naming the
    chains when they are not all the profile's (a ``--path`` under one root). A chain with no
    backup at all is kept: the errors that already name that case apply."""
    when = when_of(run)
    if when is None:
        return chain_list
    kept: list[chains.Chain] = []
    too_new: dict[str, float] = {}  # chain label -> its oldest full backup
    covered = False  # a kept chain has a backup at --time
    restored = run.options.setdefault("restored_backups", {})
    for chain in chain_list:
        fulls, restored[chain.label] = backup_times(run, chain, env, when)
        if fulls and min(fulls) > when:
            too_new[chain.label] = min(fulls)
            continue
        kept.append(chain)
        covered = covered or bool(fulls)
    if too_new and not covered:
        first = _utc(min(too_new.values()))
        every = [c.label for c in chains.of(run.profile)]
        whose = (  # a --path under one include root: that root's chain, not the profile's
            f"the chain{'s' if len(too_new) > 1 else ''} of {', '.join(too_new)}"
            if chains.is_split(run.profile) and sorted(too_new) != sorted(every)
            else f"profile {run.profile.name}"
        )
        older = unsplit_full_before(run.profile, when)
        if older is not None:  # the chain of the layout before split_chains was switched on
            raise RunRefused(
                f"--time {run.options['time']} is before the oldest backup of {whose} "
                f"(the full backup of {first}), but the backups made before split_chains was "
                f"switched on are still at {run.profile.target} (from the full backup of "
                f"{_utc(older)}): set split_chains = false in {run.config.path} for this "
                f"{run.action}, run {same_command(run)}, then set it back to true."
            )
        raise RunRefused(
            f"--time {run.options['time']} is before the oldest backup of {whose} "
            f"(the full backup of {first}), so there is no state that old: "
            f"give a --time at or after {first}, or see every backup with "
            f"{suggest.command('status', run.profile.name)}."
        )
    for label, oldest in too_new.items():
        log.warning(
            "chain %s has no backup at or before --time %s (its oldest is the full backup of "
            "%s): left out",
            label,
            run.options["time"],
            _utc(oldest),
        )
    return kept


def unsplit_full_before(profile, when: float) -> float | None:
    """split_chains: the oldest full backup at or before ``when`` of the chain right at the
    profile's target (not in a chain's sub-prefix), which the backups made before
    split_chains was switched on left there; None when there is none (or the target is not a
    swift:// or file:// one)."""
    from cfbackup import stores, volumes

    if not chains.is_split(profile) or not stores.readable(profile.target):
        return None
    try:
        sets = volumes.complete(
            volumes.backup_sets(stores.open_store(profile), naming=names.of(profile))
        )
    except (CfbackupError, OSError):  # only a hint: the refusal stands without it
        return None
    return min((s.end for s in sets if s.kind == "full" and s.end <= when), default=None)


def removed_root_with_backups(profile, rel: str) -> str | None:
    """split_chains: the folder holding ``rel`` (itself or one above it) whose chain is still
    at the target though it is no longer an include root (removed from include); None when
    there is none."""
    from cfbackup import stores, volumes

    if not chains.is_split(profile) or not stores.readable(profile.target):
        return None
    parts = rel.split("/")
    for depth in range(1, len(parts) + 1):
        root = "/".join(parts[:depth])
        chain = chains.of_root(profile, root)
        try:
            store = stores.open_store(chain.profile)
            if volumes.complete(volumes.backup_sets(store, naming=names.of(chain.profile))):
                return root
        except (CfbackupError, OSError):  # only a hint: the refusal stands without it
            return None
    return None


def same_command(run: Run) -> str:
    """The cfbackup command of this run (a restore, list or verify), as it runs again."""
    words = [run.action, run.profile.name]
    if run.action == "restore":
        words.append(run.options["target"])
        if run.options.get("path"):
            words += suggest.option("--path", run.options["path"])
    if run.action == "verify" and run.options.get("compare_data"):
        words.append("--compare-data")
    if run.options.get("time"):  # 3D: the moment it meant, as the command runs later
        words += ["--time", as_typed_later(run.options["time"], when_of(run))]
    return suggest.command(*words)


def _utc(when: float) -> str:
    """A time as --time reads it back (duplicity's w3 datetime, UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def backup_times(
    run: Run, chain: chains.Chain, env: dict[str, str], when: float
) -> tuple[list[float], float | None]:
    """The times of the complete full backups of one chain, and the time of the backup a
    restore or listing at ``when`` reads: the newest at or before it, in the chain of the
    newest full at or before it, as duplicity picks it (None: no backup that old). Read from
    the target's object names where cfbackup reads the target itself (swift://, file://),
    else from duplicity's collection-status."""
    from cfbackup import stores, volumes

    if stores.readable(chain.profile.target):
        store = stores.open_store(chain.profile, run.target_view)
        sets = volumes.complete(
            volumes.backup_sets(store, naming=names.of(chain.profile), chain=chain.slug)
        )
        at = volumes.chain_at(sets, when)
        return [float(s.end) for s in sets if s.kind == "full"], float(at[-1].end) if at else None
    from duplicity import dup_time

    collection = collection_status(run, chain, env)
    fulls, newest = [], None
    for found in collection["chains"]:
        times = [(s["type"], float(dup_time.stringtotime(s["time"]))) for s in found["sets"]]
        fulls += [t for kind, t in times if kind == "full"]
        if times and times[0][1] <= when:  # a newer chain at or before ``when`` replaces it
            newest = max(t for _, t in times if t <= when)
    return fulls, newest


def collection_status(run: Run, chain: chains.Chain, env: dict[str, str]) -> dict:
    """duplicity's collection-status of one chain, parsed."""
    result = duplicity(
        run, lambda fd: commands.collection_status_argv(chain.profile, log_fd=fd), env, check=False
    )
    records = result.records_with("INFO", machinelog.INFO_COLLECTION_STATUS)
    if result.returncode != 0 and not records:
        from cfbackup.duplicity.failures import classify_failure

        raise classify_failure(result)
    if not records:
        return {"chains": [], "orphaned_sets": 0, "incomplete_sets": 0}
    return machinelog.parse_collection_status(records[-1].extra)


def backed_up_roots(run: Run) -> set[str]:
    """split_chains: the include roots (chain labels) the run history shows a backup of the
    profile covered: a root among them with no chain at the target lost its chain."""
    return {
        label
        for value in history.stat_values(
            run.config.state_dir, run.profile.name, "backup", chains.ROOTS_STAT
        )
        if isinstance(value, list)
        for label in value
    }


def roots_without_backup(run: Run, profile, labels: list[str]) -> list[str]:
    """split_chains: of the include roots (chain labels) with no backup at the target, a check
    fails (VerifyDifferences, exit 8) on those the run history shows were backed up: their
    chain vanished from the target, and a restore of them would fail. Returns the others, roots
    no backup ever covered (added since the last backup), which the check leaves out with a
    warning; NoBackupFound when that is every root."""
    if not labels:
        return []
    ever = backed_up_roots(run)
    lost = [label for label in labels if label in ever]
    if lost:
        where = {c.label: c.profile.target for c in chains.of(profile)}
        raise VerifyDifferences(
            f"include root(s) {', '.join(lost)} of profile {run.profile.name} have no backup at "
            f"{', '.join(where.get(label, '?') for label in lost)} though the run history shows "
            "they were backed up: their chain was removed from the target, so a restore of them "
            f"fails; run {suggest.command('backup', run.profile.name)} to start a new chain for "
            "them, and find out what removed it.",
            stats={"lost_roots": lost},
        )
    if len(labels) == len(chains.of(profile)):
        raise NoBackupFound(
            f"no backup found for any include root of profile {run.profile.name}: run a backup "
            "first or check the profile's target."
        )
    for label in labels:
        log.warning(
            "chain %s has no backup yet: left out (no backup of it in the run history: an "
            "include root added since the last backup)",
            label,
        )
    return labels


def empty_roots(profile) -> list[str]:
    """split_chains: the include roots (chain labels) with no complete backup set at a
    swift:// or file:// target."""
    from cfbackup import stores, volumes

    if not chains.is_split(profile):
        return []
    empty = []
    for chain in chains.of(profile):
        if stores.readable(chain.profile.target):
            store = stores.open_store(chain.profile)
            found = volumes.backup_sets(store, naming=names.of(chain.profile), chain=chain.slug)
            if not volumes.complete(found):
                empty.append(chain.label)
    return empty


def left_out_text(labels: list[str]) -> str:
    """What a check's message adds for include roots no backup covered yet."""
    if not labels:
        return ""
    return (
        f"; {', '.join(labels)} left out: no backup of it yet (an include root added since the "
        "last backup)"
    )
