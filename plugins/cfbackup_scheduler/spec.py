"""A profile's ``[schedule]`` as data: cron expressions and intervals, parsed once, rendered as
an APScheduler trigger, a systemd ``OnCalendar=`` value or a crontab time field.

Pure functions, no I/O. Two traps this module exists to avoid:

- APScheduler 3's ``CronTrigger.from_crontab`` numbers weekdays from Monday (0 = Monday), cron
  from Sunday (0 and 7 = Sunday): ``0 2 * * 0`` would run on Mondays. We parse cron ourselves
  and hand APScheduler weekday *names*.
- cron (Vixie/cronie) runs a job when the day of month OR the weekday matches if both fields
  are restricted (neither starts with ``*``); APScheduler and systemd require both. Such an
  expression becomes two triggers (APScheduler ``OrTrigger``, two ``OnCalendar=`` lines).

And APScheduler's trigger runs a fixed-time job twice the night the clocks go back:
``dst.py`` gives it Vixie cron's daylight saving rules.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cfbackup.errors import ConfigError
from cfbackup.units import human_duration as human
from cfbackup.units import parse_duration

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron numbering: 0 = Sunday
# (name, lowest, highest, names mapped to numbers)
FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(MONTHS)}),
    ("day of week", 0, 7, {name: i for i, name in enumerate(WEEKDAYS)}),
)
SYSTEMD_WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
MONDAY_FIRST = (1, 2, 3, 4, 5, 6, 0)  # systemd writes weekday ranges Monday to Sunday


@dataclasses.dataclass(frozen=True)
class CronSpec:
    """One cron expression as the sets of values it allows, in cron's numbering."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool
    # neither minute nor hour starts with *: Vixie cron's rules for DST apply (dst.py)
    fixed_time: bool = False

    @property
    def alternatives(self) -> tuple[CronSpec, ...]:
        """Specs whose union is this one, each with AND semantics for day and weekday."""
        if not (self.days_restricted and self.weekdays_restricted):
            return (self,)
        return (
            dataclasses.replace(self, weekdays=frozenset(range(7)), weekdays_restricted=False),
            dataclasses.replace(self, days=frozenset(range(1, 32)), days_restricted=False),
        )


def parse_cron(expression: str) -> CronSpec:
    """Parse a 5-field cron expression (names, ranges, steps, lists, @daily-style aliases)."""
    text = " ".join(expression.split())
    text = ALIASES.get(text.lower(), text)
    if text.startswith("@"):
        raise ValueError(
            f"{expression!r}: unknown alias (known: {', '.join(ALIASES)}; @reboot is not a "
            "schedule)"
        )
    parts = text.split(" ")
    if len(parts) != 5:
        raise ValueError(
            f"{expression!r}: a cron expression has 5 fields (minute hour day-of-month month "
            f"day-of-week), not {len(parts)}"
        )
    values = [_parse_field(part, *field) for part, field in zip(parts, FIELDS, strict=True)]
    weekdays = frozenset(0 if d == 7 else d for d in values[4])
    return CronSpec(
        expression=expression.strip(),
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=weekdays,
        days_restricted=not parts[2].startswith("*"),
        weekdays_restricted=not parts[4].startswith("*"),
        fixed_time=not (parts[0].startswith("*") or parts[1].startswith("*")),
    )


def _parse_field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset:
    found: set[int] = set()
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{name} {item!r}: the step after / must be a positive number")
            step = int(step_text)
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _value(first, name, low, high, names), _value(last, name, low, high, names)
            if name == "day of week" and end == 0:
                end = 7  # fri-sun: Sunday is also 7
            if start > end:
                raise ValueError(f"{name} {item!r}: a range must go from low to high")
        else:
            start = _value(body, name, low, high, names)
            end = high if step_text else start
        found.update(range(start, end + 1, step))
    return frozenset(found)


