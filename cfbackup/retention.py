"""The retention policy: whether it runs, what each rule would remove (``prune --dry-run``),
and whether the target deleted what duplicity's rules and cleanup set out to delete.

duplicity ignores a delete that fails (its backend's delete retries without failing the
command; its Swift backend did not even read SwiftService's result until cfbackup's
``swift-deletes`` patch, which makes it warn with Swift's answer): a retention whose deletes
Swift refused (an ACL, a middleware, an object lock, a 5xx) exits 0 and the old backups stay,
billed. The check after a run does not work out what duplicity meant to delete: duplicity
names each file as it deletes it (``patches/named_deletes.py``), and after it ends cfbackup
asks the target for each of them; any still there is a delete the target refused.

Only the preview (``prune --dry-run``, nothing deleted yet) works out what each rule removes,
as duplicity 3.2.1 decides it (``dup_main.remove_old``,
``dup_collections.get_chains_older_than``), from the target's listing.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from cfbackup import collection, history, stores, suggest, units
from cfbackup.collection import BackupAt, backup_chains
from cfbackup.duplicity import machinelog
from cfbackup.duplicity import names as file_names
from cfbackup.duplicity.patches import named_deletes
from cfbackup.duplicity.patches.swift_deletes import REFUSED
from cfbackup.duplicity.target import swift_target
from cfbackup.redact import redact
from cfbackup.runtypes import Run

if TYPE_CHECKING:
    from cfbackup.config.model import Profile
    from cfbackup.duplicity.result import DuplicityResult

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


def unprotected_newest(profile: Profile, rules, target_names, chain: str = "") -> str:
    """Why ``remove-older-than`` among ``rules`` would remove the newest chain of ``profile``
    (one chain's; ``target_names``: its objects, ``chain``: its label with ``split_chains``),
    "" when it would not. duplicity keeps only the chain its signatures match
    (``dup_collections.get_chains_older_than``): with the newest chain's signatures gone from
    the target and the archive dir (a new machine, a lost signature file), it removes every
    chain older than the rule's time, the newest too. ``remove-all-but-n-full`` and
    ``remove-all-inc-of-but-n-full`` cut at the n-th newest full, which the newest chain never
    ends before: they keep it either way."""
    if not any(command == "remove-older-than" for command, _ in rules):
        return ""
    found = collection.read(
        target_names, profile.archive_dir / profile.backup_name, naming=file_names.of(profile)
    )
    if found.primary is not None or not found.chains:
        return ""
    from duplicity import dup_time

    newest = found.chains[-1]
    where = f" of {chain}" if chain else ""
    return (
        f"the newest backup chain{where} (the full backup of "
        f"{dup_time.timetostring(newest.sets[0].when)}, ending "
        f"{dup_time.timetostring(newest.end)}) has no signatures, at the target or in the "
        f"archive dir, so duplicity's remove-older-than would not keep it but delete it with "
        "every older chain the rule reaches; run "
        f"`{suggest.command('backup', profile.name, '--full')}` to start a new chain "
        "with its signatures, after which retention runs again"
    )


@dataclasses.dataclass(frozen=True)
class Rule:
    """A duplicity retention command and, for ``remove-older-than``, the time it removes
    before (seconds since the epoch, read when the rule is about to run)."""

    command: str
    value: str
    cutoff: int | None = None


def prepared(rule: tuple[str, str], now: float | None = None) -> Rule:
    """``rule`` (``commands.retention_rules``'s) with its time read now, as duplicity reads it
    (``duplicity/times.py``); a time duplicity cannot read (the config refuses it when loaded)
    gets none (duplicity fails)."""
    command, value = rule
    if command != "remove-older-than":
        return Rule(command, value)
    from cfbackup.duplicity.times import duplicity_time

    try:
        cutoff = duplicity_time(value, now)
    except ValueError:
        return Rule(command, value)
    return Rule(command, value, int(cutoff))


def left_behind(rule: Rule, target_names, *, naming: file_names.Naming) -> list[BackupAt]:
    """The backup sets at the target (``target_names``: one chain's objects, read with
    ``naming``) that ``rule`` would remove, as duplicity chooses them (for :func:`removals`)."""
    chains = backup_chains(target_names, naming=naming)
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


@dataclasses.dataclass(frozen=True)
class Removal:
    """A backup set a rule removes, with the end time of its chain (what duplicity's own
    listing names: "Found old backup chain(s) at the following time")."""

    backup: BackupAt
    chain_end: int


def removals(
    rules: list[Rule], target_names, *, naming: file_names.Naming
) -> list[tuple[Rule, list[Removal]]]:
    """What each rule removes from the target (``target_names``: one chain's objects, read with
    ``naming``) when
    the rules run in order, each on what the ones before it left, as cfbackup runs them: a
    ``prune --dry-run``'s answer, before anything is deleted (a real run is checked on the
    files duplicity names instead: :func:`check_deletes`)."""
    left = set(target_names)
    planned: list[tuple[Rule, list[Removal]]] = []
    for rule in rules:
        ends = {s: chain[-1].end for chain in backup_chains(left, naming=naming) for s in chain}
        removed = left_behind(rule, left, naming=naming)
        planned.append((rule, [Removal(s, ends[s]) for s in removed]))
        for backup_set in removed:
            left -= set(backup_set.objects)
    return planned


def deleted(result: DuplicityResult) -> list[str]:
    """The files at the target a duplicity command set out to delete, as it named them
    (``patches/named_deletes.py``; none under its own ``--dry-run``), each once."""
    names = [
        machinelog.file_name(r.extra.removeprefix(named_deletes.DELETE).strip())
        for r in result.records_with("INFO")
        if r.extra.startswith(named_deletes.DELETE + " ")
    ]
    return list(dict.fromkeys(names))


@dataclasses.dataclass(frozen=True)
class DeleteCheck:
    """What the target answered about the files duplicity set out to delete (for
    :func:`check_deletes`): ``refused``, the cause and fix when some are still there (the run
    fails: exit 13); ``unconfirmed``, why some could not be asked about when none was seen still
    there and duplicity reported no refused delete (a warning: the deletes were made, only their
    check was not); "" when not so."""

    refused: str = ""
    unconfirmed: str = ""


def left_at_target(profile: Profile, names) -> list[str]:
    """Those of ``names`` (:func:`deleted`'s, for ``profile``'s chain) still at its target:
    each a delete the target refused. Swift is asked object by object (its listings lag
    deletes); [] for a target cfbackup does not read itself; ``stores.Unconfirmed`` when the
    target could not answer for some."""
    names = list(names)
    if not names or not stores.readable(profile.target):
        return []
    return stores.open_store(profile).remaining(names)


def check_deletes(profile: Profile, done: list[tuple[str, DuplicityResult]]) -> DeleteCheck:
    """Whether the target deleted what the duplicity commands in ``done`` (each
    ``"remove-older-than 3M"`` or ``"cleanup"`` and its result, on ``profile``'s chain) set out
    to delete. A check Swift could not answer is no refused delete: only an object seen still
    there (a 200) is one, or a delete Swift answered with a refusal (duplicity reports it)."""
    names = list(dict.fromkeys(name for _, result in done for name in deleted(result)))
    try:
        kept, unknown, reason = left_at_target(profile, names), [], ""
    except stores.Unconfirmed as no_answer:
        kept, unknown, reason = no_answer.kept, no_answer.unknown, no_answer.reason
    reason = redact(reason.strip().rstrip("."))
    if kept:
        more = f" ({len(unknown)} more could not be confirmed gone: {reason})" if unknown else ""
        return DeleteCheck(refused=deletes_refused(profile, done, kept, more))
    if unknown:
        commands = [what for what, result in done if set(deleted(result)) & set(unknown)]
        said = [r for what, result in done if what in commands and (r := delete_failure(result))]
        if said:  # Swift's own answer to a DELETE: a refusal, whatever the check could not see
            return DeleteCheck(
                refused=refused_unchecked(profile, commands, unknown, said[-1], reason)
            )
        return DeleteCheck(
            unconfirmed=f"the deletes of {len(unknown)} object(s) that duplicity "
            f"{' and '.join(commands)} set out to delete could not be confirmed ({reason})"
        )
    return DeleteCheck()


def deletes_refused(
    profile: Profile, done: list[tuple[str, DuplicityResult]], kept: list[str], more: str = ""
) -> str:
    """The cause and fix when the target kept ``kept``, files that the duplicity commands in
    ``done`` set out to delete (``more``: what else is to be said of the others)."""
    commands = [what for what, result in done if set(deleted(result)) & set(kept)]
    reasons = [reason for _, result in done if (reason := delete_failure(result))]
    shown = ", ".join(units.printable_name(name) for name in kept[:3])
    what = (
        f"{len(kept)} object(s) that duplicity {' and '.join(commands)} set out to delete "
        f"({shown}{', ...' if len(kept) > 3 else ''})"
    )
    return refused(profile, what, reasons[-1] if reasons else "", more)


def refused_unchecked(
    profile: Profile, commands: list[str], unknown: list[str], said: str, reason: str
) -> str:
    """The cause and fix when duplicity reported a delete the target refused (``said``) and
    the check of ``unknown`` could not be made (``reason``: Swift's answer to it)."""
    target = swift_target(profile.target)
    place = f"container {target.container}" if target else profile.target
    shown = ", ".join(units.printable_name(name) for name in unknown[:3])
    return (
        f"duplicity {' and '.join(commands)} reported that the target refused a delete "
        f"({said}), and whether the {len(unknown)} object(s) it set out to delete ({shown}"
        f"{', ...' if len(unknown) > 3 else ''}) are still in {place} could not be checked "
        f"({reason}); let the storage user delete objects there (its ACL, an object lock, a "
        "quota tool or a middleware may refuse deletes)"
    )


def delete_failure(result: DuplicityResult) -> str:
    """duplicity's last word on a delete it could not make, redacted; "" when none: a backend
    whose delete raises warns at each try and goes on; the Swift backend warns once with
    Swift's answer (``patches/swift_deletes.py``)."""
    said = [
        r.message.partition(" failed. ")[2]
        if r.message.startswith("Attempt of _do_delete")
        else r.message
        for r in result.records
        if r.level == "WARNING"
        and (r.message.startswith("Attempt of _do_delete") or r.message.startswith(REFUSED))
    ]
    return redact(said[-1].strip()) if said else ""


def refused(profile: Profile, what: str, reason: str, more: str = "") -> str:
    """The cause and fix of deletes the target refused: ``what`` (still there) names them."""
    target = swift_target(profile.target)
    place = f"container {target.container}" if target else profile.target
    return (
        f"{what} are still in {place}{more}: the target refused to delete them "
        f"({reason or 'duplicity does not say why'}); let the storage user delete objects there "
        "(its ACL, an object lock, a quota tool or a middleware may refuse deletes)"
    )
