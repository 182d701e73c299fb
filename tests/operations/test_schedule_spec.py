"""Cron expressions and intervals: parsing, and the same instants from APScheduler and from the
systemd calendar we generate (checked by systemd-analyze itself)."""

from __future__ import annotations

import re
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cfbackup_scheduler import spec

from cfbackup.config.model import Profile
from cfbackup.errors import ConfigError


def test_parse_fields_names_ranges_steps():
    s = spec.parse_cron("*/15 2-4 1,15 jan-mar mon-fri")
    assert s.minutes == {0, 15, 30, 45}
    assert s.hours == {2, 3, 4}
    assert s.days == {1, 15}
    assert s.months == {1, 2, 3}
    assert s.weekdays == {1, 2, 3, 4, 5}
    assert s.days_restricted and s.weekdays_restricted


def test_sunday_is_0_and_7_and_aliases():
    assert spec.parse_cron("0 0 * * 7").weekdays == {0}
    assert spec.parse_cron("0 0 * * 0").weekdays == {0}
    assert spec.systemd_calendars(spec.parse_cron("@daily")) == ["*-*-* 00:00:00"]
    assert spec.parse_cron("@weekly").weekdays == {0}
    assert spec.parse_cron("5/20 * * * *").minutes == {5, 25, 45}


@pytest.mark.parametrize(
    "expression, fragment",
    [
        ("* * * *", "5 fields"),
        ("60 * * * *", "outside 0-59"),
        ("* 24 * * *", "outside 0-23"),
        ("* * 0 * *", "outside 1-31"),
        ("* * * 13 *", "outside 1-12"),
        ("*/0 * * * *", "positive number"),
        ("5-1 * * * *", "low to high"),
        ("* * * * funday", "not a number"),
        ("@reboot", "unknown alias"),
        ("0 0 L * *", "not a number"),
    ],
)
def test_bad_cron_expressions(expression, fragment):
    with pytest.raises(ValueError, match=fragment):
        spec.parse_cron(expression)


def test_durations():
    assert spec.parse_duration("90s") == 90
    assert spec.parse_duration("1h30m") == 5400
    assert spec.parse_duration("1D") == 86400
    assert spec.human(5400) == "1h30m"
    for bad in ("1M", "1Y", "now", "2026-01-01", "10", ""):
        with pytest.raises(ValueError):
            spec.parse_duration(bad)


def test_interval_as_cron():
    assert spec.interval_as_cron(60) == "* * * * *"
    assert spec.interval_as_cron(15 * 60) == "*/15 * * * *"
    assert spec.interval_as_cron(6 * 3600) == "0 */6 * * *"
    assert spec.interval_as_cron(86400) == "0 0 * * *"
    with pytest.raises(ValueError, match="cannot be written"):
        spec.interval_as_cron(7 * 60)


def test_calendar_rendering():
    assert spec.systemd_calendars(spec.parse_cron("30 2 * * *")) == ["*-*-* 02:30:00"]
    assert spec.systemd_calendars(spec.parse_cron("*/15 * * * 1-5")) == [
        "Mon..Fri *-*-* *:00/15:00"
    ]
    assert spec.systemd_calendars(spec.parse_cron("0 3 * * sat,sun")) == ["Sat,Sun *-*-* 03:00:00"]
    # day of month OR weekday, as cron does when both are restricted
    assert spec.systemd_calendars(spec.parse_cron("0 4 1 * 0")) == [
        "*-*-01 04:00:00",
        "Sun *-*-* 04:00:00",
    ]


def _profile(schedule: dict, disable=()) -> Profile:
    return Profile(name="p", data={"schedule": schedule, "disable_plugins": list(disable)})


def test_schedule_for_profile_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"profiles\.p\.schedule: give cron or interval"):
        spec.schedule_for(_profile({"cron": "@daily", "interval": "1h"}))
    with pytest.raises(ConfigError, match=r"profiles\.p\.schedule\.cron: .*outside 0-59"):
        spec.schedule_for(_profile({"cron": "61 * * * *"}))
    with pytest.raises(ConfigError, match=r"profiles\.p\.schedule\.interval: .*months"):
        spec.schedule_for(_profile({"interval": "1M"}))
    assert spec.schedule_for(_profile({"cron": "@daily", "enabled": False})) is None
    assert spec.schedule_for(_profile({})) is None
    assert spec.schedule_for(_profile({"cron": "@daily"}, disable=["scheduler"])) is None
    s = spec.schedule_for(_profile({"interval": "2s", "jitter": "1s", "misfire_grace_time": "1h"}))
    assert (s.interval, s.jitter, s.misfire_grace_time) == (2, 1, 3600)
    assert s.max_wait == 0  # unset: no bound
    assert spec.schedule_for(_profile({"interval": "1h", "max_wait": "4h"})).max_wait == 14400
    with pytest.raises(ConfigError, match=r"profiles\.p\.schedule\.max_wait: "):
        spec.schedule_for(_profile({"interval": "1h", "max_wait": "soon"}))


