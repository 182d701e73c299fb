"""``cfbackup backup``: pre hooks (which may veto), duplicity, retention, post hooks."""

from __future__ import annotations

import contextlib
import os

from cfbackup import (
    chains,
    compression,
    future_sets,
    gpgkeys,
    history,
    kept_manifests,
    link,
    link_choices,
    mounts,
    passcheck,
    stores,
    suggest,
    volume_size,
)
from cfbackup.actions.common import (
    check_source,
    duplicity,
    keep_lost_manifests,
    log,
    prepare,
    scratch,
    target_view,
    warm_duplicity,
)
from cfbackup.duplicity import archive, commands
from cfbackup.duplicity.environment import (
    UploadRates,
    handover_environment,
    late_handover_environment,
    manifest_slot,
)
from cfbackup.duplicity.result import DuplicityResult
from cfbackup.duplicity.target import swift_target
from cfbackup.errors import CfbackupError, PartialBackup, RetentionFailed, RunRefused
from cfbackup.retention import PARTIAL_FULLS, check_deletes, keeps_all, unprotected_newest
from cfbackup.runtypes import Run, RunResult


def run_backup(run: Run) -> RunResult:
    profile = run.profile
    check_source(run)
    chain_list = chains.of(profile)
    watched = chains.watched_folders(profile, chain_list)
    last = history.last_backup_at_target(run.config.state_dir, profile.name)
    unmounted = mounts.unmounted((last or {}).get("stats", {}).get(mounts.STAT) or [], watched)
    source = os.path.normpath(str(profile.source))
    if source in unmounted:  # duplicity would back up an empty source
        raise RunRefused(f"nothing was backed up: {unmounted[source]}.")
    # a split profile's missing root fails its chain instead (chains.missing_root); one
    # chain backs up the others and is partial: retention would remove the include's backups
    missing = [] if chains.is_split(profile) else chains.missing_includes(profile)
    for item in missing:
        log.warning("warning: include %s", chains.missing_include(item))
    env = prepare(run, keep_manifests=False)
    with contextlib.ExitStack() as stack:
        return _back_up(run, chain_list, env, stack, watched, unmounted, missing)


def _keep_lost_manifests(run: Run, listings: dict[str, dict[str, int]]) -> None:
    """Before duplicity syncs its archive dir (volumes.only_local_manifests), from the
    listing the target view made."""
    profile = run.profile
    if lost := keep_lost_manifests(run, listings):  # duplicity would delete the copy
        if not run.options.get("full"):
            raise RunRefused(
                "nothing was backed up: "
                + "; ".join(lost)
                + "; an incremental onto that chain could not be restored either: "
                + "; ".join(kept_manifests.found(run))
                + f", then run {suggest.command('backup', profile.name)} again; or run "
                f"{suggest.command('backup', profile.name, '--full')} to start a new chain "
                "(retention keeps the old one while its manifest is not back)."
            )
        for text in lost:
            log.warning("warning: %s", text)


