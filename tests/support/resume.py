"""Proof that a backup resumed an interrupted set rather than starting it again.

duplicity resumes a set whose partial manifest is in the local archive dir: it counts the
volumes at the target from 1 up to the first gap (``get_last_continuous_volume``), goes back
one ("we weren't able to finish writing the most recent block"), logs ``Restarting after
volume S`` and uploads from volume S+1 on. Volumes 1..S are not uploaded again: Swift keeps
their ``last_modified``. When S would be 0 (only the first volume was there) it deletes the set
and starts it again instead. Tests compare the container listing before and after the run.
"""

from __future__ import annotations

import re

VOLUME = re.compile(r"^duplicity-(full|inc)\.[^/]*\.vol(\d+)\.difftar")
RESUMED = re.compile(r"Restarting after volume (\d+)")


def volume_stamps(listing: list[dict], kind: str) -> dict[str, str]:
    """{object name: last_modified} of the ``kind`` ("full" or "inc") volumes in a listing."""
    return {
        o["name"]: o["last_modified"]
        for o in listing
        if (found := VOLUME.match(o["name"])) and found[1] == kind
    }


def number(name: str) -> int:
    return int(VOLUME.match(name)[2])


def assert_resumed(before: dict[str, str], after: dict[str, str], log: str) -> int:
    """The run whose duplicity log is ``log`` resumed the set of ``before`` (volumes at the
    target after the interruption) and left ``after``: volumes 1..S kept as they were, S+1 on
    uploaded by this run, S the last volume of the unbroken run before minus one (S >= 1: a
    resume, not a restart). Returns S."""
    assert before, "no volume of the interrupted set was at the target"
    assert "Cleaning up previous partial" not in log, "duplicity deleted the set: a restart"
    assert "Restart is impossible" not in log, "duplicity started the set again"
    starts = [int(s) for s in RESUMED.findall(log)]
    assert len(starts) == 1, f"expected one 'Restarting after volume S' in the log: {starts}"
    start = starts[0]
    numbers = sorted(number(n) for n in before)
    contiguous = next((i for i, n in enumerate(numbers, 1) if n != i), len(numbers) + 1) - 1
    assert start == contiguous - 1 >= 1, (start, numbers)
    kept = sorted(number(n) for n, stamp in after.items() if before.get(n) == stamp)
    assert kept == list(range(1, start + 1)), f"kept {kept}, resumed after volume {start}"
    uploaded = sorted(number(n) for n in after if number(n) > start)
    assert uploaded == list(range(start + 1, len(after) + 1)), uploaded
    assert all(after[n] != before.get(n) for n in after if number(n) > start)
    print(f"resumed after volume {start}: kept {start}, uploaded {len(uploaded)} of {len(after)}")
    return start
