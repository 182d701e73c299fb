"""``cfbackup backup``: pre hooks (which may veto), duplicity, retention, post hooks."""

from __future__ import annotations

from cfbackup import passcheck
from cfbackup.actions.common import check_source, duplicity, log, prepare
from cfbackup.duplicity import archive, commands
from cfbackup.errors import PartialBackup, RunRefused
from cfbackup.runner import Run, RunResult


def run_backup(run: Run) -> RunResult:
    profile = run.profile
    check_source(run)
    env = prepare(run)
    passcheck.check_passphrase(profile, env)
    vetoes = [reason for reason in run.hooks.cfbackup_pre_backup(run=run) if reason]
    if vetoes and not run.options.get("ignore_guards"):
        raise RunRefused("backup refused before anything was uploaded: " + "; ".join(vetoes))
    full = bool(run.options.get("full"))
    result = duplicity(
        run,
        lambda fd: commands.backup_argv(profile, full=full, dry_run=run.dry_run, log_fd=fd),
        env,
    )
    outcome = RunResult(profile=profile.name, action="backup", stats=dict(result.statistics))
    if not run.dry_run and profile["retention"]["after_backup"]:
        apply_retention(run, env, skip_idle=True)
    run.hooks.cfbackup_post_backup(run=run, result=outcome)
    unreadable = result.unreadable
    if unreadable:
        shown = ", ".join(unreadable[:10]) + (" ..." if len(unreadable) > 10 else "")
        raise PartialBackup(
            f"backup completed but {len(unreadable)} file(s) could not be read and are not in "
            f"it: {shown}: fix their permissions or exclude them."
        )
    stats = result.statistics
    outcome.message = (
        f"{'dry run: ' if run.dry_run else ''}backup of {profile.name} done: "
        f"{stats.get('SourceFiles', '?')} files, {stats.get('NewFiles', '?')} new, "
        f"{stats.get('ChangedFiles', '?')} changed, {stats.get('TotalDestinationSizeChange', 0)} "
        "bytes uploaded"
    )
    log.info("%s", outcome.message)
    return outcome


def apply_retention(
    run: Run, env: dict[str, str], *, skip_idle: bool = False
) -> list[tuple[str, str]]:
    """Run each retention rule of the profile; returns the rules applied.

    ``skip_idle`` (right after a backup, when the local archive is in step with the target)
    leaves out the rules that cannot remove anything (``duplicity/archive.py``).
    """
    rules = commands.retention_rules(run.profile)
    if skip_idle:
        fulls = archive.full_backups(run.profile)
        idle = [rule for rule in rules if not archive.rule_can_remove(rule, fulls)]
        for rule in idle:
            log.info(
                "retention: duplicity %s %s skipped: %d full backup(s), nothing it could remove",
                *rule,
                len(fulls or ()),
            )
        rules = [rule for rule in rules if rule not in idle]
    for rule in rules:
        log.info("retention: duplicity %s %s", *rule)
        duplicity(
            run, lambda fd, rule=rule: commands.retention_argv(run.profile, rule, log_fd=fd), env
        )
    return rules
