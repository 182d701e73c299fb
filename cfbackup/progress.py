"""Show a run's progress from duplicity's machine log: a bar on a terminal, lines elsewhere.

What duplicity 3.2.1 reports, and when (read from its ``progress.py``/``log.py``, then run):

- upload progress only with ``--progress``: a ``NOTICE 16`` record every ``--progress-rate``
  seconds whose control line is ``changed_bytes elapsed percent eta speed stalled`` (integers),
  and a last one at 100% when the upload ends. ``--progress`` makes duplicity walk the changes
  once before uploading (measured: +18% time for an incremental, ~0 for a full), so a reporter
  exists only when someone may be watching: never with ``--quiet`` (the scheduler, the
  generated timers and cron lines pass ``--quiet``).
- restore progress only at verbosity info: ``INFO 2`` "Processed volume N of M" (control line
  ``N M``). During a backup an ``INFO 2`` carries the source bytes read so far (no total).

:meth:`Reporter.duplicity_flags` names the options a reporter needs for a duplicity command;
the action appends them to the command line. Records arrive on duplicity's log-reader thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

from cfbackup.redact import redact

UPLOAD_PROGRESS = 16  # duplicity log.InfoCode.upload_progress (a NOTICE record)
PROGRESS = 2  # duplicity log.InfoCode.progress (an INFO record)
PLAIN_INTERVAL = 15.0  # seconds between plain lines (journals and cron mail stay readable)
ACTIONS = ("backup", "restore")


@dataclasses.dataclass
class Snapshot:
    """What is known about the run's progress at one moment."""

    bytes_done: int = 0
    percent: float | None = None
    eta: float | None = None  # seconds
    speed: float | None = None  # bytes per second
    stalled: bool = False
    volume: int | None = None
    volumes: int | None = None
    final: bool = False


def parse_upload(extra: str) -> Snapshot | None:
    """A ``NOTICE 16`` control line: ``changed_bytes elapsed percent eta speed stalled``."""
    try:
        done, elapsed, percent, eta, speed, stalled = (int(float(x)) for x in extra.split()[:6])
    except ValueError:
        return None
    if speed <= 0 and elapsed > 0:
        speed = done // elapsed
    return Snapshot(
        bytes_done=done,
        percent=float(percent),
        eta=None if stalled else float(eta),
        speed=float(speed),
        stalled=bool(stalled),
        final=percent >= 100,
    )


def parse_volumes(extra: str) -> tuple[int, int | None] | None:
    """An ``INFO 2`` control line: ``current`` or ``current total``."""
    fields = extra.split()
    try:
        current = int(float(fields[0]))
        total = int(float(fields[1])) if len(fields) > 1 else None
    except (IndexError, ValueError):
        return None
    return current, total


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Reporter:
    """Turns machine-log records into snapshots; subclasses decide how to show them."""

    # duplicity --progress-rate, seconds (an integer): how often its progress thread reports.
    # duplicity joins that thread at the end of a backup, which waited out the thread's sleep
    # (at 5, every backup ended up to 5 s late) until ``patches/progress_stop.py``; the plain
    # reporter throttles its own lines.
    progress_rate = 1

    def __init__(self, action: str, profile: str, stream: IO[str]):
        self.action = action
        self.profile = profile
        self.stream = stream
        self.started = time.monotonic()
        self.snapshot = Snapshot()
        self._lock = threading.Lock()

    def duplicity_flags(self, command: str, verbosity: str = "notice") -> tuple[str, ...]:
        """Options to append to duplicity's argv so that ``command`` (its first argument) reports
        progress; ``verbosity`` is the profile's, never lowered."""
        if command in ("backup", "full", "incremental", "incr"):
            return ("--progress", f"--progress-rate={self.progress_rate}")
        if command == "restore" and verbosity not in ("info", "debug"):
            return ("--verbosity=info",)
        return ()

    def on_record(self, record: Any) -> None:
        """Called with each :class:`cfbackup.duplicity.machinelog.Record` (any thread)."""
        snapshot = None
        if record.level == "NOTICE" and record.code == UPLOAD_PROGRESS:
            snapshot = parse_upload(record.extra)
        elif record.level == "INFO" and record.code == PROGRESS and self.action == "restore":
            volumes = parse_volumes(record.extra)
            if volumes and volumes[1]:
                snapshot = self._volume_snapshot(*volumes)
        if snapshot is None:
            return
        with self._lock:
            self.snapshot = snapshot
            self.show(snapshot)

    def _volume_snapshot(self, current: int, total: int) -> Snapshot:
        elapsed = time.monotonic() - self.started
        done = min(current, total)
        return Snapshot(
            percent=100.0 * done / total,
            eta=elapsed * (total - done) / done if done else None,
            volume=done,
            volumes=total,
            final=done >= total,
        )

    def describe(self, snapshot: Snapshot) -> str:
        """One line of text for a snapshot (plain output, and the bar's caption)."""
        parts = []
        if snapshot.volumes:
            parts.append(f"volume {snapshot.volume} of {snapshot.volumes}")
        else:
            parts.append(f"{human_bytes(snapshot.bytes_done)} uploaded")
        if snapshot.percent is not None:
            parts.append(f"{snapshot.percent:.0f}%")
        if snapshot.speed:
            parts.append(f"{human_bytes(snapshot.speed)}/s")
        if snapshot.stalled:
            parts.append("stalled")
        elif not snapshot.final and snapshot.eta is not None:
            parts.append(f"ETA {human_duration(snapshot.eta)}")
        return ", ".join(parts)

    def show(self, snapshot: Snapshot) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """The run is over: leave the terminal tidy."""


