"""How a drill restores its sample: which duplicity restores, each of which paths.

duplicity restores one path per run (``--path-to-restore``), or, in one run over every volume,
the paths of a list (``only``, its restore-time selection). Each run costs about 1.3 s of CPU
before it reads a volume (start-up, manifests), and every volume it touches costs a download
and about 0.6 s of gpg and tar per 50 MB; writing what it restores costs a little too (all
measured on the 2-core test machine, docs/checks.md). So a few files of a large backup are
cheapest one run each, many files one run over everything, and files that share a folder can
be one run restoring that folder: :func:`plan` picks, folder by folder from the deepest, what
costs least.

Pure functions: the manifests and the signatures' sizes go in, a list of units comes out.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import os
from collections.abc import Callable, Sequence

from cfbackup.signatures import Entry
from cfbackup.volumes import VolumeRef

RUN_SECONDS = 1.3  # one duplicity restore before any volume (CPU, measured)
VOLUME_SECONDS_PER_BYTE = 0.65 / 52_000_000  # download hash + gpg + tar of a 50 MB volume
WRITE_SECONDS_PER_BYTE = 0.2 / 52_000_000  # writing restored files

# duplicity's filelist reader strips blanks around a line and quotes around it, skips comment
# lines and reads "+ "/"- " as modifiers; it also reads the list as UTF-8 text, so one name that
# is not UTF-8 crashes the whole restore (duplicity 3.2 opens it with encoding="UTF-8"): such
# paths get a restore of their own (``--path-to-restore`` takes any bytes)
_UNLISTABLE_STARTS = ("#", "+ ", "- ")


@dataclasses.dataclass
class Unit:
    """One duplicity restore: of one file (``folder`` false), of a folder with everything in
    it, or (the folder ``()``) of just the listed ``files`` from the whole backup."""

    prefix: tuple[bytes, ...]
    folder: bool
    files: list[Entry]
    volumes: list[VolumeRef]
    cost: float

    @property
    def whole(self) -> bool:
        return self.folder and self.prefix == ()

    @property
    def path(self) -> str:
        return os.fsdecode(b"/".join(self.prefix))


class Sizes:
    """Bytes under any path of the backup, from the signatures' file sizes."""

    def __init__(self, entries: Sequence[Entry]):
        ordered = sorted((e.index, e.size) for e in entries)
        self._keys = [index for index, _ in ordered]
        self._sums = [0]
        for _, size in ordered:
            self._sums.append(self._sums[-1] + size)

    def under(self, prefix: tuple[bytes, ...]) -> int:
        if not prefix:
            return self._sums[-1]
        low = bisect.bisect_left(self._keys, prefix)
        high = bisect.bisect_left(self._keys, (*prefix[:-1], prefix[-1] + b"\x00"))
        return self._sums[high] - self._sums[low]


def listable(entry: Entry) -> bool:
    """Can the path be a line of a restore list (see ``_UNLISTABLE_STARTS``)?"""
    path = entry.path
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:  # a name in another encoding (latin-1 from an old system)
        return False
    quoted = len(path) > 1 and path[0] in "'\"" and path[-1] == path[0]
    return path == path.strip() and not path.startswith(_UNLISTABLE_STARTS[:3]) and not quoted


def plan(
    files: Sequence[Entry],
    volumes_for: Callable[[tuple[bytes, ...]], list[VolumeRef]],
    sizes: Sizes,
    *,
    usable: Callable[[Unit], bool] = lambda unit: True,
    max_unit_seconds: float | None = None,
) -> list[Unit]:
    """The cheapest restores (by the cost model above) that together restore ``files``: for
    every folder holding sampled files, one restore of the folder or the best plan for each of
    its sub-folders and one restore per file directly in it, whichever costs less (at the top,
    one restore over every volume listing the files). A folder restore must be ``usable``
    (e.g. need no volume known to be bad) and cost at most ``max_unit_seconds`` (a drill with
    a time limit advances in steps, and a restore cut short checks nothing)."""

    def unit(prefix: tuple[bytes, ...], members: list[Entry], folder: bool = True) -> Unit:
        volumes = volumes_for(prefix)
        whole = folder and not prefix
        written = sum(e.size for e in members) if whole else sizes.under(prefix)
        cost = RUN_SECONDS + sum(v.size or 0 for v in volumes) * VOLUME_SECONDS_PER_BYTE
        return Unit(prefix, folder, list(members), volumes, cost + written * WRITE_SECONDS_PER_BYTE)

    def fits(candidate: Unit) -> bool:
        return usable(candidate) and (
            max_unit_seconds is None or candidate.cost <= max_unit_seconds
        )

    def best(prefix: tuple[bytes, ...], members: list[Entry]) -> list[Unit]:
        depth = len(prefix)
        split = [unit(e.index, [e], folder=False) for e in members if len(e.index) == depth + 1]
        deeper = [e for e in members if len(e.index) > depth + 1]
        for name, group in itertools.groupby(deeper, key=lambda e: e.index[depth]):
            split += best((*prefix, name), list(group))
        if len(split) < 2:
            return split
        if prefix:
            merged = [unit(prefix, members)]
        else:  # one restore over everything: only of names a restore list can hold
            listed = [e for e in members if listable(e)]
            if not listed:
                return split
            merged = [unit((), listed)]
            merged += [unit(e.index, [e], folder=False) for e in members if not listable(e)]
        cheaper = sum(u.cost for u in merged) < sum(u.cost for u in split)
        return merged if cheaper and fits(merged[0]) else split

    return best((), sorted(files, key=lambda e: e.index))
