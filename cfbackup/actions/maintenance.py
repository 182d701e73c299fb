"""``cfbackup prune`` (retention) and ``cfbackup cleanup`` (duplicity's leftovers)."""

from __future__ import annotations

from cfbackup import chains
from cfbackup.actions.backup import apply_retention
from cfbackup.actions.common import duplicity, prepare
from cfbackup.duplicity import commands
from cfbackup.runtypes import Run, RunResult


def run_prune(run: Run) -> RunResult:
    env = prepare(run)
    rules = apply_retention(run, env)
    applied = ", ".join(f"{command} {value}" for command, value in rules)
    return RunResult(
        profile=run.profile.name, action="prune", message=f"retention applied: {applied}"
    )


def run_cleanup(run: Run) -> RunResult:
    env = prepare(run)

    def clean(chain: chains.Chain) -> None:
        duplicity(
            run,
            lambda fd: commands.cleanup_argv(chain.profile, dry_run=run.dry_run, log_fd=fd),
            env,
        )

    chains.run_each(run.profile, chains.of(run.profile), clean)
    return RunResult(
        profile=run.profile.name,
        action="cleanup",
        message="dry run: cleanup would remove the leftovers listed in the run log"
        if run.dry_run
        else "cleanup done: leftovers of interrupted runs removed from the target",
    )