def _back_up(
    run: Run,
    chain_list: list[chains.Chain],
    env: dict[str, str],
    stack,
    watched: list[str],
    unmounted: dict[str, str],
    missing: list[str],
) -> RunResult:
    profile = run.profile
    with target_view(run):
        # where duplicity finds the manifest the check decrypts
        slot = manifest_slot(stack.enter_context(scratch(run, "manifest")))
        rates = upload_rates(run, stack)  # where duplicity writes down its uploads' rates
        env = {**env, **rates.env}
        # duplicity starts now and waits for its arguments (and the token the checks get, on
        # the same pipe) while the checks below run: its imports overlap them
        late = late_handover_environment(run.target_view is not None)
        warm = stack.enter_context(warm_duplicity(run, {**env, **late, **slot.env}))
        if link_choices.is_auto(profile):
            link.start_probe(run)
        run.hooks.cfbackup_backup_lookups(run=run)
        handover = authenticated(run)
        stack.enter_context(gpgkeys.calibrated_agent(profile))  # its first gpg's wait, now
        opened = None  # the chain whose manifest the check decrypted: for its duplicity
        for chain in chain_list:  # one decryption proves the passphrase for every chain
            manifest = passcheck.check_passphrase(chain.profile, env, run.target_view)
            if manifest is not None:
                opened = chain
                if not run.options.get("full"):  # a full reads no manifest of the last set
                    slot.put(manifest)
                break
        sized = _sized_listings(run, chain_list)
        futures = future_sets.found(profile, {label: list(o) for label, o in sized.items()})
        vetoes = [reason for reason in run.hooks.cfbackup_pre_backup(run=run) if reason]
        round_trip = link.probed(run)
        since = compression.changed_since(run) if link.is_far(round_trip) else None
    if futures:  # duplicity would take them for the newest backups (future_sets.py)
        raise RunRefused(
            f"backup refused before anything was uploaded: {future_sets.refusal(profile, futures)}."
        )
    _keep_lost_manifests(run, sized)
    if vetoes and not run.options.get("ignore_guards"):
        raise RunRefused("backup refused before anything was uploaded: " + "; ".join(vetoes))
    swift = swift_target(profile.target) is not None
    learned = volume_size.learned_rate(run.config.state_dir, profile.name)
    choices = link_choices.choose(profile, round_trip, swift=swift, since=since, learned=learned)
    if profile["encryption"]["mode"] != "none":
        log.info("compression: %s", choices.compression.reason)
    log.info("upload workers: %s", choices.workers.reason)
    log.info("volume size: %s", choices.size.reason)
    if choices.size.by_rate:
        rates.size_by_rate(volume_size.SLOW_MB, volume_size.FAR_MB, volume_size.FAST)
    full = bool(run.options.get("full"))
    after = not run.dry_run and profile["retention"]["after_backup"] and not keeps_all(profile)
    left_out: dict[str, str] = {}  # chain label -> why its root was not backed up
    new_full: dict[str, bool] = {}  # chain label -> the backup started a new full

    def back_up(chain: chains.Chain) -> DuplicityResult | None:
        why = chains.missing_root(chain) or (
            unmounted.get(os.path.normpath(chains.root_path(chain))) if chain.root else None
        )
        if why is not None:  # an empty chain for it would let retention remove its backups
            log.error("chain %s not backed up: %s", chain.label, why)
            left_out[chain.label] = why
            return None
        before = archive.full_backups(chain.profile) or set()
        handed = slot.env if opened is None or chain is opened else {}  # never another's
        result = duplicity(
            run,
            lambda fd: commands.backup_argv(
                choices.applied(chain.profile),
                full=full,
                dry_run=run.dry_run,
                log_fd=fd,
            ),
            {**env, **handover_environment(handover), **handed},  # the checks' token too
            warm=warm,  # unless the token grew too old meanwhile (then a cold start)
        )
        new_full[chain.label] = bool((archive.full_backups(chain.profile) or set()) - before)
        return result

    results = chains.run_each(profile, chain_list, back_up)
    done = [(c, r) for c, r in zip(chain_list, results, strict=True) if r is not None]
    if not done:
        raise RunRefused("nothing was backed up: " + "; ".join(left_out.values()) + ".")
    stats = merged_statistics([r.statistics for _, r in done])
    if chains.is_split(profile):  # a check tells a root whose chain vanished from a new one
        stats[chains.ROOTS_STAT] = [c.label for c, _ in done]
    uploaded = rates.measured(volume_size.SLOW_MB)
    if uploaded is not None:  # where the next backup's volume size starts
        stats[volume_size.RATE_STAT] = round(uploaded)
        log.info("uploads: %s", volume_size.mbit(uploaded))
    # remembered until mounted again: the next backup compares with it
    stats[mounts.STAT] = sorted({*mounts.mount_points(watched), *unmounted})
    partial = [(c, r) for c, r in done if r.unreadable]
    # an unsplit profile's include whose disk is not mounted: backed up empty, like files
    # that could not be read, the backup lacks it
    # an unsplit profile's plain include that does not exist: nothing of it in the set either
    empty_includes = [] if chains.is_split(profile) else list(unmounted.values())
    empty_includes += [chains.missing_include(item) for item in missing]
    lacking = [c for c, r in done if r.unreadable or empty_includes]  # files not in the set
    if partial_fulls := [c.label for c in lacking if new_full.get(c.label)]:
        stats[PARTIAL_FULLS] = partial_fulls  # prune refuses while they are the newest fulls
    retention_error: CfbackupError | None = None
    unconfirmed: list[str] = []  # retention's deletes whose check Swift could not answer
    complete: list[chains.Chain] = []
    if after:
        # retention counts the new backup as one to keep: never when it lacks files (they may
        # now be only in the backups it would remove) or skipped a root (its chain got none)
        for chain, result in partial:
            log.warning(
                "retention skipped%s: the backup is partial (%d unreadable files); it runs after "
                "the next complete backup",
                f" on chain {chain.label}" if chain.root else "",
                len(result.unreadable),
            )
        for label in left_out:
            log.warning("retention skipped on chain %s: its root was not backed up", label)
        if empty_includes:
            log.warning("retention skipped: an include is missing or its disk is not mounted")
        complete = [c for c, r in done if not r.unreadable and not empty_includes]
        # a set whose manifest only the kept copy holds: retention would delete its chain
        if complete and (held := kept_manifests.found(run)):
            warning = (
                "retention skipped: "
                + "; ".join(held)
                + "; retention runs after the next backup once it is back"
            )
            log.warning("warning: %s", warning)
            unconfirmed.append(warning)
            complete = []

        def retain(chain: chains.Chain) -> None:  # kept when another chain's retention fails
            if warning := retention(run, chain, env, skip_idle=True):
                unconfirmed.append(warning)

        try:  # after every chain's backup: a failure here loses none of their outcomes
            if complete:
                chains.run_each(profile, complete, retain)
        except CfbackupError as error:
            retention_error = error
    outcome = RunResult(profile=profile.name, action="backup", stats=stats, warnings=unconfirmed)
    run.hooks.cfbackup_post_backup(run=run, result=outcome)
    unreadable = [path for _, result in partial for path in result.unreadable]
    problems = [*left_out.values(), *empty_includes]
    if unreadable:
        shown = ", ".join(unreadable[:10]) + (" ..." if len(unreadable) > 10 else "")
        problems.insert(
            0,
            f"{len(unreadable)} file(s) could not be read and are not in it: {shown}: fix their "
            "permissions or exclude them",
        )
    if problems:
        skipped = ""
        if after:  # on the chains that lack something; the complete ones' ran
            where = " on the chains that lack them" if complete else ""
            skipped = f" (retention was skipped{where}: it runs after the next complete backup)"
        raise PartialBackup(
            "backup completed but "
            + "; ".join(problems)
            + skipped
            + (
                f"; retention failed: {retention_error.message.rstrip('.')}"
                if retention_error
                else ""
            )
            + ".",
            detail=retention_error.detail if retention_error else "",
            stats=stats,
            warnings=unconfirmed,
        )
    if retention_error is not None:
        raise RetentionFailed(
            f"backup completed; retention failed: {retention_error.message.rstrip('.')}: run "
            f"`{suggest.command('prune', profile.name)}` once fixed.",
            detail=retention_error.detail,
            stats=stats,
            warnings=unconfirmed,
        )
    outcome.message = (
        f"{'dry run: ' if run.dry_run else ''}backup of {profile.name} done: "
        f"{stats.get('SourceFiles', '?')} files, {stats.get('NewFiles', '?')} new, "
        f"{stats.get('ChangedFiles', '?')} changed, {stats.get('TotalDestinationSizeChange', 0)} "
        "bytes uploaded" + (f" ({len(chain_list)} chains)" if chains.is_split(profile) else "")
    )
    log.info("%s", outcome.message)
    return outcome


