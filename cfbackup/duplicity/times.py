"""Times and ages as duplicity reads them (``--time``, ``remove-older-than``,
``--full-if-older-than``): read with duplicity's own parser, ``dup_time.genstrtotime``, so a
value it would reject mid-run is refused when the config is loaded or the command line read.

duplicity is imported only when a value is read: ``cfbackup --help`` does not pay for it.
"""

from __future__ import annotations

import time

FORMATS = (
    "an age (3D, 12h, 1W2D; units s m h D W M Y), a date (2026-11-01, 2026/11/01, 11/01/2026), "
    "a date and time (2026-11-01T02:30:00, local time unless it ends in Z or +01:00), "
    "Unix seconds or now"
)


def duplicity_time(text: str, now: float | None = None) -> float:
    """``text`` in Unix time, as duplicity reads it (an age counts back from ``now``, the
    current time by default); ValueError naming the forms it accepts otherwise."""
    from duplicity import dup_time

    try:
        return float(
            dup_time.genstrtotime(text, override_curtime=int(time.time() if now is None else now))
        )
    except (dup_time.TimeException, ValueError, OverflowError):  # 400 digits: no float
        raise ValueError(f"{text!r} is not a time duplicity reads: give {FORMATS}") from None


def as_typed_later(text: str, when: float) -> str:
    """``--time`` for a command printed to run later: ``text`` as typed when it names a fixed
    moment; an age or ``now`` (3D: counted back from when it is read, so hours later another
    moment) as the moment ``when`` it meant, a date and time with its UTC offset
    (``2026-12-03T02:30:00+01:00``), which duplicity reads back to the same second."""
    if duplicity_time(text, now=0) == duplicity_time(text, now=86400):
        return text
    from datetime import datetime

    return datetime.fromtimestamp(when).astimezone().isoformat(timespec="seconds")
