"""Scheduled runs that did not happen, for ``cfbackup status``: a weekly drill whose daemon or
timer stopped left "last drill: success" three weeks old looking as healthy as last Sunday's.

A schedule is overdue when its last due time, plus what a run may take to start (its
``max_wait`` for the profile's other run, its jitter, a few minutes of slack), has passed with
no run of its command begun since: any run counts, typed by hand or scheduled, passed or not
(a failed one has its own line). A schedule that never ran is not flagged: status already
says ``never``, and one just added has had no chance yet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cfbackup import history, suggest
from cfbackup.errors import ExitCode
from cfbackup.runner import run_alive
from cfbackup_scheduler.journal import when
from cfbackup_scheduler.spec import Schedule, schedules_for

SLACK = 300  # seconds a run may start after its time: the daemon's tick, a timer's accuracy
WINDOWS = (2 / 24, 2, 8, 32, 367, 4 * 366)  # days looked back for the last due time


def overdue(profile: Any, state_dir: Path, now: datetime | None = None) -> list[str]:
    """One sentence per schedule of ``profile`` that missed its last run, with the fix."""
    now = now or datetime.now().astimezone()
    found = []
    for schedule in schedules_for(profile):
        found_run = _last_run(state_dir, schedule)
        if found_run is None:
            continue
        last, ended = found_run
        if ended is None:  # running now: a time due meanwhile is skipped, not missed
            continue
        latest = now - timedelta(seconds=schedule.lock_wait + schedule.jitter + SLACK)
        if schedule.cron is None:
            every = timedelta(seconds=schedule.interval or 0)
            # a run longer than its interval skipped the times due while it ran: the next
            # comes at most an interval after its end
            due = last + every if ended <= last + every else ended + every
            # the daemon's interval (a timer's OnActiveSec too) counts from its start: after a
            # restart (a reboot) the next run comes up to an interval after that time
            if due + every > latest:
                continue
        else:
            due = _last_due(schedule, latest)
            # one that ran past it (the daemon runs one at a time) skipped that time
            if due is None or last >= due or ended >= due:
                continue
        what = schedule.command if schedule.action == "backup" else schedule.label
        timing = (
            f"cron {schedule.cron.expression!r}"
            if schedule.cron
            else f"every {schedule.interval} s"
        )
        found.append(
            f"the {what} scheduled in {schedule.table} ({timing}) was due at "
            f"{when(due.astimezone())} and has not run since (its last run began {when(last)}): "
            "check that cfbackup "
            f"schedule run or its timers run ({suggest.command('schedule', 'list')} shows "
            f"them), or run {suggest.command(schedule.action, profile.name, *schedule.arguments)}"
            " now."
        )
    return found


def _last_run(state_dir: Path, schedule: Schedule) -> tuple[datetime, datetime | None] | None:
    """When the newest run of the schedule's command began (a dry run is none), and when it
    ended: None while it runs (its row has no outcome yet and its process lives); when it
    began for one killed before it recorded its outcome."""
    read_data = any(a.startswith("--read-data") for a in schedule.arguments)
    from_nothing = "--from-nothing" in schedule.arguments
    for row in history.runs(state_dir, schedule.profile, limit=1000, actions=(schedule.action,)):
        stats = row["stats"] or {}
        if stats.get("dry_run") or row["exit_code"] == ExitCode.USAGE:  # neither ran the check
            continue
        if schedule.action == "verify" and ("read_data" in stats) != read_data:
            continue
        if schedule.action == "drill" and bool(stats.get("from_nothing")) != from_nothing:
            continue
        began = datetime.fromtimestamp(row["started"]).astimezone()
        if row["finished"] is not None:
            return began, datetime.fromtimestamp(row["finished"]).astimezone()
        return began, None if run_alive(stats.get("pid")) else began
    return None


def _last_due(schedule: Schedule, moment: datetime) -> datetime | None:
    """The newest nominal time of a cron schedule at or before ``moment`` (APScheduler's
    trigger, as the daemon's, has only next times: found from a window before it)."""
    trigger = schedule.trigger(jitter=False)
    for days in WINDOWS:
        fire = trigger.get_next_fire_time(None, moment - timedelta(days=days))
        if fire is None or fire > moment:
            continue
        while True:
            # in UTC: a local time plus a second is wall-clock arithmetic, which drops the fold
            # of the hour the clocks go back (01:00 EST + 1 s is 01:00:01 EDT, an hour back):
            # the trigger gave the same time again, and status looped for ever that night
            fire = fire.astimezone(UTC)
            following = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
            if following is None or following > moment or following <= fire:
                return fire
            fire = following
    return None
