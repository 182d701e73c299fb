"""Ctrl-C and SIGTERM stop cfbackup the same way: a ``KeyboardInterrupt`` in the main thread,
so that every context unwinds (the lock released, firewall rules restored, the run's outcome
recorded). :func:`held` keeps one back, for the few statements that must not be cut in two: a
run's history row written and the ``try`` that finishes it entered."""

from __future__ import annotations

import concurrent.futures
import contextlib
import signal
from collections.abc import Collection, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

MESSAGE = "interrupted (Ctrl-C or SIGTERM): run the same command again."

# s: how late a stop signal that a worker thread took is acted on, at most (a main thread that
# waits on threads waits in slices of it: :func:`wait`, ``workpool.run_all``), and how soon
# run_all sees a stop event set from outside
SLICE = 0.1

_depth = 0  # how many held() are open (main thread only: handlers run there)
_kept: int | None = None  # the stop signal that came while held


def install() -> None:
    """Both stop signals raise KeyboardInterrupt (SIGINT did already; SIGTERM killed). A SIGINT
    ignored from the start stays ignored, as Python leaves it (``cfbackup ... &`` in a script)."""
    signal.signal(signal.SIGTERM, _on_stop_signal)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _on_stop_signal)


def _on_stop_signal(signum, frame):
    global _kept
    if _depth:
        _kept = signum
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def ignored() -> Iterator[None]:
    """cfbackup is stopping already: one more signal must not cut its last line in two."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def held(*, drop: bool = False) -> Iterator[None]:
    """A stop signal that comes inside waits until the block ends, and is raised there; with
    ``drop``, forgotten instead (the run's outcome is written: it is over, and a stop signal
    must not turn the success just recorded into exit 130)."""
    global _depth, _kept
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _kept is not None:
            _kept = None
            if not drop:
                raise KeyboardInterrupt


def wait(futures: Collection[concurrent.futures.Future]) -> None:
    """``concurrent.futures.wait`` for every future, in slices of :data:`SLICE`. The kernel
    hands a process-wide SIGINT or SIGTERM to any thread, and Python runs its handler only when
    the main thread next runs bytecode: a main thread blocked on futures without a timeout slept
    through a signal a worker thread took (a fetch stalled on Swift held Ctrl-C 30 s)."""
    pending = set(futures)
    while pending:
        pending = concurrent.futures.wait(pending, timeout=SLICE).not_done


def result(future: concurrent.futures.Future):
    """``future.result()``, waited for as :func:`wait` does (a stop signal is acted on)."""
    wait([future])
    return future.result()
