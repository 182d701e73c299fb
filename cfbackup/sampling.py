"""Which volumes ``verify --read-data`` reads and which files ``drill`` restores.

Pure functions of their inputs and a seed, so a run can be repeated exactly (the seed is in the
run history). Volume subsets follow restic's ``--read-data-subset``: ``n/t`` is the n-th of t
slices (a volume's slice comes from a hash of its name, so t runs with n = 1..t read every
volume exactly once, and a new volume falls into one slice), ``x%`` and a size pick volumes at
random. ``next/t`` is the slice after the one the last run read: a daily run covers every
volume every t days.

A drill's sample is weighted so that large and small files both get picked: the files are
grouped by size class (powers of 16 bytes: up to 16 B, 256 B, 4 KiB, ... 1 TiB) and each
class gets the same share of the weight, so a tree of 100,000 small files and three large ones
still has the large ones in most samples.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

from cfbackup.units import parse_size

T = TypeVar("T")
_SLICE = re.compile(r"^(\d+|next)/(\d+)$")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")
_COUNT = re.compile(r"^(\d+)\s*(?:files?)?$")


@dataclasses.dataclass(frozen=True)
class Subset:
    """A ``--read-data`` subset: ``all``, ``slice`` (n of t; n None: the next one),
    ``percent`` or ``size``."""

    kind: str
    n: int | None = None
    t: int | None = None
    percent: float | None = None
    size: int | None = None

    def describe(self) -> str:
        if self.kind == "slice":
            return f"slice {self.n}/{self.t}"
        if self.kind == "percent":
            return f"{self.percent:g}%"
        if self.kind == "size":
            return f"{self.size} bytes"
        return "all volumes"


def parse_subset(text: str | None) -> Subset:
    """``n/t``, ``next/t``, ``x%``, a size (``500M``), or None/``all``: every volume."""
    if text is None or text.strip().lower() in ("", "all", "100%"):
        return Subset("all")
    text = text.strip()
    match = _SLICE.match(text)
    if match:
        t = int(match.group(2))
        n = None if match.group(1) == "next" else int(match.group(1))
        if t < 1 or (n is not None and not 1 <= n <= t):
            raise ValueError(f"{text!r}: in n/t, t is at least 1 and n runs from 1 to t")
        return Subset("slice", n=n, t=t)
    match = _PERCENT.match(text)
    if match:
        percent = float(match.group(1))
        if not 0 < percent <= 100:
            raise ValueError(f"{text!r}: a percentage is above 0 and at most 100")
        return Subset("percent", percent=percent)
    try:
        size = parse_size(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a subset: n/t (e.g. 1/7), next/t, x% (e.g. 10%) or a size (e.g. 500M)"
        ) from None
    if size < 1:
        raise ValueError(f"{text!r}: a size is at least 1 byte")
    return Subset("size", size=size)


def slice_of(key: str, t: int) -> int:
    """The slice (1..t) a volume belongs to: stable across runs, machines and Python versions."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % t + 1


def choose_volumes(
    volumes: Sequence[T],
    subset: Subset,
    rng: random.Random,
    *,
    key: Callable[[T], str],
    size: Callable[[T], int],
) -> list[T]:
    """The volumes a subset selects, in their original order."""
    if subset.kind == "all":
        return list(volumes)
    if subset.kind == "slice":
        return [v for v in volumes if slice_of(key(v), subset.t) == subset.n]
    order = list(volumes)
    rng.shuffle(order)
    if subset.kind == "percent":
        chosen = order[: math.ceil(len(order) * subset.percent / 100)]
    else:
        chosen, total = [], 0
        for volume in order:
            if total >= subset.size:
                break
            chosen.append(volume)
            total += size(volume)
    picked = {id(v) for v in chosen}
    return [v for v in volumes if id(v) in picked]


@dataclasses.dataclass(frozen=True)
class Sample:
    """A drill's ``--sample``: ``percent`` of the files, ``size`` bytes, or ``count`` files."""

    kind: str
    value: float

    def describe(self) -> str:
        if self.kind == "percent":
            return f"{self.value:g}%"
        if self.kind == "size":
            return f"{int(self.value)} bytes"
        return f"{int(self.value)} files"


def parse_sample(text: str) -> Sample:
    """``2%``, ``200M`` (a size: needs a unit), or ``50`` / ``50 files``."""
    text = text.strip()
    match = _PERCENT.match(text)
    if match:
        percent = float(match.group(1))
        if not 0 < percent <= 100:
            raise ValueError(f"{text!r}: a percentage is above 0 and at most 100")
        return Sample("percent", percent)
    match = _COUNT.match(text)
    if match:
        if int(match.group(1)) < 1:
            raise ValueError(f"{text!r}: sample at least 1 file")
        return Sample("count", int(match.group(1)))
    try:
        return Sample("size", parse_size(text))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a sample: a percentage of the files (2%), a size (200M) or a number "
            "of files (50 files)"
        ) from None


def size_class(size: int) -> int:
    """0 for up to 16 bytes, 1 up to 256, 2 up to 4 KiB ... (powers of 16)."""
    return 0 if size <= 16 else math.ceil(math.log(size, 16)) - 1


def pick_files(
    items: Sequence[T], sample: Sample, rng: random.Random, *, size: Callable[[T], int]
) -> list[T]:
    """A weighted random sample without replacement (Efraimidis-Spirakis: each item's key is
    u^(1/w), the largest keys win), each size class weighing the same in total. A size sample
    takes files in that order as long as they fit, and at least one."""
    if not items:
        return []
    classes = Counter(size_class(size(item)) for item in items)
    keyed = sorted(
        items,
        key=lambda item: rng.random() ** classes[size_class(size(item))],
        reverse=True,
    )
    if sample.kind == "percent":
        return keyed[: max(1, math.ceil(len(keyed) * sample.value / 100))]
    if sample.kind == "count":
        return keyed[: int(sample.value)]
    chosen, total = [], 0
    for item in keyed:
        if chosen and total + size(item) > sample.value:
            continue
        chosen.append(item)
        total += size(item)
    return chosen
