"""Backup sets dated after now at the target: a clock that was ahead, then corrected.

duplicity dates every set by the clock of the machine that made it and orders sets by those
dates only. Once a set dated in the future is at the target, it is the newest backup whatever
is made after it: an incremental continues from it (and ends before it starts), a new full is
older than it, so ``keep_full`` retention removes that full right after it is made (its cutoff
is the future full), ``remove-older-than`` removes every chain dated before it, and
``full_if_older_than`` never starts a full. Nothing in duplicity compares a set's date with now.

Backups, retention (after a backup and in ``prune``, its dry run included) and ``cleanup`` (its
dry run too: an incremental made after the clock was corrected starts at a future set and ends
before it, so duplicity's cleanup deletes it as orphaned) refuse while the target holds a set
dated more than :data:`TOLERANCE` after now; ``status`` and ``check`` flag it. "Now" is
duplicity's: ``--current-time`` from ``extra_options`` when given.
"""

from __future__ import annotations

import dataclasses
import shlex
import time
import urllib.parse
from collections.abc import Iterable

from cfbackup import chains, stores, suggest
from cfbackup.collection import BackupAt, backup_chains
from cfbackup.duplicity import names as file_names
from cfbackup.duplicity import options
from cfbackup.duplicity.target import swift_target

# clocks of machines a few minutes apart (a set made elsewhere and copied in) are no future sets
TOLERANCE = 5 * 60


@dataclasses.dataclass(frozen=True)
class Future:
    """The sets of one chain dated after now (``sets``, newest last) and the folder or prefix
    they are in (``chain``: the chain's label with ``split_chains``, else "")."""

    chain: str
    target: str
    sets: list[BackupAt]


def now(profile) -> float:
    """duplicity's now for ``profile``: ``--current-time`` in ``extra_options``, else the clock."""
    given = options.last_value(list(profile["extra_options"]), "--current-time")
    try:
        return float(given) if given is not None else time.time()
    except ValueError:
        return time.time()


def dated_after(
    target_names: Iterable[str], when: float, *, naming: file_names.Naming
) -> list[BackupAt]:
    """The backup sets among ``target_names`` (one chain's objects, read with ``naming``) that
    end or start after ``when``: orphaned incrementals too (one that starts in the future and
    ends now)."""
    names = list(target_names)
    grouped = [s for chain in backup_chains(names, naming=naming) for s in chain]
    found = [s for s in grouped if max(s.start, s.end) > when]
    seen = {o for s in grouped for o in s.objects}
    loose: dict[tuple, list[str]] = {}  # orphaned sets and stray signatures: by their times
    for name, parsed in naming.parsed(names):
        if name in seen:
            continue
        times = [int(t) for t in (parsed.time, parsed.start_time, parsed.end_time) if t]
        if times and max(times) > when:
            key = (parsed.time or parsed.start_time, parsed.time or parsed.end_time)
            loose.setdefault(key, []).append(name)
    kinds = {key: "full" if key[0] == key[1] else "inc" for key in loose}
    found += [BackupAt(kinds[k], int(k[0]), int(k[1]), tuple(v)) for k, v in loose.items()]
    return sorted(found, key=lambda s: (s.end, s.start))


def found(profile, listings: dict[str, Iterable[str]] | None = None, view=None) -> list[Future]:
    """The future-dated sets of each chain of ``profile`` whose target cfbackup reads (swift://,
    file://; others are not listed): ``listings`` (chain label -> its object names) saves
    listing again a chain already listed; ``view``, the run's target view, lists the others
    (``stores.open_store``)."""
    if not stores.readable(profile.target):
        return []
    when = now(profile) + TOLERANCE
    result = []
    for chain in chains.of(profile):
        names = (listings or {}).get(chain.label)
        if names is None:
            names = stores.open_store(chain.profile, view).list()
        sets = dated_after(names, when, naming=file_names.of(chain.profile))
        if sets:
            result.append(Future(chain.label if chain.root else "", chain.profile.target, sets))
    return result


def refusal(profile, futures: list[Future]) -> str:
    """The cause and fix while the target holds ``futures`` (:func:`found`'s): one sentence,
    "" when there are none."""
    if not futures:
        return ""
    from duplicity import dup_time

    count = sum(len(f.sets) for f in futures)
    newest = max((s for f in futures for s in f.sets), key=lambda s: max(s.start, s.end))
    if newest.kind == "full":
        what = f"the full backup of {dup_time.timetostring(newest.start)}"
    else:
        what = (
            f"the incremental backup from {dup_time.timetostring(newest.start)} to "
            f"{dup_time.timetostring(newest.end)}"
        )
    here = dup_time.timetostring(int(now(profile)))
    return (
        f"the target holds {count} backup set(s) dated after now (the newest: {what}), and it "
        f"is {here} here: if this clock is behind, set it right (timedatectl) and run the same "
        "command again; if it is right, those sets were made while it was ahead, and duplicity "
        "takes them for the newest backups (retention would delete every backup made since, "
        f"incrementals would continue from them): {_move(profile, futures)} (keep them until "
        "you no longer need what they hold), then run "
        f"`{suggest.command('backup', profile.name, '--full')}` to start a new chain"
    )


def _move(profile, futures: list[Future]) -> str:
    """How to take the future-dated sets out of the target: exactly their objects (never a
    correctly dated parent full whose time an incremental's name also holds), as a command
    that runs as printed for a file:// target (a symlinked folder too); for Swift, the objects
    by name (docs/reliability.md shows the commands)."""
    steps = []
    for future in futures:
        objects = sorted({o for s in future.sets for o in s.objects})
        swift = swift_target(future.target)
        if swift is None:
            parsed = urllib.parse.urlsplit(future.target)
            folder = urllib.parse.unquote(parsed.netloc + parsed.path).rstrip("/")
            aside = shlex.quote(f"{folder}.future-dated")
            paths = " ".join(shlex.quote(f"{folder}/{name}") for name in objects)
            steps.append(
                f"move them out of the target with `mkdir -p {aside} && mv -t {aside} -- {paths}`"
            )
            continue
        prefix = f"{swift.prefix}/" if swift.prefix else ""
        steps.append(
            f"move these objects of container {swift.container} to another container (swift "
            f"copy, then swift delete): {', '.join(prefix + name for name in objects)}"
        )
    return "; ".join(steps)


def described(futures: list[Future]) -> list[dict]:
    """``status --json``'s ``future_sets``: each set with its chain and its objects' names."""
    from duplicity import dup_time

    return [
        {
            **({"root": f"/{f.chain}"} if f.chain else {}),
            "type": s.kind,
            "start": dup_time.timetostring(s.start),
            "end": dup_time.timetostring(s.end),
            "names": list(s.objects),
        }
        for f in futures
        for s in f.sets
    ]