class PlainReporter(Reporter):
    """Periodic plain lines (not a terminal): the first, then one per interval, and the last."""

    def __init__(self, action: str, profile: str, stream: IO[str], interval: float):
        super().__init__(action, profile, stream)
        self.interval = interval
        self._last_shown: float | None = None
        self._last_text = ""
        self._gone = False  # the stream's reader has left

    def show(self, snapshot: Snapshot) -> None:
        now = time.monotonic()
        due = self._last_shown is None or now - self._last_shown >= self.interval
        text = self.describe(snapshot)
        if (due or snapshot.final) and text != self._last_text and not self._gone:
            self._last_shown, self._last_text = now, text
            try:
                print(redact(f"cfbackup: {self.action} {self.profile}: {text}"), file=self.stream)
                self.stream.flush()
            except BrokenPipeError:  # the reader left (... 2>&1 | head): the run goes on
                self._gone = True


class RichReporter(Reporter):
    """A rich progress bar on a terminal: percent, bytes done, rate, ETA."""

    def __init__(self, action: str, profile: str, stream: IO[str]):
        super().__init__(action, profile, stream)
        self._progress: Any = None
        self._task: Any = None

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn(f"{self.action} {self.profile}"),
            BarColumn(),
            TextColumn("{task.fields[text]}"),
            console=Console(file=self.stream),
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._progress.start()
        self._task = self._progress.add_task("", total=100, text="starting")

    def show(self, snapshot: Snapshot) -> None:
        if self._progress is None:
            self._start()
        self._progress.update(
            self._task, completed=snapshot.percent or 0, text=redact(self.describe(snapshot))
        )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def make_reporter(
    action: str,
    profile: str,
    *,
    quiet: bool = False,
    stream: IO[str] | None = None,
    interval: float = PLAIN_INTERVAL,
) -> Reporter | None:
    """The reporter for one run of ``action``, or None (quiet, or an action without progress)."""
    if quiet or action not in ACTIONS:
        return None
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return RichReporter(action, profile, stream)
    return PlainReporter(action, profile, stream, interval)


@contextlib.contextmanager
def reporting(action: str, profile: str, *, quiet: bool = False) -> Iterator[Reporter | None]:
    """``make_reporter`` as a context: the bar is stopped whatever happens to the run."""
    reporter = make_reporter(action, profile, quiet=quiet)
    try:
        yield reporter
    finally:
        if reporter is not None:
            reporter.close()
