"""workpool.run_all: every call runs when none fails; the first failure halts the running calls,
cancels the ones not started and is raised (Ctrl-C included)."""

from __future__ import annotations

import threading

import pytest

from cfbackup import workpool


def test_every_call_runs_on_at_most_workers_threads():
    seen: list[str] = []
    lock = threading.Lock()

    def call(n: int):
        with lock:
            seen.append(threading.current_thread().name)

    workpool.run_all([lambda n=n: call(n) for n in range(10)], workers=3, name="w",
                     halt=lambda: pytest.fail("halted without a failure"))
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
        workpool.run_all([waits_for_halt, fails, never, never], workers=2, name="w",
                         halt=stop.set)
    assert stop.is_set()
    assert sorted(started) == [0, 1]  # the two queued calls were cancelled


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
