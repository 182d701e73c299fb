"""What a notification says about a run: one dict (the webhook's JSON) and its text form (the
mail and the healthchecks ping body). Every string in it passes through :mod:`cfbackup.redact`
here, once more, whatever produced it: a notification leaves the machine.
"""

from __future__ import annotations

import socket
import time
from collections import deque
from pathlib import Path
from typing import Any

from cfbackup import __version__
from cfbackup.progress import human_bytes, human_duration
from cfbackup.redact import redact

TAIL_LINES = 20
# duplicity statistics worth a line in a mail: key -> (label, is a byte count)
STATS = {
    "SourceFiles": ("files in the source", False),
    "SourceFileSize": ("source size", True),
    "NewFiles": ("new files", False),
    "ChangedFiles": ("changed files", False),
    "DeletedFiles": ("deleted files", False),
    "RawDeltaSize": ("changed data", True),
    "TotalDestinationSizeChange": ("uploaded", True),
    "Errors": ("errors", False),
    # a drill and a verify --read-data (cfbackup's own statistics)
    "files_sampled": ("files sampled", False),
    "files_checked": ("files checked", False),
    "mismatches": ("mismatches", False),
    "failures": ("not restorable", False),
    "seed": ("seed (--seed)", False),
    "volumes_checked": ("volumes checked", False),
}


def build(run: Any, result: Any) -> dict[str, Any]:
    """The summary of a finished run (``run``: :class:`cfbackup.runtypes.Run`)."""
    finished = time.time()
    # e.g. a legacy config readable by others: repeated on every run until it is fixed
    standing = [
        w
        for w in (
            getattr(run.config, "permission_warning", None),
            *getattr(run.profile, "secret_file_warnings", ()),
        )
        if w
    ]
    own = [w for w in getattr(result, "warnings", ()) if w]  # retention deletes unconfirmed
    summary = {
        "profile": run.profile.name,
        "action": run.action,
        "host": socket.gethostname(),
        "ok": result.ok,
        "result": result.result,
        "exit_code": int(result.exit_code),
        "message": result.message,
        "started": _iso(run.started),
        "finished": _iso(finished),
        "duration": round(result.duration or finished - run.started, 3),
        "source": str(run.profile.source),
        "target": run.profile.target,
        "stats": dict(result.stats or {}),
        "log_tail": [] if result.ok else log_tail(result, run.log_file),
        "log_file": str(run.log_file) if run.log_file else None,
        "cfbackup_version": __version__,
        "warnings": standing + own,
        # the run's own, the last of warnings: what when = "warnings" and the subject go by
        "run_warnings": len(own),
    }
    return scrub(summary)


def log_tail(result: Any, log_file: Path | None, lines: int = TAIL_LINES) -> list[str]:
    """The error's last lines: duplicity's output tail when the error has one, else the run
    log's last lines (both were redacted when written; they are redacted again in ``scrub``)."""
    detail = getattr(result.error, "detail", "") if result.error else ""
    if detail:
        return [line[:500] for line in detail.splitlines()[-lines:]]
    if log_file is None:
        return []
    try:
        with open(log_file, encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n")[:500] for line in deque(handle, maxlen=lines)]
    except OSError:
        return []


def scrub(value: Any) -> Any:
    """``value`` with every string redacted (keys too), recursively."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def subject(summary: dict[str, Any], prefix: str) -> str:
    outcome = "OK" if summary["ok"] else f"FAILED ({summary['result']})"
    count = summary["run_warnings"]
    if summary["ok"] and count:  # the run's own: a config warning every run repeats is no news
        outcome += f", {count} warning" + ("s" if count > 1 else "")
    return redact(
        f"{prefix} {summary['action']} of {summary['profile']} on {summary['host']}: {outcome}"
    ).strip()


def text(summary: dict[str, Any]) -> str:
    """A plain-text report for a mail or a ping body."""
    outcome = "succeeded" if summary["ok"] else "FAILED"
    lines = [
        f"cfbackup {summary['action']} of profile {summary['profile']} on {summary['host']} "
        f"{outcome}.",
        *(f"WARNING: {warning}" for warning in summary.get("warnings", ())),
        "",
        f"Result:    {summary['result']} (exit code {summary['exit_code']})",
        f"Message:   {summary['message'] or '-'}",
        f"Started:   {summary['started']}",
        f"Finished:  {summary['finished']}",
        f"Duration:  {human_duration(summary['duration'])} ({summary['duration']:.1f} s)",
        f"Source:    {summary['source']}",
        f"Target:    {summary['target']}",
    ]
    stats = summary["stats"]
    shown = [
        (label, stats[key], is_bytes) for key, (label, is_bytes) in STATS.items() if key in stats
    ]
    if shown:
        lines += ["", "Statistics:"]
        for label, value, is_bytes in shown:
            pretty = (
                f"{human_bytes(value)} ({value} bytes)"
                if is_bytes and isinstance(value, int | float)
                else str(value)
            )
            lines.append(f"  {label + ':':<22}{pretty}")
    if summary["log_tail"]:
        lines += ["", "Last lines of the output:"]
        lines += [f"  {line}" for line in summary["log_tail"]]
    if summary["log_file"]:
        lines += ["", f"Run log on {summary['host']}: {summary['log_file']}"]
    lines += ["", f"-- cfbackup {summary['cfbackup_version']}"]
    return redact("\n".join(lines) + "\n")


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(moment))
