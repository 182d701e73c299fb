"""What a cfbackup run log says: where the time went, and the duplicity commands it ran."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ \S+: (.*)$")


def run_log_phases(log_dir: Path) -> dict[str, float] | None:
    """Where a cfbackup run's time went, from the timestamps of its newest run log."""
    logs = sorted(log_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)
    if not logs:
        return None
    events = []
    for line in logs[-1].read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if match:
            stamp = datetime.datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            events.append((stamp, match[2]))

    def first(test) -> float | None:
        return next((t for t, m in events if test(m)), None)

    started = first(lambda m: m.startswith("cfbackup ") and m.endswith(" started"))
    runs = [t for t, m in events if m.startswith("running: ") and "duplicity" in m]
    finished = first(lambda m: " finished: " in m)
    if started is None or not runs or finished is None:
        return None
    # a retention rule that ran (a skipped one only logs); with split_chains the chains
    # overlap, so the split between the phases is approximate
    retention = first(lambda m: m.startswith("retention: ") and " skipped" not in m)
    done = first(lambda m: m.startswith("backup of ") and " done" in m)
    end_of_duplicity = retention or done or finished
    phases = {
        "in-run total": finished - started,
        "pre (pre-check, hooks)": runs[0] - started,
        "duplicity": end_of_duplicity - runs[0],
        "retention": (done - retention) if retention and done else 0.0,
        "post": finished - (done or end_of_duplicity),
    }
    return phases


def run_log_commands(log_dir: Path) -> list[str]:
    """The commands cfbackup's newest run log says it ran ("running: ..." lines)."""
    logs = sorted(log_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)
    if not logs:
        return []
    found = []
    for line in logs[-1].read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if match and match[2].startswith("running: "):
            found.append(match[2][len("running: ") :])
    return found


def duplicity_words(command: str) -> list[str]:
    """A duplicity command line from its command word on: cfbackup starts duplicity through its
    launcher (``cfbackup-duplicity``, or ``python -m cfbackup.duplicity.launcher``), dup-same
    runs the ``duplicity`` executable."""
    words = command.split()
    if words[1:3] == ["-m", "cfbackup.duplicity.launcher"]:
        return words[3:]
    return words[1:]