def _sized_listings(run: Run, chain_list: list[chains.Chain]) -> dict[str, dict[str, int]]:
    """Each chain's objects the target view has listed already (Swift), name: bytes."""
    if run.target_view is None:
        return {}
    found = {}
    for chain in chain_list:
        objects = run.target_view.objects(chain.profile)
        if objects is not None:
            found[chain.label] = {o["name"]: int(o.get("bytes", 0)) for o in objects}
    return found


def upload_rates(run: Run, stack: contextlib.ExitStack) -> UploadRates:
    """A private folder of the run for its uploads' rates, when the target is Swift."""
    if swift_target(run.profile.target) is None:
        return UploadRates(None)
    return UploadRates(str(stack.enter_context(scratch(run, "uploads"))))


def authenticated(run: Run):
    """The target view's token (it authenticates now, once for the run), for duplicity
    (``environment.handover_environment``); None for a target that is not Swift."""
    if run.target_view is None:
        return None
    from cfbackup import swift

    with swift.swift_errors(run.profile):
        run.target_view.connection()
    return run.target_view.handover()


def merged_statistics(parts: list[dict]) -> dict:
    """One backup's statistics from each chain's: counts and sizes add up, times span."""
    merged: dict = {}
    for part in parts:
        for key, value in part.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                merged.setdefault(key, value)
            elif key == "StartTime":
                merged[key] = min(merged.get(key, value), value)
            elif key in ("EndTime", "ElapsedTime"):
                merged[key] = max(merged.get(key, value), value)
            else:
                merged[key] = merged.get(key, 0) + value
    return merged