def _value(text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        allowed = f"{low}-{high}" + (f" or a name ({', '.join(names)})" if names else "")
        raise ValueError(f"{name} {text!r} is not a number {allowed}")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{name} {value} is outside {low}-{high}")
    return value


# --- renderers -----------------------------------------------------------------------------


def _numbers(values: frozenset[int], low: int, high: int) -> str:
    """A systemd calendar component: ``*``, ``start/step``, or a list with ``a..b`` runs."""
    ordered = sorted(values)
    if ordered == list(range(low, high + 1)):
        return "*"
    if len(ordered) > 2:
        step = ordered[1] - ordered[0]
        if step > 1 and ordered == list(range(ordered[0], high + 1, step)):
            return f"{ordered[0]:02d}/{step}"
    return ",".join(
        f"{a:02d}" if a == b else f"{a:02d},{b:02d}" if b == a + 1 else f"{a:02d}..{b:02d}"
        for a, b in _runs(ordered)
    )


def _runs(ordered: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for value in ordered:
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _weekdays(values: frozenset[int]) -> str:
    positions = sorted(MONDAY_FIRST.index(d) for d in values)
    return ",".join(
        SYSTEMD_WEEKDAYS[MONDAY_FIRST[a]]
        if a == b
        else f"{SYSTEMD_WEEKDAYS[MONDAY_FIRST[a]]},{SYSTEMD_WEEKDAYS[MONDAY_FIRST[b]]}"
        if b == a + 1
        else f"{SYSTEMD_WEEKDAYS[MONDAY_FIRST[a]]}..{SYSTEMD_WEEKDAYS[MONDAY_FIRST[b]]}"
        for a, b in _runs(positions)
    )


def systemd_calendars(spec: CronSpec) -> list[str]:
    """``OnCalendar=`` values (one per alternative) equivalent to the cron expression."""
    out = []
    for alt in spec.alternatives:
        weekday = "" if len(alt.weekdays) == 7 else _weekdays(alt.weekdays) + " "
        out.append(
            f"{weekday}*-{_numbers(alt.months, 1, 12)}-{_numbers(alt.days, 1, 31)} "
            f"{_numbers(alt.hours, 0, 23)}:{_numbers(alt.minutes, 0, 59)}:00"
        )
    return out


def _aps_field(values: frozenset[int], low: int, high: int) -> str:
    if values == frozenset(range(low, high + 1)):
        return "*"
    return ",".join(str(v) for v in sorted(values))


def aps_trigger(spec: CronSpec, jitter: int | None = None, timezone: Any = None):
    """An APScheduler 3 trigger with cron's semantics (weekday names, day OR weekday, and
    Vixie cron's rules on the nights the clocks change: ``dst.py``)."""
    from apscheduler.triggers.combining import OrTrigger
    from apscheduler.triggers.cron import CronTrigger

    from cfbackup_scheduler.dst import VixieDstTrigger

    triggers = [
        CronTrigger(
            minute=_aps_field(alt.minutes, 0, 59),
            hour=_aps_field(alt.hours, 0, 23),
            day=_aps_field(alt.days, 1, 31),
            month=_aps_field(alt.months, 1, 12),
            day_of_week="*"
            if len(alt.weekdays) == 7
            else ",".join(WEEKDAYS[d] for d in sorted(alt.weekdays, key=MONDAY_FIRST.index)),
            second="0",
            timezone=timezone,
        )
        for alt in spec.alternatives
    ]
    plain = triggers[0] if len(triggers) == 1 else OrTrigger(triggers)
    return VixieDstTrigger(plain, fixed=spec.fixed_time, jitter=jitter)


def interval_as_cron(seconds: int) -> str:
    """A crontab time field firing every ``seconds``, when cron can express it exactly."""
    minutes, rest = divmod(seconds, 60)
    if rest == 0:
        if minutes < 60 and 60 % minutes == 0:
            return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
        hours, rest = divmod(minutes, 60)
        if rest == 0 and hours < 24 and 24 % hours == 0:
            return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
        if minutes == 24 * 60:
            return "0 0 * * *"
        if minutes == 7 * 24 * 60:
            return "0 0 * * 0"
    raise ValueError(
        f"an interval of {seconds} s cannot be written as a crontab line: use a cron expression "
        "in [schedule] cron, or --systemd"
    )


# --- a profile's schedule ------------------------------------------------------------------

# seconds a scheduled run waits for another run of its profile (a backup and a drill due
# together) when its schedule sets no max_wait: a night's backup fits; one stuck longer is
# not waited for forever
DEFAULT_LOCK_WAIT = 6 * 3600


@dataclasses.dataclass(frozen=True)
class Schedule:
    profile: str
    cron: CronSpec | None
    interval: int | None  # seconds
    jitter: int  # seconds
    misfire_grace_time: int  # seconds
    action: str = "backup"  # the cfbackup command it runs: backup, drill or verify
    arguments: tuple[str, ...] = ()  # after the profile name, e.g. --read-data=next/7
    kind: str = ""  # what names its unit when the action alone does not: drill-from-nothing
    max_wait: int = 0  # seconds a run may wait for its turn; 0: DEFAULT_LOCK_WAIT / no bound

    @property
    def lock_wait(self) -> int:
        """Seconds a run waits for another run of its profile to end: ``max_wait``, else
        DEFAULT_LOCK_WAIT (the daemon's wait for a --max-parallel slot has no default bound)."""
        return self.max_wait or DEFAULT_LOCK_WAIT

    @property
    def section(self) -> str:
        """The profile's table this schedule comes from: schedule, drill, verify..."""
        return "schedule" if self.label == "backup" else self.label.replace("-", "_")

    @property
    def table(self) -> str:
        """``profiles.web.schedule``: where the schedule is set (its max_wait, for messages)."""
        return f"profiles.{self.profile}.{self.section}"

    @property
    def label(self) -> str:
        """backup, drill, verify or drill-from-nothing: what the unit name ends in."""
        return self.kind or self.action

    @property
    def key(self) -> str:
        """Names the schedule among a config's: the profile, and its label unless a backup."""
        return self.profile if self.label == "backup" else f"{self.profile}:{self.label}"

    @property
    def command(self) -> str:
        return " ".join((self.action, *self.arguments))

    def describe(self) -> str:
        what = f"cron {self.cron.expression!r}" if self.cron else f"every {human(self.interval)}"
        what += f", jitter up to {human(self.jitter)}" if self.jitter else ""
        return what if self.action == "backup" else f"{self.command}: {what}"

    def trigger(self, timezone: Any = None, *, jitter: bool = True):
        """The APScheduler trigger (``jitter=False``: the nominal times, for display)."""
        jitter = (self.jitter or None) if jitter else None
        if self.cron:
            return aps_trigger(self.cron, jitter, timezone)
        from apscheduler.triggers.interval import IntervalTrigger

        return IntervalTrigger(seconds=self.interval, jitter=jitter, timezone=timezone)


def _never(spec) -> bool:
    """A cron expression whose fields never meet (``0 0 30 2 *``): APScheduler has no next run
    for it, the daemon would never run it and systemd's OnCalendar never elapse."""
    from datetime import UTC, datetime

    return aps_trigger(spec, None, UTC).get_next_fire_time(None, datetime.now(UTC)) is None


# profile table -> the command its schedule runs
SECTIONS = {
    "schedule": "backup",
    "drill": "drill",
    "drill_from_nothing": "drill",  # drill --from-nothing, on its own (rarer) schedule
    "verify": "verify",
}


def schedules_for(profile: Any) -> list[Schedule]:
    """The profile's schedules: its backups (``[schedule]``), drills (``[drill]``, and
    ``[drill_from_nothing]`` from the recovery kit alone) and checks of the volumes
    (``[verify]``)."""
    found = (schedule_for(profile, section) for section in SECTIONS)
    return [schedule for schedule in found if schedule is not None]


def schedule_for(profile: Any, section: str = "schedule") -> Schedule | None:
    """The profile's schedule in table ``section``, None when it has none or it is off;
    ConfigError when invalid."""
    table = profile.plugin_config(section)
    where = f"profiles.{profile.name}.{section}"
    if "scheduler" in profile.get("disable_plugins", ()):
        return None
    cron, interval = table.get("cron"), table.get("interval")
    if not table.get("enabled", True) or (cron is None and interval is None):
        return None
    if cron is not None and interval is not None:
        raise ConfigError(f"{where}: give cron or interval, not both.")
    try:
        spec = parse_cron(cron) if cron is not None else None
    except ValueError as error:
        raise ConfigError(f"{where}.cron: {error}.") from None
    if spec is not None and _never(spec):
        raise ConfigError(
            f"{where}.cron: {cron!r} names a day that never comes (such as 30 February): "
            "check the day of month and the month."
        )
    seconds = {}
    for key in ("interval", "jitter", "misfire_grace_time", "max_wait"):
        value = table.get(key)
        if value is None:
            seconds[key] = 0
            continue
        try:
            seconds[key] = parse_duration(value)
        except ValueError as error:
            raise ConfigError(f"{where}.{key}: {error}.") from None
    if interval is not None and seconds["interval"] < 1:
        raise ConfigError(f"{where}.interval: must be at least 1s.")
    read_data = table.get("read_data") if section == "verify" else None
    arguments = (f"--read-data={read_data}",) if read_data else ()
    if section == "drill_from_nothing":
        arguments = ("--from-nothing",)
    return Schedule(
        profile=profile.name,
        cron=spec,
        interval=seconds["interval"] if interval is not None else None,
        jitter=seconds["jitter"],
        misfire_grace_time=seconds["misfire_grace_time"] or 1,
        action=SECTIONS[section],
        arguments=arguments,
        kind=section.replace("_", "-") if section == "drill_from_nothing" else "",
        max_wait=seconds["max_wait"],
    )


def _timing(schedule: Schedule) -> str:
    return (
        f"cron {schedule.cron.expression!r}"
        if schedule.cron
        else f"every {human(schedule.interval)}"
    )


def _next_shared(a: CronSpec, b: CronSpec, now: Any, timezone: Any = None):
    """The next time both cron expressions fire (local time), None when they never meet."""
    found = []
    for x in a.alternatives:
        for y in b.alternatives:
            both = CronSpec(
                expression="",
                minutes=x.minutes & y.minutes,
                hours=x.hours & y.hours,
                days=x.days & y.days,
                months=x.months & y.months,
                weekdays=x.weekdays & y.weekdays,
                days_restricted=False,  # each alternative already ANDs day and weekday
                weekdays_restricted=False,
            )
            if not all((both.minutes, both.hours, both.days, both.months, both.weekdays)):
                continue
            moment = aps_trigger(both, None, timezone).get_next_fire_time(None, now)
            if moment is not None:
                found.append(moment)
    return min(found, default=None)


def shared_times(schedules: list[Schedule], now: Any = None) -> list[str]:
    """One warning per two schedules of a profile that fall due at the same time (two cron
    expressions meeting, or two intervals one a multiple of the other): one of them waits for
    the other to finish, so it runs late or, past its max_wait, not at all."""
    from datetime import UTC, datetime

    now = now or datetime.now(UTC)
    warnings = []
    for i, a in enumerate(schedules):
        for b in schedules[i + 1 :]:
            if a.profile != b.profile:
                continue
            if a.cron and b.cron:
                moment = _next_shared(a.cron, b.cron, now)
                if moment is None:
                    continue
                when = f"next on {moment:%Y-%m-%d at %H:%M}"
            elif a.interval and b.interval:
                longer, shorter = max(a.interval, b.interval), min(a.interval, b.interval)
                if longer % shorter:
                    continue
                when = f"every {human(longer)}"
            else:
                continue
            warnings.append(
                f"profiles.{a.profile}.{a.section} ({_timing(a)}) and "
                f"profiles.{b.profile}.{b.section} ({_timing(b)}) fall due at the same time "
                f"({when}), so one waits for the other to finish (at most max_wait, "
                f"{human(DEFAULT_LOCK_WAIT)} when unset): give profiles.{b.profile}.{b.section} "
                "a time of its own."
            )
    return warnings
