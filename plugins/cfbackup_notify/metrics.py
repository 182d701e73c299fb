"""A Prometheus textfile (node_exporter's textfile collector) updated after each run.

The file itself is the state: each run replaces the samples of its own (profile, action) and
keeps every other sample, so several profiles, configs and processes can share one file, and a
failed run keeps the last success time. Writes are atomic (temp file + rename, what the
collector needs) and serialized with ``flock`` on a sibling ``.lock`` file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from cfbackup.runtypes import kind_of

# name -> help. Only these are written; other lines are dropped when the file is rewritten.
METRICS = {
    "cfbackup_last_run_timestamp_seconds": "When the last run of the action ended (Unix time).",
    "cfbackup_last_run_duration_seconds": "How long the last run took.",
    "cfbackup_last_run_exit_code": "Exit code of the last run (0 success; see docs/exit-codes).",
    "cfbackup_last_run_success": "1 when the last run succeeded, else 0.",
    "cfbackup_last_success_timestamp_seconds": "When the action last succeeded (Unix time).",
    "cfbackup_last_backup_uploaded_bytes": "Bytes the last successful backup uploaded.",
    "cfbackup_last_backup_source_bytes": "Size of the source at the last successful backup.",
    "cfbackup_last_backup_source_files": "Files in the source at the last successful backup.",
    "cfbackup_last_backup_changed_files": "New, changed and deleted files in the last "
    "successful backup.",
    "cfbackup_drill_last_success_timestamp": "When a restore drill last passed (Unix time).",
    "cfbackup_drill_from_nothing_last_success_timestamp": "When a restore drill from the "
    "recovery kit alone (drill --from-nothing) last passed (Unix time).",
    "cfbackup_drill_files_checked": "Files the last restore drill restored and compared.",
    "cfbackup_drill_mismatches": "Files the last restore drill found different or could not "
    "restore (0 when it passed).",
    "cfbackup_drill_from_nothing_files_checked": "Files the last drill --from-nothing restored "
    "and compared.",
    "cfbackup_drill_from_nothing_mismatches": "Files the last drill --from-nothing found "
    "different or could not restore (0 when it passed).",
    "cfbackup_verify_volumes_checked": "Volumes the last verify --read-data downloaded and "
    "checked.",
    "cfbackup_verify_bad_volumes": "Volumes the last verify --read-data found missing, corrupt "
    "or undecryptable.",
}
ACTIONS = (
    "backup",
    "verify",
    "read-data",
    "drill",
    "drill-from-nothing",
    "restore",
    "prune",
    "cleanup",
)
SAMPLE = re.compile(r'^(cfbackup_[a-z_]+)\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\} (\S+)$')
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')

Key = tuple[str, tuple[tuple[str, str], ...]]


def action_label(action: str, options: dict[str, Any]) -> str:
    """The ``action`` label of a run: ``verify --read-data`` is ``read-data``, so that a plain
    verify passing after it (it reads only the newest chain) does not set
    ``cfbackup_last_run_success{action="verify"}`` back to 1 and hide the bad volumes; ``drill
    --from-nothing`` is ``drill-from-nothing``, which proves the recovery kit, not the drill's
    (``runtypes.kind_of``, which the run history's kinds follow too)."""
    return kind_of(action, options)


def read_samples(path: Path) -> dict[Key, float]:
    samples: dict[Key, float] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return samples
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if not match or match.group(1) not in METRICS:
            continue
        labels = tuple(sorted((k, _unescape(v)) for k, v in LABEL.findall(match.group(2))))
        try:
            samples[(match.group(1), labels)] = float(match.group(3))
        except ValueError:
            continue
    return samples


def run_samples(
    profile: str,
    action: str,
    exit_code: int,
    duration: float,
    stats: dict[str, Any],
    finished: float,
) -> dict[Key, float]:
    """The samples one finished run contributes."""
    labels = (("action", action), ("profile", profile))
    out: dict[Key, float] = {
        ("cfbackup_last_run_timestamp_seconds", labels): finished,
        ("cfbackup_last_run_duration_seconds", labels): duration,
        ("cfbackup_last_run_exit_code", labels): exit_code,
        ("cfbackup_last_run_success", labels): 1 if exit_code == 0 else 0,
    }
    out.update(_check_samples(profile, action, exit_code, stats, finished))
    if exit_code != 0:
        return out
    out[("cfbackup_last_success_timestamp_seconds", labels)] = finished
    if action == "backup":
        only = (("profile", profile),)
        for name, value in (
            ("cfbackup_last_backup_uploaded_bytes", stats.get("TotalDestinationSizeChange")),
            ("cfbackup_last_backup_source_bytes", stats.get("SourceFileSize")),
            ("cfbackup_last_backup_source_files", stats.get("SourceFiles")),
            (
                "cfbackup_last_backup_changed_files",
                _sum(stats, ("NewFiles", "ChangedFiles", "DeletedFiles")),
            ),
        ):
            if isinstance(value, int | float):
                out[(name, only)] = value
    return out


def _check_samples(
    profile: str, action: str, exit_code: int, stats: dict[str, Any], finished: float
) -> dict[Key, float]:
    """What a drill or a verify --read-data found, also when it failed (a failed drill's
    mismatches are the point); only a run that got as far as checking has the stats."""
    only = (("profile", profile),)
    out: dict[Key, float] = {}
    drills = {"drill": "cfbackup_drill", "drill-from-nothing": "cfbackup_drill_from_nothing"}
    if action in drills and "files_checked" in stats:
        prefix = drills[action]
        out[(f"{prefix}_files_checked", only)] = stats["files_checked"]
        out[(f"{prefix}_mismatches", only)] = stats.get("mismatches", 0) + stats.get("failures", 0)
        if exit_code == 0:
            out[(f"{prefix}_last_success_timestamp", only)] = finished
    if action in ("verify", "read-data") and "volumes_checked" in stats:
        out[("cfbackup_verify_volumes_checked", only)] = stats["volumes_checked"]
        out[("cfbackup_verify_bad_volumes", only)] = len(stats.get("bad_volumes") or ())
    return out


def _sum(stats: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    values = [stats.get(k) for k in keys]
    if not all(isinstance(v, int | float) for v in values):
        return None
    return int(sum(values))  # type: ignore[arg-type]


def render(samples: dict[Key, float]) -> str:
    lines = []
    for name, help_text in METRICS.items():
        rows = sorted(
            (labels, value) for (metric, labels), value in samples.items() if metric == name
        )
        if not rows:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for labels, value in rows:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{name}{{{label_text}}} {_number(value)}")
    return "\n".join(lines) + "\n"


def update(path: Path, new: dict[Key, float]) -> None:
    """Merge ``new`` into the textfile at ``path`` (atomic, serialized)."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.parent / f".{path.name}.lock"
    with open(lock_path, "a") as lock, contextlib.ExitStack() as stack:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stack.callback(fcntl.flock, lock, fcntl.LOCK_UN)
        samples = read_samples(path)
        samples.update(new)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(render(samples))
            os.chmod(temp, 0o644)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


def record_run(
    path: Path, profile: str, action: str, exit_code: int, duration: float, stats: dict[str, Any]
) -> None:
    update(path, run_samples(profile, action, exit_code, duration, stats, time.time()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(value)
