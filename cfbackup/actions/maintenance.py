"""``cfbackup prune`` (retention) and ``cfbackup cleanup`` (duplicity's leftovers)."""

from __future__ import annotations

from cfbackup import chains, stores, suggest
from cfbackup.actions.backup import apply_retention
from cfbackup.actions.common import duplicity, log, prepare
from cfbackup.duplicity import commands
from cfbackup.errors import RetentionFailed, RunRefused
from cfbackup.retention import (
    cleanup_list,
    delete_failure,
    keeps_all,
    newest_partial_fulls,
    refused,
)
from cfbackup.runtypes import Run, RunResult


def run_prune(run: Run) -> RunResult:
    name = run.profile.name
    if keeps_all(run.profile):
        message = (
            f"retention: nothing removed: profile {name} keeps every backup "
            "(retention.keep_all = true)"
        )
        log.info("%s", message)
        return RunResult(profile=name, action="prune", message=message)
    partial = newest_partial_fulls(run)
    if partial:
        raise RunRefused(
            f"prune refused: the newest full backup of {', '.join(partial)} is partial (files "
            "it could not read may be only in the older backups retention would remove): make "
            "them readable or exclude them, then run "
            f"`{suggest.command('backup', name)}`, after which retention runs again."
        )
    env = prepare(run)
    try:
        rules = apply_retention(run, env)
    except RetentionFailed as error:
        raise RetentionFailed(
            f"retention failed: {error.message.rstrip('.')}: run "
            f"`{suggest.command('prune', name)}` once fixed.",
            detail=error.detail,
        ) from None
    applied = ", ".join(f"{command} {value}" for command, value in rules)
    return RunResult(
        profile=run.profile.name, action="prune", message=f"retention applied: {applied}"
    )


def run_cleanup(run: Run) -> RunResult:
    env = prepare(run)

    def clean(chain: chains.Chain) -> None:
        result = duplicity(
            run,
            lambda fd: commands.cleanup_argv(chain.profile, dry_run=run.dry_run, log_fd=fd),
            env,
        )
        meant = cleanup_list(result)
        if run.dry_run or not meant or not stores.readable(chain.profile.target):
            return
        # duplicity ignores a delete the target refused (retention.py): what is still there
        kept = set(meant) & set(stores.open_store(chain.profile).list())
        if kept:
            what = f"{len(kept)} leftover object(s) that duplicity cleanup removes"
            raise RetentionFailed(
                f"cleanup failed: {refused(chain.profile, what, delete_failure(result))}: run "
                f"`{suggest.command('cleanup', run.profile.name)}` once fixed."
            )

    chains.run_each(run.profile, chains.of(run.profile), clean)
    return RunResult(
        profile=run.profile.name,
        action="cleanup",
        message="dry run: cleanup would remove the leftovers listed in the run log"
        if run.dry_run
        else "cleanup done: leftovers of interrupted runs removed from the target",
    )
