"""workpool.run_all: every call runs when none fails; the first failure halts the running calls,
cancels the ones not started and is raised (Ctrl-C included)."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from cfbackup import workpool


def test_every_call_runs_on_at_most_workers_threads():
    seen: list[str] = []
    lock = threading.Lock()

    def call(n: int):
        with lock:
            seen.append(threading.current_thread().name)

    workpool.run_all(
        [lambda n=n: call(n) for n in range(10)],
        workers=3,
        name="w",
        halt=lambda: pytest.fail("halted without a failure"),
    )
    assert len(seen) == 10
    assert all(name.startswith("w") for name in seen)
    assert len(set(seen)) <= 3


@pytest.mark.parametrize("error", [RuntimeError("swift is down"), KeyboardInterrupt()])
def test_first_failure_halts_the_running_cancels_the_rest_and_is_raised(error):
    stop = threading.Event()
    running = threading.Event()
    started: list[int] = []

    def waits_for_halt():
        started.append(0)
        running.set()
        assert stop.wait(10), "never halted"

    def fails():
        running.wait(10)
        started.append(1)
        raise error

    def never():
        started.append(2)

    with pytest.raises(type(error)):
        workpool.run_all([waits_for_halt, fails, never, never], workers=2, name="w", halt=stop.set)
    assert stop.is_set()
    assert sorted(started) == [0, 1]  # the two queued calls were cancelled


def test_a_stop_signal_taken_by_a_worker_thread_still_stops_the_batch():
    """The kernel hands a process-wide SIGINT (Ctrl-C, or SIGTERM) to any thread that does not
    block it; Python runs the handler in the main thread only when that thread next runs
    bytecode. A main thread blocked for ever on the batch's futures slept through a signal a
    worker thread took: a fetch stalled for its headers held Ctrl-C until swiftclient's 30 s
    timeout (seen in CI). The batch waits in short slices, so the signal is acted on."""
    stop = threading.Event()
    worker: list[int] = []

    def stalls():
        worker.append(threading.get_ident())
        assert stop.wait(20), "never halted"

    def ctrl_c_to_the_worker():
        while not worker:
            time.sleep(0.01)
        time.sleep(0.2)  # the main thread is waiting on the futures by now
        signal.pthread_kill(worker[0], signal.SIGINT)

    threading.Thread(target=ctrl_c_to_the_worker, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        workpool.run_all([stalls], workers=1, name="w", halt=stop.set)
    assert time.monotonic() - started < 2, "the signal waited for the call to end"
    assert stop.is_set()


def test_a_stop_set_from_outside_halts_the_batch_once_and_raises_nothing():
    """A drill's --max-duration sets the batch's stop from a timer: the calls blocked where
    they cannot see it (a download stalled on the network) end only when ``halt`` (the
    store's abort) is called, which it was not before."""
    stop, aborted = threading.Event(), threading.Event()
    halts: list[float] = []

    def blocked():  # as a download waiting on a mute Swift: only halt frees it
        assert aborted.wait(10), "never halted"

    def halt():
        halts.append(0)
        aborted.set()

    threading.Timer(0.2, stop.set).start()
    workpool.run_all([blocked, blocked], workers=2, name="w", halt=halt, stop=stop)
    assert halts == [0]
