"""The retention policy: whether it runs, and what each rule leaves at the target that it was
meant to remove.

duplicity ignores a delete that fails while it applies a rule (its backend's delete retries
without failing the command, and its Swift backend does not even read SwiftService's result):
a retention whose deletes Swift refused (an ACL, a middleware, an object lock, a 5xx) exits
0 and the old backups stay, billed. So after duplicity, cfbackup reads the target again and
works out, as duplicity 3.2.1 decides it (``dup_main.remove_old``,
``dup_collections.get_chains_older_than``), what each rule would still remove: anything is
a failed retention. It errs towards "removed": the newest chain never counts (duplicity never
removes the active chain) and a ``remove-older-than`` time is read before duplicity starts,
so it is never later than duplicity's own.
"""

from __future__ import annotations

import dataclasses
import time

from cfbackup import history
from cfbackup.collection import BackupAt, complete_chains
from cfbackup.runtypes import Run

# the run history's statistic naming the chains whose partial backup started a new full
PARTIAL_FULLS = "partial_fulls"


def keeps_all(profile) -> bool:
    """``retention.keep_all``: no rule ever runs, after a backup or in ``prune``."""
    return bool(profile["retention"].get("keep_all"))


def newest_partial_fulls(run: Run) -> list[str]:
    """The chains whose newest full backup is partial (files it could not read), when the last
    backup that reached the target was partial: retention would count that full as one to keep
    and may remove the only backups of those files. A complete backup since clears it."""
    row = history.last_backup_at_target(run.config.state_dir, run.profile.name)
    if row is None or row["result"] != "partial":
        return []
    return list(row["stats"].get(PARTIAL_FULLS) or [])


@dataclasses.dataclass(frozen=True)
class Rule:
    """A duplicity retention command and, for ``remove-older-than``, the time it removes
    before (seconds since the epoch, read when the rule is about to run)."""

    command: str
    value: str
    cutoff: int | None = None


def prepared(rule: tuple[str, str], now: float | None = None) -> Rule:
    """``rule`` (``commands.retention_rules``'s) with its time read now, as duplicity reads it
    (``dup_time.genstrtotime``); a time duplicity cannot read gets none (duplicity fails)."""
    command, value = rule
    if command != "remove-older-than":
        return Rule(command, value)
    from duplicity import dup_time

    try:
        cutoff = dup_time.genstrtotime(value, override_curtime=int(now or time.time()))
    except (dup_time.TimeException, ValueError):
        return Rule(command, value)
    return Rule(command, value, int(cutoff))


def left_behind(rule: Rule, target_names) -> list[BackupAt]:
    """The backup sets at the target (``target_names``: one chain's objects) that ``rule``
    removes: after duplicity applied it, each is one it could not delete."""
    chains = complete_chains(target_names)
    if len(chains) < 2:  # the newest chain is never removed
        return []
    if rule.command == "remove-older-than":
        if rule.cutoff is None:
            return []
        cutoff = rule.cutoff
    else:
        try:
            keep = int(rule.value)
        except ValueError:
            return []
        fulls = sorted((chain[0].start for chain in chains), reverse=True)
        if keep < 1 or len(fulls) < keep:
            return []
        cutoff = fulls[keep - 1]
    old = [chain for chain in chains[:-1] if chain[-1].end < cutoff]
    if rule.command == "remove-all-inc-of-but-n-full":
        return [s for chain in old for s in chain[1:]]
    return [s for chain in old for s in chain]
