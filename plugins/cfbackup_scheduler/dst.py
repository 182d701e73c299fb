"""Daylight saving time as Vixie cron (Debian's cron) handles it, for the daemon's cron triggers.

APScheduler 3's ``CronTrigger`` in a local timezone fires a ``30 2 * * *`` job twice the night
the clocks go back (02:30 summer time, then 02:30 winter time), and on the night they go
forward it fires the 02:30 that does not exist at 03:30. Vixie cron (``man 8 cron``, "Special
considerations ... daylight savings time") treats jobs in two ways:

- a job at a **fixed time** (neither the minute nor the hour field starts with ``*``) runs
  **once** the night the clocks go back, at the first of the two 02:30s, and a time skipped
  the night they go forward runs **once, at the first minute after the jump** (03:00);
- a job with ``*`` in the minute or hour field (``*/15 * * * *``, ``@hourly``) runs by the new
  clock: the repeated hour's times run again, the skipped hour's times are skipped.

:class:`VixieDstTrigger` wraps the plain triggers (jitter-free) and applies those two rules;
jitter is added after them. It only uses conversions from UTC, so it works with any tzinfo.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger

_NEAR = range(-3, 4)  # hours around a time to look for a DST transition (Vixie cron: < 3 h)


def _wall(moment: datetime, tz) -> datetime:
    """The local wall-clock time of ``moment`` in ``tz``, naive."""
    return moment.astimezone(tz).replace(tzinfo=None)


def _skipped(moment: datetime) -> bool:
    """``moment``'s wall-clock time does not exist (the clocks jumped over it)."""
    return _wall(moment.astimezone(UTC), moment.tzinfo) != moment.replace(tzinfo=None)


def _repeated(moment: datetime) -> bool:
    """``moment``'s wall-clock time happened earlier already (the clocks went back)."""
    tz, wall, instant = moment.tzinfo, moment.replace(tzinfo=None), moment.astimezone(UTC)
    offsets = {(instant + timedelta(hours=h)).astimezone(tz).utcoffset() for h in _NEAR}
    for offset in offsets:
        earlier = (wall - offset).replace(tzinfo=UTC)
        if earlier < instant and _wall(earlier, tz) == wall:
            return True
    return False


def _after_jump(moment: datetime) -> datetime:
    """The first whole minute of the wall clock after the jump ``moment``'s time fell into."""
    tz, wall = moment.tzinfo, moment.replace(tzinfo=None)
    instant = moment.astimezone(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)
    while _wall(instant, tz) <= wall:
        instant += timedelta(minutes=1)
    return instant.astimezone(tz)


class VixieDstTrigger(BaseTrigger):
    """``trigger`` (no jitter of its own) with Vixie cron's DST rules; ``fixed``: the cron
    expression names fixed times (neither minute nor hour starts with ``*``)."""

    __slots__ = ("trigger", "fixed", "jitter")

    def __init__(self, trigger, *, fixed: bool, jitter: int | None = None):
        self.trigger = trigger
        self.fixed = fixed
        self.jitter = jitter

    def get_next_fire_time(self, previous_fire_time, now):
        previous, moment = previous_fire_time, now
        for _ in range(100):  # each pass passes one skipped time: a few at most
            fire = self.trigger.get_next_fire_time(previous, moment)
            if fire is None:
                return None
            if _skipped(fire):
                if self.fixed:
                    fire = _after_jump(fire)
                    if previous is None or fire > previous:  # once for all the skipped times
                        return self._apply_jitter(fire, self.jitter, now)
            elif not (self.fixed and _repeated(fire)):
                return self._apply_jitter(fire, self.jitter, now)
            previous = moment = fire  # the trigger's own datetime: the right one of two 02:30s
        return None

    def __str__(self):
        return f"{self.trigger} (DST as Vixie cron)"

    def __repr__(self):
        return f"<{self.__class__.__name__} ({self.trigger!r}, fixed={self.fixed})>"