def apply_retention(run: Run, env: dict[str, str]) -> tuple[list[tuple[str, str]], list[str]]:
    """Run each retention rule of the profile on each of its chains; returns the rules and the
    warnings of the chains whose deletes could not be confirmed (:func:`retention`), which go
    on the error raised when another chain fails."""
    warnings: list[str] = []

    def retain(chain: chains.Chain) -> None:
        if warning := retention(run, chain, env):
            warnings.append(warning)

    chains.run_each(run.profile, chains.of(run.profile), retain, warnings=warnings)
    return commands.retention_rules(run.profile), warnings


def retention(
    run: Run, chain: chains.Chain, env: dict[str, str], *, skip_idle: bool = False
) -> str:
    """Run each retention rule on one chain; RetentionFailed when the target kept what they
    deleted. Returns the warning (already logged) when Swift could not answer the check of the
    deletes: they were made, only not confirmed, so the run does not fail; else "".

    ``skip_idle`` (right after a backup, when the local archive is in step with the target)
    leaves out the rules that cannot remove anything (``duplicity/archive.py``).
    """
    rules = commands.retention_rules(chain.profile)
    where = f" on chain {chain.label}" if chain.root else ""
    if skip_idle:
        fulls = archive.full_backups(chain.profile)
        idle = [rule for rule in rules if not archive.rule_can_remove(rule, fulls)]
        for rule in idle:
            log.info(
                "retention: duplicity %s %s skipped%s: %d full backup(s), nothing it could remove",
                *rule,
                where,
                len(fulls or ()),
            )
        rules = [rule for rule in rules if rule not in idle]
    # only remove-older-than can reach the newest chain: no listing for the other rules
    if any(r[0] == "remove-older-than" for r in rules) and stores.readable(chain.profile.target):
        label = chain.label if chain.root else ""
        listing = stores.open_store(chain.profile, run.target_view).list()
        if why := unprotected_newest(chain.profile, rules, listing, label):
            raise RunRefused(f"retention refused{where}: {why}")
    done = []  # each rule that ran and its result: duplicity names what it deletes
    for rule in rules:
        log.info("retention: duplicity %s %s%s", *rule, where)
        result = duplicity(
            run,
            lambda fd, rule=rule: commands.retention_argv(chain.profile, rule, log_fd=fd),
            env,
            changes_target=True,
        )
        done.append((" ".join(rule), result))
    # duplicity goes on when the target refuses a delete (retention.py): what is still there
    check = check_deletes(chain.profile, done)
    if check.refused:
        raise RetentionFailed(check.refused)
    if not check.unconfirmed:
        return ""
    warning = (
        f"retention ran{where}, but {check.unconfirmed}; run "
        f"`{suggest.command('prune', run.profile.name, '--dry-run')}` once Swift answers: it "
        "lists any old backup still there"
    )
    log.warning("warning: %s", warning)
    return warning
