"""``cfbackup schedule run``: an APScheduler 3 ``BlockingScheduler`` running due backups (and
drills and volume checks).

Each due run is ``cfbackup -c CONFIG --quiet backup PROFILE`` (or ``drill``, ``verify``) in a
child process (through :mod:`cfbackup.execute`): exactly what a user or a timer would type, with
the profile lock, hooks, history, notifications and metrics, and isolated from the daemon (a
crash or a leak in one run cannot take the schedules down; config changes to a profile apply at
its next run). One job per schedule with ``max_instances=1``; missed runs are coalesced and run
late only within ``misfire_grace_time``. The runs of one profile (its backup, drill, verify) go
one after the other: a run due while its profile is busy waits for it (at most its schedule's
``max_wait``, else ``DEFAULT_LOCK_WAIT``) instead of starting a child that would fail on the
profile lock (exit 4); the child itself waits as long for a lock held outside the daemon
(``$CFBACKUP_LOCK_WAIT``). A lock held outside the daemon (a restore typed by hand) is looked
at before a ``--max-parallel`` slot is taken: the run waits for it outside the slot (at most its
``max_wait``), so that one long restore does not hold every other profile's run, and the log
says who holds it. A run given up on past its ``max_wait`` (its profile still busy) is started
all the same, told to wait no more: it is recorded as any run finding the lock held is (history,
hooks, notifications). A run waiting for a ``--max-parallel`` slot waits at most its
schedule's ``max_wait`` (when set), and one still waiting at shutdown is named in the log.

Signals are handled outside the handler: the handler only puts the signal number on a
``SimpleQueue`` (safe in signal handlers) and a control thread acts on it, so the scheduler's
locks are never taken inside a handler. SIGHUP reloads the schedules; SIGTERM/SIGINT stop
scheduling, send SIGTERM to the runs in progress (cfbackup stops duplicity cleanly: the backup
resumes next time), wait for them, and exit 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from cfbackup import execute, lock
from cfbackup.errors import CfbackupError, ExitCode
from cfbackup_scheduler.install import run_argv, scheduled_marker
from cfbackup_scheduler.journal import line_level, when
from cfbackup_scheduler.spec import Schedule, shared_times
from cfbackup_scheduler.waiting import GivenUp, Turns

log = logging.getLogger("cfbackup.scheduler")
STOP_TIMEOUT = 90.0  # seconds a run may take to stop before it is killed
# seconds between the scheduler's looks at the wall clock. It sleeps until the next run on a
# clock that stops while the machine is suspended (Python 3.11's waits, APScheduler 3's main
# loop): a machine suspended for 2 h woke the daemon 2 h after a 02:30 run, past its misfire
# grace, and the run was dropped.
WAKE = 60.0


# threads APScheduler may run jobs on (created only when needed). Wide enough that a due job
# never waits in the executor's queue: APScheduler counts that wait as lateness and drops the
# run as missed past misfire_grace_time (with --max-parallel 1, a profile due at the same time
# as a long backup of another was dropped every night). --max-parallel is a semaphore taken in
# the job instead, and max_instances=1 still keeps one run per profile at a time (a run waiting
# for its turn counts as that profile's instance).
EXECUTOR_WIDTH = 1000


def _missed(event) -> None:
    """A run APScheduler dropped (later than misfire_grace_time): an error naming the profile,
    not only APScheduler's own warning, so the journal and a log watcher show it."""
    log.error(
        "profile %s: the run due at %s was missed (more than misfire_grace_time late: the "
        "machine was asleep or off, or the daemon was stopped): it runs at its next time",
        event.job_id,
        when(event.scheduled_run_time),
    )


