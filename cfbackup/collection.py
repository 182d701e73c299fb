"""duplicity's ``collection-status`` of a chain, worked out by cfbackup from the names of the
target's objects and of the archive dir's files, without running duplicity.

duplicity takes the archive dir's lock for every command, collection-status included: a
``cfbackup status`` that overlapped a backup, a prune or a cleanup made whichever started
second fail ("another duplicity process is using this profile's archive dir"). Read here, the
chains need no lock, and nothing a running backup does is disturbed.

The result is :func:`cfbackup.duplicity.machinelog.parse_collection_status`'s, decided as
duplicity 3.2.1 decides it (``dup_collections.CollectionsStatus.set_values``): the target's
names and the archive dir's partial ones (a backup in progress or interrupted) make the backup
sets, by time; a set without a manifest is incomplete; each full set starts a chain, an
incremental joins the chain ending where it starts (or replaces that chain's last incremental
when it starts at the same time and ends later), else it is orphaned. The newest chain is
``complete`` when a signature chain (in the archive dir or at the target) ends where it does
(or where its next-to-last set does: that last set then counts as incomplete); every other
chain is ``no-sig``. Names are parsed with duplicity's own ``file_naming``, with the profile's
file prefixes (``duplicity/names.py``: pass ``names.of(profile)``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path

from cfbackup.duplicity.names import Naming


@dataclasses.dataclass
class _Set:
    kind: str  # "full" or "inc"
    time: int | None  # a full set's
    start: int | None  # an incremental's
    end: int | None  # an incremental's
    encrypted: bool
    partial: bool
    manifest: bool = False
    volumes: set[int] = dataclasses.field(default_factory=set)

    @property
    def when(self) -> int:
        return self.time if self.kind == "full" else self.end


@dataclasses.dataclass
class _Chain:
    sets: list[_Set]

    @property
    def end(self) -> int:
        return self.sets[-1].when

    def listed(self) -> list[_Set]:
        """The sets duplicity lists: a full set without volumes is left out (an empty set is
        false to ``BackupChain.get_all_sets``)."""
        first = self.sets[0]
        return self.sets[1:] if first.kind == "full" and not first.volumes else self.sets


@dataclasses.dataclass
class Collection:
    """What duplicity's ``CollectionsStatus`` holds after ``set_values``: the chains without
    matching signatures (``other``, oldest end first), the newest chain when its signatures
    match (``primary``), the orphaned and the incomplete sets."""

    other: list[_Chain]
    primary: _Chain | None
    orphaned: list[_Set]
    incomplete: list[_Set]
    # the newest chain's last set, when its signatures are missing: duplicity drops it from the
    # chain but keeps the chain's end time
    discarded: _Set | None = None

    @property
    def chains(self) -> list[_Chain]:
        return self.other + ([self.primary] if self.primary else [])

    def last_full(self) -> int | None:
        """``get_last_full_backup_time``: the newest chain's full set time (None: no chain)."""
        return max((c.sets[0].time for c in self.chains), default=None)


def read(target_names: Iterable[str], archive_folder: Path, *, naming: Naming) -> Collection:
    """The collection of one chain: ``target_names`` are its objects' names at the target,
    ``archive_folder`` its archive dir (``ARCHIVE_DIR/NAME``), ``naming`` the profile's."""
    try:
        local = sorted(os.listdir(archive_folder))
    except OSError:
        local = []
    remote = list(target_names)

    def parsed(names):
        return [found for _, found in naming.parsed(names)]

    partials = [p for p in parsed(local) if p.partial]
    sets = _sets([*partials, *parsed(remote)])
    incomplete = [s for s in sets if not s.manifest]
    chains, orphaned = _chains(sets)

    matched = None
    discarded = None
    signatures = _signature_ends(parsed(local)) + _signature_ends(parsed(remote))
    if signatures and chains:
        latest = chains[-1]
        for end in sorted(signatures, reverse=True):
            if end == latest.end:
                matched = latest
                break
            if len(latest.listed()) >= 2 and end == latest.listed()[-2].end:
                discarded = latest.sets.pop()  # its signatures are missing
                incomplete.append(discarded)
                matched = latest
                break
    other = [c for c in chains if c is not matched]
    return Collection(other, matched, orphaned, incomplete, discarded)


def status(target_names: Iterable[str], archive_folder: Path, *, naming: Naming) -> dict:
    """The collection status of one chain (:func:`read`), as
    :func:`cfbackup.duplicity.machinelog.parse_collection_status` gives duplicity's."""
    return summary(read(target_names, archive_folder, naming=naming))


