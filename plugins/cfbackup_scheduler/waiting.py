"""How a due run of the daemon waits for its turn: for its profile's other run (one run of a
profile at a time), for a lock held outside the daemon (a restore typed by hand: waited for
outside a --max-parallel slot), for a free slot; each bounded by its schedule's ``max_wait``,
and given up at once when the daemon stops. A run due while the previous run of the same
schedule still waits or runs is not queued twice (:meth:`Turns._coalesced`).

:class:`Turns` is a part of :class:`cfbackup_scheduler.daemon.Daemon`, which holds the state it
uses (``schedules``, ``state_dir``, ``max_parallel``, ``_slots``, ``_profiles``, ``_holders``,
``_waiting``, ``_stopping``, all under ``_children_lock``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from cfbackup import lock
from cfbackup.errors import ExitCode
from cfbackup_scheduler.journal import when
from cfbackup_scheduler.spec import Schedule, human

log = logging.getLogger("cfbackup.scheduler")

# seconds between a waiting run's looks at shutdown and at its max_wait
WAIT_STEP = 1.0
SLOT = "a free slot"  # what a run waiting for a --max-parallel slot waits for


class GivenUp(NamedTuple):
    """A run given up on, past its max_wait: ``reason``, what it waited for (``the backup to
    finish``: the child's message, ``$CFBACKUP_LOCK_GIVEN_UP``); ``why``, the journal's words
    after "did not run (exit code 4):"."""

    reason: str
    why: str


def _raise_max_wait(schedule: Schedule) -> str:
    """The fix of a run given up on past its max_wait: the daemon reads a raised one on SIGHUP
    (the given-up child's own message, which said so, is not logged: one line per event)."""
    return (
        f"raise max_wait in [{schedule.table}] and reload the scheduler daemon "
        f"(kill -HUP {os.getpid()})"
    )


class Turns:
    """The waits of the daemon's runs (a mixin of :class:`~cfbackup_scheduler.daemon.Daemon`)."""

    def _profile_lock(self, profile: str) -> threading.Lock:
        with self._children_lock:
            return self._profiles.setdefault(profile, threading.Lock())

    def _wait_for_profile(
        self, name: str, schedule: Schedule, busy: threading.Lock, due: datetime, started: float
    ) -> int | GivenUp | None:
        """Wait for the run of the same profile in progress (or waiting for a slot) to end:
        None once ``busy`` is taken; GivenUp when the schedule's lock_wait passed first (its
        child is then started to record it: :meth:`Daemon._run_given_up`); an exit code when
        the daemon is stopping."""
        limit = schedule.lock_wait
        with self._children_lock:
            if self._stopping:
                return int(ExitCode.INTERRUPTED)
            other = self._holders.get(schedule.profile, (None, "the profile's other run"))[1]
            self._waiting[name] = (due, f"{other} to finish")
        log.info(
            "profile %s: the %s waits for %s to finish (one run of a profile at a time; at most "
            "%s, max_wait)",
            name,
            schedule.command,
            other,
            human(limit),
        )
        taken = self._wait_to_take(name, busy.acquire, busy.release, started, limit)
        if taken is None:
            return int(ExitCode.INTERRUPTED)
        if taken:
            return None
        with self._children_lock:
            key, other = self._holders.get(schedule.profile, (None, other))
            # the other run may not run yet: it holds the profile's turn while it waits for a
            # free slot (or for a lock held outside the daemon)
            waiting = self._waiting.get(key) if key else None
        fix = "look for a run that hangs, or "
        if waiting:
            state = f"was still waiting for {waiting[1]}"
            reason = f"{other} (still waiting for {waiting[1]}) to finish"
            if waiting[1] == SLOT:
                fix = "look for a run that hangs, or raise --max-parallel, or "
        else:
            state, reason = "was still running", f"{other} to finish"
        return GivenUp(
            reason,
            f"{other} {state} after {human(limit)} (max_wait"
            f"{'' if schedule.max_wait else ', the default'}): it runs at its next time; {fix}"
            f"{_raise_max_wait(schedule)}",
        )

    def _wait_to_take(
        self,
        name: str,
        acquire: Callable[..., bool],
        release: Callable[[], None],
        started: float,
        limit: float,
    ) -> bool | None:
        """Try ``acquire(timeout=...)`` (a lock, the slots) every WAIT_STEP until it succeeds:
        True once taken; False when ``limit`` seconds (counted from ``started``; 0: no bound)
        passed first; None when the daemon is stopping (:meth:`stop`, which saw the run
        waiting, names it; what was taken is released). The run leaves ``_waiting`` in each
        case."""
        while True:
            left = limit - (time.monotonic() - started) if limit else WAIT_STEP
            taken = left > 0 and acquire(timeout=min(WAIT_STEP, left))
            with self._children_lock:
                if self._stopping:
                    self._waiting.pop(name, None)
                    if taken:
                        release()
                    return None
                if taken:
                    self._waiting.pop(name, None)
                    return True
                if limit and time.monotonic() - started >= limit:
                    self._waiting.pop(name, None)
                    return False

    def _wait_for_outside_lock(
        self, name: str, schedule: Schedule, due: datetime, started: float
    ) -> int | GivenUp | None:
        """Wait, without a --max-parallel slot, while a run outside the daemon (a restore typed
        by hand, a timer) holds the profile's lock: None once it is free; GivenUp when the
        schedule's lock_wait passed first; an exit code when the daemon is stopping."""
        held = lock.holder(self.state_dir, schedule.profile) if self.state_dir else None
        if held is None:
            return None
        limit = schedule.lock_wait
        since = held.get("since")
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "unknown"
        who = f"PID {held.get('pid', '?')} ({held.get('action', '?')}, since {at})"
        what = f"{who} to release profile {schedule.profile}'s lock"
        with self._children_lock:
            if self._stopping:
                return int(ExitCode.INTERRUPTED)
            self._waiting[name] = (due, what)
        log.info(
            "profile %s: the %s waits for %s, a cfbackup run outside the scheduler (at most %s, "
            "max_wait; it takes no --max-parallel slot meanwhile)",
            name,
            schedule.command,
            what,
            human(limit),
        )
        while True:
            with self._children_lock:
                if self._stopping:  # named by stop(), which saw it waiting
                    self._waiting.pop(name, None)
                    return int(ExitCode.INTERRUPTED)
            if lock.holder(self.state_dir, schedule.profile) is None:
                with self._children_lock:
                    self._waiting.pop(name, None)
                return None
            left = limit - (time.monotonic() - started)
            if left <= 0:
                with self._children_lock:
                    self._waiting.pop(name, None)
                break
            time.sleep(min(WAIT_STEP, left))
        return GivenUp(
            what,
            f"{who}, a cfbackup run outside the scheduler, still held profile "
            f"{schedule.profile}'s lock after {human(limit)} (max_wait"
            f"{'' if schedule.max_wait else ', the default'}): it runs at its next time; check "
            f"whether that run hangs, or {_raise_max_wait(schedule)}",
        )

    def _wait_for_slot(self, name: str, due: datetime, started: float) -> bool:
        """Wait for a free --max-parallel slot: True once taken; False (logged) when the
        schedule's max_wait passed first (counted from when it was due), or when the daemon is
        stopping (:meth:`stop` names the runs still waiting)."""
        schedule = self.schedules.get(name)
        limit = schedule.max_wait if schedule is not None else 0
        with self._children_lock:
            if self._stopping:
                return False
            self._waiting[name] = (due, SLOT)
        log.info(
            "profile %s: waiting for a free slot (at most %d run(s) at a time%s)",
            name,
            self.max_parallel,
            f"; skipped if none is free within max_wait {human(limit)}" if limit else "",
        )
        taken = self._wait_to_take(name, self._slots.acquire, self._slots.release, started, limit)
        if taken is not False:
            return bool(taken)
        log.error(
            "profile %s: the %s due at %s was missed: it waited %s for a free slot, longer "
            "than its max_wait %s, while other runs held all %d (--max-parallel): it runs at "
            "its next time; look for a run that hangs, or raise --max-parallel or max_wait",
            name,
            self._action(name),
            when(due),
            human(round(time.monotonic() - started)),
            human(limit),
            self.max_parallel,
        )
        return False

    def _coalesced(self, event) -> None:
        """A run due while the previous run of the same schedule still waits for a slot or
        still runs (``max_instances=1``): not queued a second time; said by name."""
        with self._children_lock:
            waiting = self._waiting.get(event.job_id)
        log.warning(
            "profile %s: the %s due at %s was skipped: the previous one is still %s (one run "
            "of a schedule at a time)",
            event.job_id,
            self._action(event.job_id),
            when(max(event.scheduled_run_times)),
            f"waiting for {waiting[1]}" if waiting else "running",
        )

    def _action(self, name: str) -> str:
        schedule = self.schedules.get(name)
        return schedule.command if schedule is not None else "run"