# --- the same instants three ways -----------------------------------------------------------

EXPRESSIONS = [
    "30 2 * * *",
    "*/15 * * * 1-5",
    "0 0 * * 0",  # Sunday: APScheduler's from_crontab would say Monday
    "0 0 * * 7",
    "0 4 1,15 * sun",  # day OR weekday
    "*/20 9-17 * * mon-fri",
    "0 */6 * * *",
    "5 4 * jan,jul *",
    "0 12 */10 * *",
    "0 1 * * fri-sun",
    "@monthly",
]
ELAPSE = re.compile(r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")


def _systemd_instants(calendars: list[str], count: int) -> list[datetime]:
    found: set[datetime] = set()
    for calendar in calendars:
        out = subprocess.run(
            ["systemd-analyze", "calendar", f"--iterations={count}", calendar],
            capture_output=True,
            text=True,
            check=True,
            env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
        ).stdout
        found.update(
            datetime.strptime(m, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            for m in ELAPSE.findall(out)
        )
    return sorted(found)[:count]


def _aps_instants(s: spec.CronSpec, count: int, now: datetime) -> list[datetime]:
    trigger = spec.aps_trigger(s, timezone=UTC)
    out, previous, moment = [], None, now
    for _ in range(count):
        moment = trigger.get_next_fire_time(previous, moment)
        out.append(moment)
        previous, moment = moment, moment + timedelta(seconds=1)
    return out


def _cron_matches(s: spec.CronSpec, moment: datetime) -> bool:
    """Vixie cron's rule, written out independently of the code under test."""
    weekday = (moment.weekday() + 1) % 7  # Python Monday=0 -> cron Sunday=0
    day_ok, weekday_ok = moment.day in s.days, weekday in s.weekdays
    if s.days_restricted and s.weekdays_restricted:
        days = day_ok or weekday_ok
    else:
        days = day_ok and weekday_ok
    return (
        moment.minute in s.minutes and moment.hour in s.hours and moment.month in s.months and days
    )


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_systemd_and_apscheduler_agree_with_cron(expression):
    s = spec.parse_cron(expression)
    for _attempt in range(2):  # a minute boundary may pass between the two computations
        now = datetime.now(UTC)
        systemd = _systemd_instants(spec.systemd_calendars(s), 8)
        aps = _aps_instants(s, 8, now)
        if systemd == aps:
            break
    assert systemd == aps
    assert all(_cron_matches(s, moment) for moment in aps)
    # and no cron instant between now and the last one is missing
    moment = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    expected = []
    while len(expected) < 8:
        if _cron_matches(s, moment):
            expected.append(moment)
        moment += timedelta(minutes=1)
        if moment > aps[-1]:
            break
    assert expected == aps


# --- the daemon's control thread, without a daemon -----------------------------------------


class _Scheduler:
    """What Daemon._control uses of APScheduler's scheduler."""

    def __init__(self, daemon, wakeups: int):
        self.daemon, self.left, self.woken, self.shut = daemon, wakeups, 0, False

    def get_jobs(self):
        return []

    def wakeup(self):
        self.woken += 1
        self.left -= 1
        if self.left == 0:  # enough: stop as systemd would
            self.daemon._signals.put(signal.SIGTERM)

    def shutdown(self, wait=True):
        self.shut = True


def test_the_daemon_looks_at_the_clock_while_nothing_happens(monkeypatch):
    """APScheduler sleeps until the next run on a clock that stops during a suspend: the
    control thread wakes it every WAKE seconds, so a run due while the machine slept is not
    found hours late and dropped as missed."""
    import threading

    from cfbackup_scheduler import daemon as daemon_module

    monkeypatch.setattr(daemon_module, "WAKE", 0.01)
    daemon = daemon_module.Daemon(list, ["cfbackup"], Path("/nonexistent.toml"))
    daemon.scheduler = _Scheduler(daemon, wakeups=3)
    daemon._started.set()
    control = threading.Thread(target=daemon._control, daemon=True)
    control.start()
    control.join(timeout=10)
    assert not control.is_alive()
    assert daemon.scheduler.woken == 3 and daemon.scheduler.shut


def test_a_missed_run_is_an_error_naming_the_profile(caplog):
    from types import SimpleNamespace

    from cfbackup_scheduler import daemon as daemon_module

    due = datetime(2026, 12, 6, 2, 30, tzinfo=UTC)
    with caplog.at_level("ERROR", logger="cfbackup"):
        daemon_module._missed(SimpleNamespace(job_id="nightly", scheduled_run_time=due))
    assert "profile nightly: the run due at 2026-12-06 02:30:00 UTC was missed" in caplog.text


# --- daylight saving time: as Vixie cron -----------------------------------------------------

BERLIN = "Europe/Berlin"  # 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET


def _fire_times(expression: str, start: datetime, until: datetime) -> list[str]:
    """What the daemon's trigger fires, as APScheduler asks it: from the previous fire time."""
    from zoneinfo import ZoneInfo

    trigger = spec.aps_trigger(spec.parse_cron(expression), timezone=ZoneInfo(BERLIN))
    out, previous, now = [], None, start
    while True:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None or fire > until or len(out) > 50:
            return out
        out.append(fire.isoformat())
        previous = now = fire


def _berlin(*args) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo(BERLIN))


def test_a_fixed_time_runs_once_the_night_the_clocks_go_back():
    """cron runs 30 2 * * * once on 2026-10-25 in Berlin; APScheduler's CronTrigger ran it at
    02:30 summer time and again at 02:30 winter time."""
    fires = _fire_times("30 2 * * *", _berlin(2026, 10, 24, 12), _berlin(2026, 10, 26, 12))
    assert fires == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    fires = _fire_times("0,30 1-3 25 10 *", _berlin(2026, 10, 25, 0), _berlin(2026, 10, 25, 5))
    assert fires == [
        "2026-10-25T01:00:00+02:00", "2026-10-25T01:30:00+02:00",
        "2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
        "2026-10-25T03:00:00+01:00", "2026-10-25T03:30:00+01:00",
    ]  # fmt: skip


def test_a_skipped_fixed_time_runs_once_right_after_the_jump():
    """Vixie cron runs a job whose time the clocks jumped over soon after the jump: 03:00."""
    fires = _fire_times("30 2 * * *", _berlin(2026, 3, 28, 12), _berlin(2026, 3, 30, 12))
    assert fires == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
    fires = _fire_times("0,30 2 * * *", _berlin(2026, 3, 29, 0), _berlin(2026, 3, 29, 12))
    assert fires == ["2026-03-29T03:00:00+02:00"]  # both skipped times: one run


def test_wildcard_hours_follow_the_new_clock():
    """``*`` in the minute or hour field: the repeated hour runs again (it is another hour of
    real time), the skipped hour is skipped, as Vixie cron does."""
    fires = _fire_times("*/30 * * * *", _berlin(2026, 10, 25, 1, 45), _berlin(2026, 10, 25, 3))
    assert fires == [
        "2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]  # fmt: skip
    fires = _fire_times("30 * * * *", _berlin(2026, 3, 29, 0), _berlin(2026, 3, 29, 4))
    assert fires == [
        "2026-03-29T00:30:00+01:00", "2026-03-29T01:30:00+01:00", "2026-03-29T03:30:00+02:00"
    ]  # fmt: skip


def test_shared_times_of_a_profile_s_schedules():
    """Two schedules of one profile meeting: cron expressions with a common time (day of month
    OR weekday counted as cron does), or intervals one a multiple of the other."""
    from datetime import UTC, datetime

    from cfbackup_scheduler.spec import Schedule, parse_cron, shared_times

    def cron(expression, action="backup", profile="web"):
        return Schedule(profile, parse_cron(expression), None, 0, 60, action=action)

    def every(seconds, action="backup"):
        return Schedule("web", None, seconds, 0, 60, action=action)

    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # a Sunday
    (one,) = shared_times([cron("30 2 * * *"), cron("30 2 1 * mon", "drill")], now)
    assert "(next on 2026-12-07 at 02:30)" in one  # Monday, not the 1st: cron's OR
    assert not shared_times([cron("30 2 * * *"), cron("31 2 * * *", "drill")], now)
    assert not shared_times([cron("30 2 1 * *"), cron("30 2 2 * *", "verify")], now)
    assert not shared_times([cron("30 2 * * *"), cron("30 2 * * *", profile="db")], now)
    assert not shared_times([cron("0 0 31 * *"), cron("0 0 * 2 *", "drill")], now)  # no 31 Feb
    (daily,) = shared_times([every(6 * 3600), every(86400, "verify")], now)
    assert daily.startswith(
        "profiles.web.schedule (every 6h) and profiles.web.verify (every 1D) fall due at the "
        "same time (every 1D)"
    )
    assert not shared_times([every(3600), every(5400, "drill")], now)