class Daemon(Turns):
    """The scheduler process: schedules from the config, runs as children, signals handled."""

    def __init__(
        self,
        load_schedules: Callable[[], list[Schedule]],
        command: Sequence[str],
        config_path: Path,
        *,
        max_parallel: int = 1,
        state_dir: Path | None = None,
    ):
        self.load_schedules = load_schedules
        # where the profile locks are (the config's state_dir): a lock held outside the
        # daemon is waited for before a slot is taken (None: not looked at)
        self.state_dir = state_dir
        self.command = list(command)
        self.config_path = config_path
        self.max_parallel = max_parallel
        # --max-parallel: taken inside the job, not by a narrow executor (see EXECUTOR_WIDTH)
        self._slots = threading.BoundedSemaphore(max_parallel)
        self.schedules: dict[str, Schedule] = {}
        self._signals: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._children: dict[str, subprocess.Popen] = {}
        self._children_lock = threading.Lock()
        # runs waiting for their turn: schedule key -> (when it was due, what it waits for),
        # under _children_lock
        self._waiting: dict[str, tuple[datetime, str]] = {}
        # one run of a profile at a time: profile -> its lock, and what holds it ("the drill")
        self._profiles: dict[str, threading.Lock] = {}
        self._holders: dict[str, tuple[str, str]] = {}  # profile -> (its schedule key, words)
        self._started = threading.Event()
        self._stopping = False
        self.scheduler = None

    # --- lifecycle ---

    def build_scheduler(self, scheduler_class):
        """The APScheduler scheduler of this daemon (``BlockingScheduler`` in :meth:`run`; a
        test may build a ``BackgroundScheduler`` the same way)."""
        from apscheduler.events import (
            EVENT_JOB_MAX_INSTANCES,
            EVENT_JOB_MISSED,
            EVENT_SCHEDULER_STARTED,
        )
        from apscheduler.executors.pool import ThreadPoolExecutor

        self.scheduler = scheduler_class(
            executors={"default": ThreadPoolExecutor(max_workers=EXECUTOR_WIDTH)},
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        self.scheduler.add_listener(lambda event: self._started.set(), EVENT_SCHEDULER_STARTED)
        self.scheduler.add_listener(_missed, EVENT_JOB_MISSED)
        self.scheduler.add_listener(self._coalesced, EVENT_JOB_MAX_INSTANCES)
        return self.scheduler

    def run(self) -> int:
        from apscheduler.schedulers.blocking import BlockingScheduler

        schedules = self.load_schedules()
        if not schedules:
            raise CfbackupError(
                f"{self.config_path}: no profile has a [schedule] with cron or interval: add "
                "one (see docs/plugins/scheduler.md).",
                exit_code=ExitCode.CONFIG,
            )
        self.build_scheduler(BlockingScheduler)
        self._apply(schedules)
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        }
        control = threading.Thread(target=self._control, name="scheduler-control", daemon=True)
        control.start()
        log.info(
            "cfbackup scheduler started (pid %d, config %s, %d schedule(s), at most %d run(s) "
            "at a time)",
            os.getpid(),
            self.config_path,
            len(schedules),
            self.max_parallel,
        )
        try:
            self.scheduler.start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("cfbackup scheduler stopped")
        return 0

    def _on_signal(self, signum, frame) -> None:
        self._signals.put(signum)

    def _control(self) -> None:
        self._started.wait()
        for job in self.scheduler.get_jobs():
            log.info("profile %s: next run at %s", job.id, when(job.next_run_time))
        while True:
            try:
                signum = self._signals.get(timeout=WAKE)
            except queue.Empty:
                self.scheduler.wakeup()  # the wall clock, looked at again (WAKE)
                continue
            try:
                if signum == signal.SIGHUP:
                    self.reload()
                    continue
                self.stop(signal.Signals(signum).name)
            except Exception:  # this thread must survive to handle the next signal
                log.exception("handling %s failed", signal.Signals(signum).name)
                if signum == signal.SIGHUP:
                    continue
                self.scheduler.shutdown(wait=False)
            return

    def reload(self) -> None:
        log.info("SIGHUP received: reloading %s", self.config_path)
        try:
            schedules = self.load_schedules()
        except CfbackupError as error:
            log.error("reload failed, keeping the previous schedules: %s", error.message)
            return
        added, changed, removed = self._apply(schedules)
        log.info(
            "reloaded: %d schedule(s) (added %s, changed %s, removed %s)",
            len(schedules),
            ", ".join(added) or "none",
            ", ".join(changed) or "none",
            ", ".join(removed) or "none",
        )
        for name in added + changed:
            job = self.scheduler.get_job(name)
            if job is not None:
                log.info("profile %s: next run at %s", name, when(job.next_run_time))

    def stop(self, why: str) -> None:
        with self._children_lock:  # a run starting from now on is stopped at once (register)
            self._stopping = True
            running = dict(self._children)
            waiting = dict(self._waiting)
        log.info(
            "%s received: stopping%s",
            why,
            f"; interrupting {', '.join(map(self._interrupting, running))}" if running else "",
        )
        for name, (due, what) in waiting.items():
            log.warning(
                "profile %s: the %s due at %s did not run: it was still waiting for %s when "
                "the daemon stopped (it runs at its next time)",
                name,
                self._action(name),
                when(due),
                what,
            )
        for child in running.values():
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for name, child in running.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error(
                    "profile %s: the run did not stop in %.0f s: killing it", name, STOP_TIMEOUT
                )
                child.kill()
        self.scheduler.shutdown(wait=True)

    # --- jobs ---

    def _apply(self, schedules: list[Schedule]) -> tuple[list[str], list[str], list[str]]:
        """Make the scheduler's jobs match ``schedules``; unchanged jobs keep their next run."""
        wanted = {s.key: s for s in schedules}
        removed = [name for name in self.schedules if name not in wanted]
        for name in removed:
            with contextlib.suppress(Exception):
                self.scheduler.remove_job(name)
        added, changed = [], []
        for name, schedule in wanted.items():
            if self.schedules.get(name) == schedule:
                continue
            (changed if name in self.schedules else added).append(name)
            self.scheduler.add_job(
                self.run_profile,
                trigger=schedule.trigger(),
                args=(name,),
                id=name,
                name=f"{schedule.action} {schedule.profile}",
                replace_existing=True,
                misfire_grace_time=schedule.misfire_grace_time,
            )
            log.info("profile %s: %s", name, schedule.describe())
        self.schedules = wanted
        for warning in shared_times(schedules):
            log.warning("%s", warning)
        return added, changed, removed

    def run_profile(self, name: str) -> int:
        """One scheduled run (``name``: a schedule's key), as a child ``cfbackup ... backup
        PROFILE`` (or drill, verify), after the profile's other run and in a free slot; its
        exit code."""
        due = datetime.now().astimezone()
        started = time.monotonic()
        schedule = self.schedules.get(name)
        if schedule is None:
            return self._run_child(name)  # its schedule was removed: says so
        busy = self._profile_lock(schedule.profile)
        if not busy.acquire(blocking=False):
            code = self._wait_for_profile(name, schedule, busy, due, started)
            if isinstance(code, GivenUp):
                return self._run_given_up(name, code, due, time.monotonic() - started)
            if code is not None:
                return code
        try:
            with self._children_lock:
                self._holders[schedule.profile] = (name, f"the {schedule.command}")
            code = self._wait_for_outside_lock(name, schedule, due, started)
            if isinstance(code, GivenUp):
                return self._run_given_up(name, code, due, time.monotonic() - started)
            if code is not None:
                return code
            if not self._slots.acquire(blocking=False) and not self._wait_for_slot(
                name, due, started
            ):
                return int(ExitCode.INTERRUPTED)
            try:
                return self._run_child(name, time.monotonic() - started)
            finally:
                self._slots.release()
        finally:
            with self._children_lock:
                self._holders.pop(schedule.profile, None)
            busy.release()

    def _run_given_up(self, name: str, given_up: GivenUp, due: datetime, waited: float) -> int:
        """A run given up on, its profile still busy past max_wait (its other run, or a run
        outside the daemon): its child is started all the same, to be recorded as any run
        finding the lock held is (LOCKED in the history, on_error, notifications) and to say
        how long it waited. Told it was given up on (``$CFBACKUP_LOCK_GIVEN_UP``), the child
        never takes the lock, even one released by now: it never runs, so it takes no
        --max-parallel slot. Logged once its exit code is known."""
        schedule = self.schedules.get(name)
        said: list[str] = []  # the child's error lines: this one line says them
        code = self._run_child(name, waited, wait=0, given_up=given_up.reason, errors=said)
        if schedule is None:
            return code
        if code == ExitCode.LOCKED:
            log.error(
                "profile %s: the %s due at %s did not run (exit code %d): %s",
                name,
                schedule.command,
                when(due),
                code,
                given_up.why,
            )
        else:  # recording it failed (a broken config, the shutdown): the child said why
            log.error(
                "profile %s: the %s due at %s did not run (given up: %s); recording it ended "
                "with: %s (exit code %d)%s",
                name,
                schedule.command,
                when(due),
                given_up.why,
                _meaning(code),
                code,
                f": {' '.join(said)}" if said else "",
            )
        return code

    @staticmethod
    def _child_line(name: str, line: str, errors: list[str] | None) -> None:
        """One line of a child, in the journal with its weight; an error line collected in
        ``errors`` instead, when given (the daemon's own line says it)."""
        level = line_level(line)
        if errors is not None and level == logging.ERROR:
            errors.append(line.removeprefix("cfbackup: error:").strip())
            level = logging.DEBUG
        log.log(level, "[%s] %s", name, line)

    def _interrupting(self, name: str) -> str:
        """A run the stop interrupts, and what becomes of it: only a backup resumes."""
        schedule = self.schedules.get(name)
        if schedule is None:  # its schedule was removed by a reload while it ran
            return name
        if schedule.action == "backup":
            return f"{name} (the backup resumes at its next run)"
        return f"{name} (the {schedule.command} runs again at its next time)"

    def _run_child(
        self,
        name: str,
        waited: float = 0.0,
        *,
        wait: int | None = None,
        given_up: str | None = None,
        errors: list[str] | None = None,
    ) -> int:
        """The child of one run; ``waited``: seconds it waited for its turn, ``wait``: seconds
        it may wait for the lock (None: what is left of its max_wait); ``given_up``: what it
        waited for when the daemon gave up on it (the child only records that it did not run;
        :meth:`_run_given_up` logs it, not as started and finished). ``errors``: collects the
        child's error lines (without ``cfbackup: error:``), then logged at DEBUG only."""
        if self._stopping:
            return int(ExitCode.INTERRUPTED)
        schedule = self.schedules.get(name)
        if schedule is None:  # waited for its turn while a reload removed its schedule
            log.info("profile %s: its schedule was removed; run skipped", name)
            return int(ExitCode.OK)
        argv = run_argv(self.command, self.config_path, schedule)
        action = schedule.action
        started = time.monotonic()
        if given_up is None:
            log.info("profile %s: %s started", schedule.profile, action)

        def register(process: subprocess.Popen) -> None:
            with self._children_lock:
                self._children[name] = process
                if self._stopping:  # started while the daemon was stopping
                    process.send_signal(signal.SIGTERM)

        try:
            # the child is cfbackup itself: it gets the whole environment (secrets named by
            # *_env keys live there), unlike duplicity, which gets only what it needs; and
            # waits what is left of its max_wait for a lock held outside the daemon (a run
            # typed by hand, a systemd timer)
            left = max(1, round(schedule.lock_wait - waited)) if wait is None else wait
            env = {
                **os.environ,
                lock.WAIT_VARIABLE: f"{left}s",
                lock.WAITED_VARIABLE: f"{round(waited)}s",
                lock.APPLY_VARIABLE: f"kill -HUP {os.getpid()}",
                lock.SCHEDULED_VARIABLE: scheduled_marker(schedule, "daemon"),
            }
            env.pop(lock.GIVEN_UP_VARIABLE, None)  # never the daemon's own environment's
            if given_up is not None:
                env[lock.GIVEN_UP_VARIABLE] = given_up
            result = execute.stream(
                argv,
                env=env,
                on_start=register,
                on_line=lambda line: self._child_line(name, line, errors),
            )
            code = result.returncode
        except CfbackupError as error:
            log.error("profile %s: could not start the %s: %s", name, action, error.message)
            return int(error.exit_code)
        finally:
            with self._children_lock:
                self._children.pop(name, None)
        if given_up is not None:  # it never ran: _run_given_up says so
            return code
        if self._stopping and code == ExitCode.INTERRUPTED:
            log.info("profile %s: %s interrupted by the shutdown", schedule.profile, action)
            return code
        meaning = _meaning(code)
        level = logging.INFO if code == 0 else logging.ERROR
        log.log(
            level,
            "profile %s: %s finished: %s (exit code %d) in %.1f s",
            schedule.profile,
            action,
            meaning,
            code,
            time.monotonic() - started,
        )
        job = None if self._stopping else self.scheduler.get_job(name)
        if job is not None:
            log.info("profile %s: next run at %s", name, when(job.next_run_time))
        return code


def _meaning(code: int) -> str:
    from cfbackup.errors import EXIT_CODE_MEANINGS

    try:
        return EXIT_CODE_MEANINGS[ExitCode(code)]
    except ValueError:
        return "unexpected exit code"


def cfbackup_command() -> list[str]:
    """How to start this cfbackup: its console script beside the interpreter, else on PATH."""
    import shutil

    beside = Path(sys.executable).parent / "cfbackup"
    if os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("cfbackup")
    if found:
        return [found]
    return [sys.executable, "-c", "from cfbackup.cli import run; run()"]
