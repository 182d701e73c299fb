"""What the next ``duplicity backup`` will be, read from the target's object names.

duplicity decides from the same listing (its collection status): no complete full set means a
full backup; a last full older than ``--full-if-older-than`` means a full; otherwise an
incremental against the newest complete set. An interrupted set (volumes, no manifest) is
resumed when the local archive dir still holds its ``.manifest.part``: its volumes already
uploaded are not sent again. Names are read with duplicity's ``file_naming`` and the profile's
file prefixes (``duplicity/names.py``).
"""

from __future__ import annotations

import calendar
import dataclasses
import time
from pathlib import Path

from cfbackup.duplicity.names import PLAIN, Naming


def parse_time(stamp: str) -> float:
    """duplicity's ``20261126T022746Z`` (UTC) as seconds since the epoch."""
    return float(calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ")))


@dataclasses.dataclass
class BackupSet:
    type: str  # "full" or "inc"
    start: str | None
    end: str
    manifest: bool = False
    signature: bool = False
    volumes: list[int] = dataclasses.field(default_factory=list)  # sizes in bytes
    naming: Naming = PLAIN  # the file prefixes its names carry

    @property
    def complete(self) -> bool:
        return self.manifest and bool(self.volumes)

    @property
    def end_time(self) -> float:
        return parse_time(self.end)

    @property
    def manifest_stem(self) -> str:
        return self.naming.manifest_name(self.type, self.end, self.start)


def read_sets(objects, *, naming: Naming) -> list[BackupSet]:
    """The backup sets among ``objects`` (dicts with ``name`` and ``bytes``), oldest first;
    ``naming``: the profile's (``names.of(profile)``)."""
    sets: dict[tuple, BackupSet] = {}
    for obj in objects:
        parsed = naming.parse(obj["name"])
        if parsed is None or parsed.type in ("full-stat", "inc-stat"):
            continue
        # here, not above: a first backup's empty target needs none of duplicity's modules
        # (its import is 8 ms of the quota guard's estimate, before duplicity may start)
        from duplicity import dup_time

        kind = "full" if parsed.type in ("full", "full-sig") else "inc"
        end = dup_time.timetostring(parsed.time if kind == "full" else parsed.end_time)
        start = None if kind == "full" else dup_time.timetostring(parsed.start_time)
        entry = sets.setdefault((kind, start, end), BackupSet(kind, start, end, naming=naming))
        if parsed.type in ("full-sig", "new-sig"):
            entry.signature = True
        elif parsed.manifest:
            entry.manifest = True
        else:
            entry.volumes.append(int(obj.get("bytes", 0)))
    return sorted(sets.values(), key=lambda s: (s.end, s.type == "inc"))


def interval_seconds(value: str | None, now: float) -> float | None:
    """When a full backup is forced: the time before which the last full is too old, as
    duplicity's --full-if-older-than reads ``value`` (``duplicity/times.py``)."""
    if not value or value == "never":
        return None
    from cfbackup.duplicity.times import duplicity_time

    try:
        return duplicity_time(value, now)
    except ValueError:  # the config refuses it when loaded
        return None


@dataclasses.dataclass
class Plan:
    """The backup duplicity will run next, as far as the names tell."""

    kind: str  # "full" or "incremental"
    reason: str
    since: float | None = None  # incremental: the newest complete set's time
    last_full: float | None = None
    resume_bytes: int = 0  # already uploaded volumes of a set that will be resumed
    resume_objects: int = 0


def plan_next(
    sets: list[BackupSet],
    *,
    force_full: bool,
    full_if_older_than: str | None,
    archive_dir: Path | None,
    now: float | None = None,
) -> Plan:
    now = time.time() if now is None else now
    complete = [s for s in sets if s.complete]
    fulls = [s for s in complete if s.type == "full"]
    last_full = fulls[-1].end_time if fulls else None
    if force_full:
        plan = Plan("full", "--full was given", last_full=last_full)
    elif last_full is None:
        plan = Plan("full", "no complete full backup at the target yet")
    else:
        too_old = interval_seconds(full_if_older_than, now)
        if too_old is not None and last_full < too_old:
            plan = Plan(
                "full",
                f"the last full backup is older than full_if_older_than ({full_if_older_than})",
                last_full=last_full,
            )
        else:
            newest = max(s.end_time for s in complete if s.end_time >= last_full)
            plan = Plan(
                "incremental",
                "files changed since the last backup",
                since=newest,
                last_full=last_full,
            )
    newest_complete = complete[-1].end if complete else ""
    interrupted = [s for s in sets if not s.complete and s.volumes and s.end > newest_complete]
    if interrupted and archive_dir is not None:
        last = interrupted[-1]
        if (archive_dir / f"{last.manifest_stem}.part").exists():
            # duplicity resumes it, whatever was asked (dup_main.do_backup: "restarting")
            if last.type == "full":
                plan = Plan("full", f"resuming the interrupted full backup of {last.end}")
            else:
                plan = Plan(
                    "incremental",
                    f"resuming the interrupted incremental backup of {last.end}",
                    since=parse_time(last.start or last.end),
                    last_full=last_full,
                )
            plan.resume_bytes = sum(last.volumes) - max(last.volumes)
            plan.resume_objects = len(last.volumes) - 1
    return plan
