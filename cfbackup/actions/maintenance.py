"""``cfbackup prune`` (retention, or with ``--dry-run`` what it would remove) and ``cfbackup
cleanup`` (duplicity's leftovers)."""

from __future__ import annotations

from cfbackup import chains, future_sets, kept_manifests, stores, suggest
from cfbackup.actions.backup import apply_retention
from cfbackup.actions.common import duplicity, log, missing_target, prepare, target_view
from cfbackup.duplicity import commands, names, options
from cfbackup.duplicity.failures import target_setting
from cfbackup.errors import RetentionFailed, RunRefused
from cfbackup.progress import human_bytes
from cfbackup.retention import (
    check_deletes,
    keeps_all,
    newest_partial_fulls,
    prepared,
    removals,
    unprotected_newest,
)
from cfbackup.runtypes import Run, RunResult


def run_prune(run: Run) -> RunResult:
    # one login and one listing for every check (listed again after each duplicity that deletes)
    with target_view(run, retries=stores.request_retries(run.profile)):
        return _prune(run)


def _prune(run: Run) -> RunResult:
    name = run.profile.name
    dry = "dry run: " if run.dry_run else ""
    if keeps_all(run.profile):
        message = (
            f"{dry}retention: nothing removed: profile {name} keeps every backup "
            "(retention.keep_all = true)"
        )
        log.info("%s", message)
        data = {"profile": name, "dry_run": True, "chains": []} if run.dry_run else None
        return RunResult(profile=name, action="prune", message=message, data=data, stats=_dry(run))
    nothing = _nothing_there(run)
    if nothing:
        message = f"{dry}nothing to prune: {nothing}"
        log.info("%s", message)
        data = {"profile": name, "dry_run": True, "chains": []} if run.dry_run else None
        return RunResult(profile=name, action="prune", message=message, data=data, stats=_dry(run))
    # before any rule, and before the dry run works out a plan duplicity would not follow
    if futures := future_sets.found(run.profile, view=run.target_view):
        raise RunRefused(f"prune refused: {future_sets.refusal(run.profile, futures)}.")
    partial = newest_partial_fulls(run)
    reasons = (
        [
            f"the newest full backup of {', '.join(partial)} is partial (files "
            "it could not read may be only in the older backups retention would remove): make "
            "them readable or exclude them, then run "
            f"`{suggest.command('backup', name)}`, after which retention runs again"
        ]
        if partial
        else []
    )
    reasons += _unprotected(run)
    refusal = "; ".join(reasons) + "." if reasons else ""
    if run.dry_run:
        return _prune_dry_run(run, refusal)
    if refusal:
        raise RunRefused(f"prune refused: {refusal}")
    env = prepare(run)  # keeps the manifests the target lost: kept_manifests reads them
    if held := kept_manifests.found(run):  # retention would delete the chains they restore
        raise RunRefused(f"prune refused: {kept_manifests.refusal(held)}")
    try:
        rules, warnings = apply_retention(run, env)
    except RetentionFailed as error:
        raise RetentionFailed(
            f"retention failed: {error.message.rstrip('.')}: run "
            f"`{suggest.command('prune', name)}` once fixed.",
            detail=error.detail,
            warnings=error.warnings,
        ) from None
    applied = ", ".join(f"{command} {value}" for command, value in rules)
    return RunResult(
        profile=run.profile.name,
        action="prune",
        message=f"retention applied: {applied}",
        warnings=warnings,
    )


def _unprotected(run: Run) -> list[str]:
    """Why a rule would remove the newest chain of each chain of the profile whose target
    cfbackup reads (``retention.unprotected_newest``)."""
    profile = run.profile
    rules = commands.retention_rules(profile)
    if not stores.readable(profile.target) or not any(c == "remove-older-than" for c, _ in rules):
        return []
    return [
        why
        for chain in chains.of(profile)
        if (
            why := unprotected_newest(
                chain.profile,
                rules,
                stores.open_store(chain.profile, run.target_view).list(),
                chain.label if chain.root else "",
            )
        )
    ]


