"""Paired ratios: cfbackup's time over a peer's within the same repetition, then their median.

Every tool runs each operation once per repetition, back to back (``loop.py``), so what slows
a whole repetition (the VM's cores after sustained load, the kernel's time growing, a helper's
test suite starting) slows every tool in it alike and cancels in that repetition's ratio. A
ratio of medians does not cancel it: cfbackup's median may come from a slow repetition and the
peer's from a fast one. Standard library only.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class Spread:
    """The median of some ratios, their smallest and largest, and how many there were."""

    median: float
    low: float
    high: float
    count: int

    def text(self) -> str:
        """``1.41 (1.12-1.60)``; one ratio alone is just ``1.41``."""
        if self.count == 1:
            return f"{self.median:.2f}"
        return f"{self.median:.2f} ({self.low:.2f}-{self.high:.2f})"


def _usable(value: float) -> bool:
    return value == value and value > 0  # not nan, not zero


def paired(mine: Mapping[int, float], theirs: Mapping[int, float]) -> dict[int, float]:
    """Repetition -> ``mine / theirs`` for each repetition both have a usable time for (a
    repetition one of them lacks is left out, not paired with another)."""
    return {
        rep: mine[rep] / theirs[rep]
        for rep in sorted(mine.keys() & theirs.keys())
        if _usable(mine[rep]) and _usable(theirs[rep])
    }


def spread(ratios: Mapping[int, float]) -> Spread | None:
    """Median, min and max of per-repetition ratios; None when there are none."""
    values = list(ratios.values())
    if not values:
        return None
    return Spread(statistics.median(values), min(values), max(values), len(values))


def text(ratios: Mapping[int, float]) -> str:
    found = spread(ratios)
    return found.text() if found else "-"
