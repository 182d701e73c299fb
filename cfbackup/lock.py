"""One lock per profile, so two runs of a profile never overlap.

An ``flock`` on ``STATE_DIR/locks/PROFILE.lock``: the kernel drops it when the holder dies, even
by kill -9, so a lock left by a dead process is simply taken over. The file records who holds it,
for the message the second run prints.

A run started with ``CFBACKUP_LOCK_WAIT=DURATION`` in its environment (the scheduled runs: the
daemon's children, the generated systemd units and crontab lines) waits up to that long for the
lock instead of failing at once, so two schedules of one profile falling due together (a backup
and a drill at 02:30, or both fired at boot after downtime) run one after the other.

The scheduled runs also carry ``CFBACKUP_SCHEDULED=HOW:TABLE`` (``cron:profiles.web.schedule``;
HOW: ``systemd``, ``cron`` or ``daemon``). With it a run first takes its schedule's own lock
(``locks/schedules/TABLE.lock``) without waiting: cron starts a line again at its next time
even while the previous run still runs or waits, and that second firing exits at once (exit 4)
instead of queueing behind it. A different schedule of the profile still waits for the profile
lock. The marker also lets the messages name ``max_wait`` in TABLE (which sets the wait) rather
than the variable.

The daemon waits for its turn before it starts a run, and sets ``CFBACKUP_LOCK_WAITED`` (a
duration) to what it already waited: the message of a run giving up counts it, and a run the
daemon gave up on (started with ``CFBACKUP_LOCK_WAIT=0s`` so that it is recorded, in the
history and by the hooks, like any run finding the lock held) says it waited. That run also
carries ``CFBACKUP_LOCK_GIVEN_UP`` (what the daemon waited for: ``the backup to finish``): it
never takes the lock, even one free by then (the run it waited for ended a moment after the
daemon gave up), so it never runs outside the daemon's turns and --max-parallel slots; it only
fails, recorded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from cfbackup.errors import ConfigError, LockHeld, LockWaitStopped, ScheduleBusy
from cfbackup.units import human_duration, parse_duration

log = logging.getLogger("cfbackup.lock")
WAIT_VARIABLE = "CFBACKUP_LOCK_WAIT"
WAITED_VARIABLE = "CFBACKUP_LOCK_WAITED"
APPLY_VARIABLE = "CFBACKUP_SCHEDULE_APPLY"
SCHEDULED_VARIABLE = "CFBACKUP_SCHEDULED"
GIVEN_UP_VARIABLE = "CFBACKUP_LOCK_GIVEN_UP"
POLL = 0.5  # seconds between tries while waiting for the lock


def wait_from_environment(variable: str = WAIT_VARIABLE) -> int:
    """Seconds to wait for a held lock: ``$CFBACKUP_LOCK_WAIT`` (a duration: 6h, 30m), 0 when
    unset or empty; ConfigError naming the variable when it is not a duration. (``variable``:
    ``CFBACKUP_LOCK_WAITED``, what the daemon waited already.)"""
    text = os.environ.get(variable, "").strip()
    if not text:
        return 0
    try:
        return parse_duration(text)
    except ValueError as error:
        raise ConfigError(f"${variable}: {error}: set it to a duration such as 6h.") from None


def scheduled_from_environment() -> tuple[str, str] | None:
    """``(how, table)`` from ``$CFBACKUP_SCHEDULED`` (``cron:profiles.web.schedule``): the
    scheduled run's origin and its schedule's table; None for a run typed by hand."""
    text = os.environ.get(SCHEDULED_VARIABLE, "").strip()
    if not text:
        return None
    how, _, table = text.rpartition(":")
    return how, table


@contextlib.contextmanager
def profile_lock(
    state_dir: Path,
    profile: str,
    action: str,
    wait: int | None = None,
    *,
    config_path: Path | None = None,
) -> Iterator[Path]:
    """Hold the profile's lock; LockHeld (exit 4) when another run holds it for longer than
    ``wait`` seconds (None: ``$CFBACKUP_LOCK_WAIT``, else 0: at once), or when the previous
    run of the same schedule (``$CFBACKUP_SCHEDULED``) still runs or waits; LockWaitStopped
    (exit 130) when stopped while waiting. ``config_path`` is named in the messages."""
    if wait is None:
        wait = wait_from_environment()
    scheduled = scheduled_from_environment()
    if scheduled and scheduled[1].rpartition(".")[0] != f"profiles.{profile}":
        scheduled = None  # inherited by another profile's run (a hook's cfbackup command)
    # what the daemon waited before it started this run (its own: never inherited by a hook's)
    waited = wait_from_environment(WAITED_VARIABLE) if scheduled else 0
    # a run the daemon gave up on: what it waited for (its own, as WAITED)
    given_up = os.environ.get(GIVEN_UP_VARIABLE, "").strip() if scheduled else ""
    lock_dir = state_dir / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.ExitStack() as stack:
        if scheduled:
            stack.enter_context(_schedule_lock(lock_dir, profile, action, scheduled[1]))
        path = lock_dir / f"{profile}.lock"
        if given_up:  # never taken, even when free by now: the daemon's turn was not given
            raise LockHeld(
                _given_up_message(
                    state_dir, path, profile, action, scheduled, config_path, waited, given_up
                )
            )
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        stack.callback(os.close, fd)
        _acquire(fd, path, profile, wait, scheduled, config_path, waited)
        _write_holder(fd, action)
        yield path


@contextlib.contextmanager
def _schedule_lock(lock_dir: Path, profile: str, action: str, table: str) -> Iterator[None]:
    """One run of a schedule at a time, taken without waiting: a second firing of a cron line
    while the first still runs or waits for the profile lock exits at once (ScheduleBusy)."""
    schedules = lock_dir / "schedules"
    schedules.mkdir(exist_ok=True, mode=0o700)
    path = schedules / (re.sub(r"[^A-Za-z0-9._-]", "_", table).lstrip(".") + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ScheduleBusy(
                f"the previous run of [{table}], {_holder_words(path)}, is still running or "
                f"waiting for profile {profile}'s lock: this {action} is skipped (one run of a "
                f"schedule at a time); check whether that run hangs."
            ) from None
        _write_holder(fd, action)
        yield
    finally:
        os.close(fd)


def _write_holder(fd: int, action: str) -> None:
    """Record who holds the lock of ``fd``, for the message another run prints."""
    holder = {
        "pid": os.getpid(),
        "action": action,
        "since": time.time(),
        "argv": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:4])),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode(), 0)


def _acquire(
    fd: int,
    path: Path,
    profile: str,
    wait: int,
    scheduled: tuple[str, str] | None = None,
    config_path: Path | None = None,
    waited: int = 0,
) -> None:
    """flock ``fd``, trying again for up to ``wait`` seconds while another run holds it;
    a stop signal while waiting is LockWaitStopped (nothing was run). ``waited``: seconds the
    daemon waited before this run, counted in the message of one that gives up."""
    deadline = time.monotonic() + wait
    said = False
    source = f"max_wait in [{scheduled[1]}]" if scheduled else f"${WAIT_VARIABLE}"
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
            if not said:
                said = True
                log.info(
                    "profile %s is locked by another cfbackup run, %s: waiting up to %s (%s) "
                    "for it to finish",
                    profile,
                    _holder_words(path),
                    human_duration(wait),
                    source,
                )
            time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:
        recorded = _recorded(path)
        raise LockWaitStopped(
            f"stopped while waiting for PID {recorded.get('pid', '?')} "
            f"({recorded.get('action', '?')}) to release profile {profile}'s lock; nothing "
            f"was run."
        ) from None
    if not wait and not waited:
        raise LockHeld(_held_message(path, profile))
    raise LockHeld(_waited_message(path, profile, scheduled, config_path, wait + waited))


def _waited_message(
    path: Path,
    profile: str,
    scheduled: tuple[str, str] | None,
    config_path: Path | None,
    waited: int,
) -> str:
    """The message of a run that waited ``waited`` seconds in all for the held lock."""
    if scheduled:
        source = f"max_wait in [{scheduled[1]}]"
        fix = _raise_max_wait(*scheduled, config_path)
    else:
        source = f"${WAIT_VARIABLE}"
        fix = f"raise {WAIT_VARIABLE}"
    return (
        f"profile {profile} is locked by another cfbackup run, {_holder_words(path)}: waited "
        f"{human_duration(waited)} ({source}) for it to finish: check whether that run "
        f"hangs, or {fix}."
    )


def _given_up_message(
    state_dir: Path,
    path: Path,
    profile: str,
    action: str,
    scheduled: tuple[str, str],
    config_path: Path | None,
    waited: int,
    reason: str,
) -> str:
    """The message of a run the daemon gave up on after ``waited`` seconds waiting for
    ``reason`` (``$CFBACKUP_LOCK_GIVEN_UP``): who holds the lock when it is still held; else
    what the daemon waited for (it may have ended a moment after the daemon gave up)."""
    if holder(state_dir, profile) is not None:
        return _waited_message(path, profile, scheduled, config_path, waited)
    return (
        f"profile {profile}: the scheduler gave up on this {action} after waiting "
        f"{human_duration(waited)} (max_wait in [{scheduled[1]}]) for {reason}, so it did not "
        f"run: check whether that run hangs, or {_raise_max_wait(*scheduled, config_path)}."
    )


def _raise_max_wait(how: str, table: str, config_path: Path | None) -> str:
    """How to raise the max_wait of a scheduled run's schedule and apply it, as installed:
    ``$CFBACKUP_SCHEDULE_APPLY`` (written with the schedule: the install command with its
    options, the daemon's reload; for a crontab line only the install's options, ``--cron
    --cron-user root``, completed here) runs as printed; without it (installed by an older
    cfbackup), the command to adapt."""
    command = os.environ.get(APPLY_VARIABLE, "").strip()
    raise_it = f"raise max_wait in [{table}]"
    if (
        how == "cron"
        and command.startswith("--cron")
        and config_path
        and os.path.isabs(sys.argv[0])
    ):
        # a crontab line carries only the install's options (cron cuts a long line): the rest
        # is this run's own cfbackup, config file and profile
        profile = table.removeprefix("profiles.").rpartition(".")[0]
        command = shlex.join(
            [sys.argv[0], "-c", str(config_path), "schedule", "install", *shlex.split(command)]
            + [profile]
        )
    elif how == "cron" and command.startswith("--cron"):
        command = ""  # cannot be rebuilt: the command to adapt
    if how == "cron":
        command = command or (
            f"cfbackup -c {config_path or 'FILE'} schedule install --cron (with the options "
            "it was installed with)"
        )
        return (
            f"{raise_it}, then run {command} and put its {table} line in place of this one in "
            "the crontab"
        )
    if how == "daemon":
        return f"{raise_it} and reload the scheduler daemon ({command or 'SIGHUP'})"
    return f"{raise_it} and apply it with " + (
        command
        or f"cfbackup -c {config_path or 'FILE'} schedule install --{how or 'systemd'} (with the "
        "options it was installed with) && systemctl daemon-reload"
    )


def holder(state_dir: Path, profile: str) -> dict | None:
    """Who holds the profile's lock (``pid``, ``action``, ``since``), or None when nobody does.

    Looks without touching the lock: a probe that took it, even shared and for a moment, would
    refuse a backup starting in that moment. The kernel's table of flock locks
    (``/proc/locks``) says whether the file is held; without it (not Linux), a live holder's
    PID is taken as the answer."""
    path = state_dir / "locks" / f"{profile}.lock"
    try:
        found = os.stat(path)
        recorded = _recorded(path)
    except OSError:
        return None
    file_id = f"{os.major(found.st_dev):02x}:{os.minor(found.st_dev):02x}:{found.st_ino}"
    try:
        with open("/proc/locks") as table:
            held = any(
                len(words) > 5 and words[1] == "FLOCK" and words[5] == file_id
                for words in (line.split() for line in table)
            )
    except OSError:
        held = pid_alive(recorded.get("pid"))
    return (recorded or {"pid": None, "action": None, "since": None}) if held else None


def pid_alive(pid) -> bool:
    """A process with this id runs (another user's too); False for what is not a pid."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recorded(path: Path) -> dict:
    """What the holder wrote into the lock file (empty when unreadable)."""
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _holder_words(path: Path) -> str:
    """``PID 123 (backup, since 2026-12-06 02:30:00)``: who holds the lock, as recorded."""
    holder = _recorded(path)
    since = holder.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "unknown"
    return f"PID {holder.get('pid', '?')} ({holder.get('action', '?')}, since {when})"


def _held_message(path: Path, profile: str) -> str:
    return (
        f"profile {profile} is locked by another cfbackup run, {_holder_words(path)}: wait for "
        f"it to finish (the lock is released when that process ends)."
    )