def _dry(run: Run) -> dict:
    """The history's mark of a dry run: its row says what would have happened, not a prune."""
    return {"dry_run": True} if run.dry_run else {}


def _prune_dry_run(run: Run, refusal: str) -> RunResult:
    """What each retention rule would remove, nothing removed: for a swift:// or file://
    target worked out from the target's listing as duplicity decides it
    (``retention.removals``), each backup set with its objects and bytes; elsewhere
    duplicity's own dry run (no ``--force``), its listing in the run log."""
    name = run.profile.name
    rules = commands.retention_rules(run.profile)
    found: list[dict] = []
    by_duplicity = False
    env: dict[str, str] | None = None
    for chain in chains.of(run.profile):
        entry: dict = {"chain": chain.label, "rules": []}
        found.append(entry)
        if not stores.readable(chain.profile.target) or _duplicity_chooses_otherwise(chain.profile):
            env = env if env is not None else prepare(run)
            for rule in rules:
                duplicity(
                    run,
                    lambda fd, rule=rule, profile=chain.profile: commands.retention_argv(
                        profile, rule, dry_run=True, log_fd=fd
                    ),
                    env,
                )
                entry["rules"].append({"rule": " ".join(rule), "listed_by": "duplicity"})
            by_duplicity = True
            continue
        sizes = stores.open_store(chain.profile, run.target_view).list()
        plan = removals([prepared(r) for r in rules], sizes, naming=names.of(chain.profile))
        for rule, removed in plan:
            entry["rules"].append(
                {
                    "rule": f"{rule.command} {rule.value}",
                    "sets": [_described(r, sizes) for r in removed],
                }
            )
    sets = [s for e in found for r in e["rules"] for s in r.get("sets", ())]
    objects = sum(s["objects"] for s in sets)
    size = sum(s["bytes"] for s in sets)
    if sets:
        what = (
            f"prune would remove {len(sets)} backup set(s), {objects} object(s), "
            f"{human_bytes(size)}"
        )
    else:
        what = "prune would remove no backup set"
    if by_duplicity:
        what += " (and, where cfbackup cannot list the target, what duplicity lists in the run log)"
    message = f"dry run: {what}; nothing was removed"
    if refusal:
        message += f"; prune itself would be refused now: {refusal}"
    data = {
        "profile": name,
        "dry_run": True,
        "refused": refusal or None,
        "sets": len(sets),
        "objects": objects,
        "bytes": size,
        "chains": found,
    }
    for line in prune_plan_lines(data):
        log.info("%s", line)
    return RunResult(
        profile=name,
        action="prune",
        message=message,
        data=data,
        stats={"dry_run": True, "sets": len(sets), "objects": objects, "bytes": size},
    )


# extra_options that change which files duplicity sees or when "now" is: the listing cfbackup
# reads would not be what duplicity decides on, so duplicity's own dry run lists instead (the
# --file-prefix options are read with the listing: duplicity/names.py)
CHOICE_OPTIONS = ("--current-time", "--no-check-remote")


def _duplicity_chooses_otherwise(profile) -> bool:
    return any(options.option_name(word) in CHOICE_OPTIONS for word in profile["extra_options"])


def _described(removal, sizes: dict[str, int]) -> dict:
    from duplicity import dup_time

    backup = removal.backup
    return {
        "type": backup.kind,
        "start": dup_time.timetostring(backup.start),
        "end": dup_time.timetostring(backup.end),
        "chain_end": dup_time.timetostring(removal.chain_end),
        "objects": len(backup.objects),
        "bytes": sum(sizes.get(o, 0) for o in backup.objects),
        "names": list(backup.objects),
    }