def summary(found: Collection) -> dict:
    """:func:`status` of a collection already read."""
    result: dict = {"chains": [], "orphaned_sets": len(found.orphaned), "incomplete_sets": 0}
    for chain in found.chains:
        result["chains"].append(
            {
                "state": "complete" if chain is found.primary else "no-sig",
                "sets": [_describe(s) for s in chain.listed()],
            }
        )
    result["incomplete_sets"] = len(found.incomplete)
    return result


@dataclasses.dataclass(frozen=True)
class BackupAt:
    """One backup set at the target, with every object of it (volumes, manifest and
    its signatures: what duplicity deletes with the set)."""

    kind: str  # "full" or "inc"
    start: int  # a full set's time, an incremental's start
    end: int  # a full set's time, an incremental's end
    objects: tuple[str, ...]


def backup_chains(target_names: Iterable[str], *, naming: Naming) -> list[list[BackupAt]]:
    """The chains the target's objects make, oldest end first: what duplicity's retention
    commands choose from (a set without its manifest too, as duplicity removes it with its
    chain); orphaned incrementals are ``cleanup``'s."""
    named = naming.parsed(target_names)
    found_chains, _ = _chains(_sets(pr for _, pr in named))

    def objects(backup_set: _Set) -> tuple[str, ...]:
        kinds = {"full": ("full", "full-sig", "full-stat"), "inc": ("inc", "new-sig", "inc-stat")}
        return tuple(
            name
            for name, pr in named
            if pr.type in kinds[backup_set.kind]
            and (
                pr.time == backup_set.time
                if backup_set.kind == "full"
                else (pr.start_time, pr.end_time) == (backup_set.start, backup_set.end)
            )
        )

    return [
        [
            BackupAt(s.kind, s.time if s.kind == "full" else s.start, s.when, objects(s))
            for s in chain.sets
        ]
        for chain in found_chains
    ]


def _sets(parsed_names) -> list[_Set]:
    """The backup sets that parsed names (``file_naming.parse``'s) make, by time."""
    sets: list[_Set] = []
    for pr in parsed_names:
        if pr.type not in ("full", "inc", "full-stat", "inc-stat"):
            continue
        kind = pr.type.replace("-stat", "")
        found = next(
            (
                s
                for s in sets
                if s.kind == kind
                and s.time == pr.time
                and s.start == pr.start_time
                and s.end == pr.end_time
            ),
            None,
        )
        if found is None:
            found = _Set(kind, pr.time, pr.start_time, pr.end_time, bool(pr.encrypted), pr.partial)
            sets.append(found)
        elif found.partial and pr.encrypted:
            found.encrypted = True
        if "-stat" in pr.type:
            continue
        if pr.manifest:
            found.manifest = True
        elif pr.volume_number is not None:
            found.volumes.add(int(pr.volume_number))
    sets.sort(key=lambda s: s.when)
    return sets


def _chains(sets: list[_Set]) -> tuple[list[_Chain], list[_Set]]:
    """The chains ``sets`` (by time) make, oldest end first, and the orphaned incrementals."""
    chains: list[_Chain] = []
    orphaned: list[_Set] = []
    for backup_set in sets:
        if backup_set.kind == "full":
            chains.append(_Chain([backup_set]))
            continue
        for chain in chains:
            last = chain.sets[-1]
            if chain.end == backup_set.start:
                chain.sets.append(backup_set)
                break
            if last.kind == "inc" and backup_set.start == last.start and backup_set.end > last.end:
                chain.sets[-1] = backup_set  # duplicity prefers the longer one
                break
        else:
            orphaned.append(backup_set)
    chains.sort(key=lambda c: c.end)
    return chains, orphaned


def _signature_ends(names) -> list[int]:
    """The end times of the signature chains among parsed names (full signatures, each
    followed by the incremental signatures that continue it)."""
    ends: list[int] = []
    news = []
    for pr in names:
        if pr.type == "full-sig":
            ends.append(pr.time)
        elif pr.type == "new-sig":
            news.append(pr)
    for pr in sorted(news, key=lambda p: int(p.start_time)):
        if pr.start_time in ends:
            ends[ends.index(pr.start_time)] = pr.end_time
    return ends


def _describe(backup_set: _Set) -> dict:
    from duplicity import dup_time

    return {
        "type": backup_set.kind,
        "time": dup_time.timetostring(backup_set.when),
        "volumes": len(backup_set.volumes),
        "encrypted": backup_set.encrypted,
    }
