"""One profile's run: log file, lock, plugin contexts and hooks, the action, history, result.

The lifecycle is a stack of context managers so that every exit path (success, failure,
interruption) releases the lock, leaves the plugins' contexts (firewall rules restored) and fires
``on_error``/``run_finished``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cfbackup import history, interrupts, lock, plugins, redact
from cfbackup.config.model import Config, Profile
from cfbackup.errors import (
    CfbackupError,
    ExitCode,
    Interrupted,
    LockHeld,
    LockWaitStopped,
    ScheduleBusy,
)
from cfbackup.runtypes import Run, RunResult

log = logging.getLogger("cfbackup")


@contextlib.contextmanager
def run_log(config: Config, profile: Profile, action: str) -> Iterator[Path]:
    """A log file for this run (mode 0600, secrets masked), attached to the cfbackup logger."""
    log_dir = config.log_dir or config.state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = log_dir / f"{profile.name}-{action}-{stamp}-{os.getpid()}.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace"))
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redact.RedactingFilter())
    root = logging.getLogger("cfbackup")
    previous_level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()


def execute_run(
    config: Config,
    profile: Profile,
    action: str,
    options: dict[str, Any],
    pm,
    body: Callable[[Run], RunResult],
    *,
    take_lock: bool = True,
) -> RunResult:
    """Run ``body`` for one profile inside the full lifecycle; never raises CfbackupError:
    the failure is in the returned result (so one failing profile does not stop the others)."""
    hooks = plugins.hooks_for_profile(pm, profile["disable_plugins"])
    run = Run(config=config, profile=profile, action=action, options=options, hooks=hooks)
    # what the history records if the run is stopped before it has a result of its own (a
    # signal in an ``except`` clause below): interrupted, never the success of an empty result
    result = RunResult(
        profile=profile.name,
        action=action,
        exit_code=ExitCode.INTERRUPTED,
        message=_interrupted(run),
    )
    with run_log(config, profile, action) as log_path:
        run.log_file = log_path
        log.info("cfbackup %s of profile %s started", action, profile.name)
        if config.permission_warning:  # on stderr already (cli.context); here for the run log
            log.info("warning: %s", config.permission_warning)
        for warning in profile.secret_file_warnings:  # the same
            log.info("warning: %s", warning)
        run_id = None
        try:
            # a Ctrl-C or SIGTERM while the row is written waits for it, and is raised here,
            # inside the try: the row always gets its outcome (before: left "running", then
            # closed as killed by kill -9); one before this statement records nothing
            with interrupts.held():
                run_id = history.record_start(
                    config.state_dir, profile.name, action, {**run.marks, "pid": os.getpid()}
                )
            with contextlib.ExitStack() as stack:
                if take_lock:
                    try:
                        stack.enter_context(
                            lock.profile_lock(
                                config.state_dir, profile.name, action, config_path=config.path
                            )
                        )
                    except LockHeld:
                        # it never started: a wait for the lock (its message says how long)
                        # is not a duration
                        run.started = time.time()
                        raise
                    # the run starts now: a wait for the lock ($CFBACKUP_LOCK_WAIT) is not
                    # part of its duration (history, notifications, metrics)
                    run.started = time.time()
                    _close_abandoned_runs(config.state_dir, profile.name, run_id)
                for context in hooks.cfbackup_run_context(run=run):
                    if context is not None:
                        stack.enter_context(context)
                result = body(run)
        except (CfbackupError, KeyboardInterrupt) as error:
            if isinstance(error, KeyboardInterrupt):
                error = Interrupted(_interrupted(run))
            result = RunResult(
                profile=profile.name,
                action=action,
                exit_code=error.exit_code,
                message=redact.redact(error.message),
                error=error,
                stats=error.stats or result.stats,
                data=getattr(error, "data", None),  # e.g. a failed drill's report
                warnings=list(error.warnings),
            )
            log.info("run failed: %s", result.message)  # the CLI prints it once
            if error.detail:
                log.info("duplicity output (last lines):\n%s", error.detail)
            if isinstance(error, NOTHING_RUN):  # nothing failed: no hook, no notification
                run.started = time.time()
            else:
                _fire_safely(hooks.cfbackup_on_error, run=run, error=error)
        except Exception as error:  # a bug: record the failure (never a success), then raise
            error.cfbackup_log_file = run.log_file  # type: ignore[attr-defined]
            result = RunResult(
                profile=profile.name,
                action=action,
                exit_code=ExitCode.INTERNAL,
                message=redact.redact(internal_error_message(error)),
                error=error,
                stats=result.stats,
            )
            import traceback

            # the traceback goes to the run log (and to stderr with --debug), masked
            log.debug(
                "run failed with an internal error:\n%s",
                redact.redact_output(traceback.format_exc()),
            )
            error.cfbackup_traceback_logged = True  # type: ignore[attr-defined]
            log.info("run failed: %s", result.message)
            _fire_safely(hooks.cfbackup_on_error, run=run, error=error)
            raise
        finally:
            # a signal does not cut the outcome's write short, nor undo it: the run is over
            with interrupts.held(drop=True):
                result.duration = time.time() - run.started
                if run_id is not None and isinstance(result.error, NOTHING_RUN):
                    history.forget(config.state_dir, run_id)  # the run log keeps its line
                elif run_id is not None:  # else stopped before its row was written
                    history.record_finish(
                        config.state_dir,
                        run_id,
                        int(result.exit_code),
                        result.result,
                        _with_warning(result.message, config, profile, result.warnings),
                        {**run.marks, **result.stats},  # its kind, however it ended
                        started=run.started,  # when it took the lock
                    )
            if not isinstance(result.error, NOTHING_RUN):  # no notification, no metrics
                _fire_safely(hooks.cfbackup_run_finished, run=run, result=result)
            log.info(
                "cfbackup %s of profile %s finished: %s in %.1f s",
                action,
                profile.name,
                result.result,
                result.duration,
            )
    return result


# a run that ran nothing: stopped while it waited for the lock, a schedule's firing skipped
NOTHING_RUN = (LockWaitStopped, ScheduleBusy)


def _interrupted(run: Run) -> str:
    """The message of a run stopped by Ctrl-C or SIGTERM, naming what was stopped."""
    what = {"read-data": "verify --read-data", "drill-from-nothing": "drill --from-nothing"}
    name = what.get(run.kind, run.action)
    again = " (a backup resumes where it stopped)" if run.action == "backup" else ""
    return (
        f"interrupted: the {name} of {run.profile.name} was stopped before it finished; run "
        f"the command again{again}."
    )


def _with_warning(message: str, config: Config, profile: Profile, warnings=()) -> str:
    """The history keeps the loose-mode warnings (a legacy file, a secret file) beside every
    run's outcome, and the run's own (``RunResult.warnings``)."""
    loose = [w for w in (config.permission_warning, *profile.secret_file_warnings) if w]
    loose += list(warnings)
    if not loose:
        return message
    warning = "; ".join(f"warning: {w}" for w in loose)
    return f"{message} ({warning})" if message else warning


ABANDONED = (
    "the run ended without recording its outcome: it was killed (kill -9, the OOM killer) or the "
    "machine stopped; the next run found it. Run it again: a backup resumes where it stopped."
)


def _close_abandoned_runs(state_dir: Path, profile: str, current: int) -> None:
    """Record a failure for this profile's runs that never finished: whoever held the lock
    before us is dead, so an open run of a locking action died without a word (kill -9 skips
    every ``finally``). status and check run without the lock and may still be running; a run
    closed here by mistake would overwrite this record when it finishes."""
    for row in history.runs(state_dir, profile, limit=200):
        if row["finished"] is None and row["id"] < current and row["action"] not in UNLOCKED:
            if run_alive((row["stats"] or {}).get("pid")):  # waiting for the lock (LOCK_WAIT)
                continue
            log.warning(
                "an earlier %s of %s (run %s): %s", row["action"], profile, row["id"], ABANDONED
            )
            history.record_finish(
                state_dir,
                row["id"],
                int(ExitCode.INTERRUPTED),
                ExitCode.INTERRUPTED.name.lower(),
                ABANDONED,
                {k: v for k, v in (row["stats"] or {}).items() if k != "pid"},
            )


def run_alive(pid) -> bool:
    """Whether ``pid`` (a run's, kept in its row while it runs) is a cfbackup still running:
    a run that waits for the lock (``CFBACKUP_LOCK_WAIT``) wrote its row before it."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"cfbackup" in cmdline.read()  # dt-cf-backup too
    except OSError:
        return False


def internal_error_message(error: BaseException) -> str:
    """The one line an unexpected exception (a bug) becomes; it names the run log, which holds
    the traceback, when the bug struck inside a run (:func:`execute_run` notes it)."""
    text = redact.redact_output(str(error).splitlines()[0]) if str(error) else ""
    log_file = getattr(error, "cfbackup_log_file", None)
    report = (
        f"the run log {log_file}, which holds the traceback"
        if log_file
        else "the output of --debug, which shows the traceback"
    )
    return (
        f"internal error ({type(error).__name__}{': ' + text[:300] if text else ''}): this is a "
        f"bug in cfbackup; please report it with {report}."
    )


UNLOCKED = ("status", "check")  # the commands that run without the profile lock (cli/parser.py)


def _fire_safely(hook, **kwargs) -> None:
    """Notification-style hooks must never turn a result into a traceback."""
    try:
        hook(**kwargs)
    except Exception as error:  # a plugin bug must not hide the run's own outcome
        log.warning(
            "a plugin failed in %s: %s",
            getattr(hook, "name", "hook"),
            redact.redact_output(str(error)),
        )