def prune_plan_lines(data: dict) -> list[str]:
    """A dry run's plan as text: each rule of each chain, and each set it would remove."""
    lines: list[str] = []
    split = len(data["chains"]) > 1
    for entry in data["chains"]:
        where = f" on chain {entry['chain']}" if split else ""
        for rule in entry["rules"]:
            head = f"duplicity {rule['rule']}{where}"
            if "sets" not in rule:
                lines.append(f"{head}: duplicity's own listing is in the run log")
                continue
            if not rule["sets"]:
                lines.append(f"{head}: would remove nothing")
                continue
            lines.append(f"{head}: would remove {len(rule['sets'])} backup set(s):")
            for s in rule["sets"]:
                when = s["end"] if s["type"] == "full" else f"{s['start']} to {s['end']}"
                lines.append(
                    f"  {s['type']:<4} {when} (chain ending {s['chain_end']}): "
                    f"{s['objects']} object(s), {human_bytes(s['bytes'])}"
                )
    return lines


def _nothing_there(run: Run) -> str | None:
    """Why prune or cleanup has nothing to do, or None: the target does not exist (checked
    before duplicity runs, which would create it), or, at a swift:// or file:// target, no
    chain of the profile has an object there (duplicity would remove nothing and report no
    problem)."""
    profile = run.profile
    why = missing_target(profile, run.target_view)
    if why is not None:
        why = f"{why}; nothing was created"
    else:
        every = chains.of(profile)
        if not all(stores.readable(c.profile.target) for c in every):
            return None
        if any(stores.open_store(c.profile, run.target_view).list() for c in every):
            return None
        why = f"it holds no backup of profile {profile.name}"
    return (
        f"no backup at {profile.target} ({why}); check {target_setting(profile)} if there "
        "should be one"
    )


def run_cleanup(run: Run) -> RunResult:
    # one login and one listing for every check (listed again after each duplicity that deletes)
    with target_view(run, retries=stores.request_retries(run.profile)):
        return _cleanup(run)


def _cleanup(run: Run) -> RunResult:
    nothing = _nothing_there(run)
    if nothing:
        dry = "dry run: " if run.dry_run else ""
        message = f"{dry}nothing to clean up: {nothing}"
        log.info("%s", message)
        return RunResult(
            profile=run.profile.name, action="cleanup", stats=_dry(run), message=message
        )
    # an incremental made after the clock was corrected starts at a future-dated set and ends
    # before it: duplicity calls it orphaned and deletes it, the only backup of what changed
    # since (future_sets.py's fix moves it aside with the sets it continues)
    if futures := future_sets.found(run.profile, view=run.target_view):
        raise RunRefused(f"cleanup refused: {future_sets.refusal(run.profile, futures)}.")
    env = prepare(run)  # keeps the manifests the target lost: kept_manifests reads them
    if held := kept_manifests.found(run):  # duplicity deletes such a set as incomplete
        raise RunRefused(f"cleanup refused: {kept_manifests.refusal(held)}")
    warnings: list[str] = []

    def clean(chain: chains.Chain) -> None:
        result = duplicity(
            run,
            lambda fd: commands.cleanup_argv(chain.profile, dry_run=run.dry_run, log_fd=fd),
            env,
            changes_target=not run.dry_run,
        )
        # duplicity ignores a delete the target refused (retention.py): what is still there
        check = check_deletes(chain.profile, [("cleanup", result)])
        if check.refused:
            raise RetentionFailed(
                f"cleanup failed: {check.refused}: run "
                f"`{suggest.command('cleanup', run.profile.name)}` once fixed."
            )
        if check.unconfirmed:  # the deletes were made; only their check was not
            where = f" on chain {chain.label}" if chain.root else ""
            warning = (
                f"cleanup ran{where}, but {check.unconfirmed}; run "
                f"`{suggest.command('cleanup', run.profile.name, '--dry-run')}` once Swift "
                "answers: its run log lists any leftover still there"
            )
            log.warning("warning: %s", warning)
            warnings.append(warning)

    chains.run_each(run.profile, chains.of(run.profile), clean, warnings=warnings)
    return RunResult(
        profile=run.profile.name,
        action="cleanup",
        stats=_dry(run),
        message="dry run: cleanup would remove the leftovers listed in the run log"
        if run.dry_run
        else "cleanup done: leftovers of interrupted runs removed from the target",
        warnings=warnings,
    )
