"""Built-in plugin ``scheduler``: backups, restore drills and volume checks on a schedule, from
cfbackup's own daemon, systemd timers or cron.

Each profile may have a ``[profiles.NAME.schedule]`` table (a cron expression or an interval,
jitter, enabled) for its backups, and the same keys in ``[profiles.NAME.drill]`` for
``cfbackup drill`` and in ``[profiles.NAME.verify]`` for ``cfbackup verify --read-data``
(those two tables belong to the core schema; this plugin runs them). ``cfbackup schedule run``
is an APScheduler daemon (``daemon.py``; its runs' waits for their turn in ``waiting.py``, its
log lines in ``journal.py``); ``cfbackup schedule install --systemd|--cron``
writes timer units or prints crontab lines (``install.py``); ``cfbackup schedule list`` shows
each schedule and its next run. Parsing and conversions are pure functions in ``spec.py``.
Documented in docs/plugins/scheduler.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cfbackup.config.schema import SCHEDULE
from cfbackup.errors import ConfigError
from cfbackup.hookspecs import hookimpl

SECTION = "schedule"

OPTIONS = SCHEDULE  # the same keys make the [drill] and [verify] schedules (core schema)


@hookimpl
def cfbackup_config_schema(register):
    register(SECTION, OPTIONS)


@hookimpl
def cfbackup_check(run):
    from cfbackup_scheduler.spec import SECTIONS, schedule_for

    rows = []
    for section, action in SECTIONS.items():
        what = "schedule" if action == "backup" else f"{section.replace('_', ' ')} schedule"
        try:
            schedule = schedule_for(run.profile, section)
        except ConfigError as error:
            rows.append((what, False, error.message))
            continue
        if schedule is not None:
            rows.append((what, True, schedule.describe()))
    return rows or None


@hookimpl
def cfbackup_status(run):
    """A schedule of the profile that missed its last run (its daemon or timer stopped)."""
    import sqlite3

    from cfbackup.errors import CfbackupError
    from cfbackup_scheduler.overdue import overdue

    try:
        return overdue(run.profile, run.config.state_dir)
    except (CfbackupError, OSError, sqlite3.Error):  # an invalid schedule: check says it
        return None  # status must not fail for a warning's sake


@hookimpl
def cfbackup_register_commands(subparsers, context):
    p = subparsers.add_parser(
        "schedule", help="run or install the profiles' schedules (backup, drill, verify)"
    )
    sub = p.add_subparsers(dest="schedule_command", metavar="SUBCOMMAND", required=True)

    r = sub.add_parser("run", help="run what is due from the config's schedules (a daemon)")
    r.add_argument(
        "--max-parallel",
        type=int,
        default=1,
        metavar="N",
        help="at most N scheduled runs at the same time (default 1)",
    )
    r.set_defaults(handler=run_daemon)

    i = sub.add_parser("install", help="write systemd timers or print crontab lines")
    how = i.add_mutually_exclusive_group(required=True)
    how.add_argument("--systemd", action="store_true", help="a .service and .timer per profile")
    how.add_argument("--cron", action="store_true", help="print crontab lines")
    i.add_argument("profiles", nargs="*", metavar="PROFILE", help="only these profiles")
    i.add_argument("--print", action="store_true", help="print the units instead of writing")
    i.add_argument("--unit-dir", metavar="DIR", default=None, help="default /etc/systemd/system")
    i.add_argument(
        "--environment-file",
        metavar="FILE",
        help="an absolute path to a mode 0600 file of NAME=value lines, for secrets given as "
        "*_env (EnvironmentFile= of the services, read by the crontab line)",
    )
    i.add_argument(
        "--cron-user", metavar="USER", help="add the user column (/etc/crontab, /etc/cron.d)"
    )
    i.set_defaults(handler=install)

    s = sub.add_parser("list", help="each profile's schedule and its next run")
    s.set_defaults(handler=list_schedules)


def _schedules(config, names=None):
    """Every schedule of the profiles (backups, drills, verify); ConfigError when two would
    get the same unit name (a profile ``web-drill`` and the drill of ``web``)."""
    from cfbackup_scheduler.install import unit_name
    from cfbackup_scheduler.spec import schedules_for

    found = [s for p in config.select(names or None) for s in schedules_for(p)]
    seen: dict[str, str] = {}
    for schedule in found:
        name = unit_name(schedule.profile, schedule.label)
        if name in seen:
            raise ConfigError(
                f"the schedules {seen[name]} and {schedule.key} would both be {name}: rename "
                "one of the profiles."
            )
        seen[name] = schedule.key
    return found


def _warn_shared_times(schedules) -> None:
    """Two schedules of one profile due at the same time: said before anything else."""
    from cfbackup.cli import output
    from cfbackup_scheduler.spec import shared_times

    for warning in shared_times(schedules):
        output.warn(warning)


def _config_path(context) -> Path:
    path = context.config.path
    if path is None:
        raise ConfigError("the schedule needs a config file: pass -c FILE.")
    return Path(path).absolute()


def run_daemon(args, context) -> int:
    import logging

    from cfbackup.config import load_config
    from cfbackup_scheduler.daemon import Daemon, cfbackup_command
    from cfbackup_scheduler.journal import daemon_logging

    if args.max_parallel < 1:
        raise ConfigError("--max-parallel must be at least 1.")
    path = _config_path(context)
    sections = context.plugin_sections()

    def load():
        return _schedules(load_config(path, sections))

    _require_environment(context.config, load())
    level = logging.DEBUG if args.debug else logging.INFO
    with daemon_logging(level):
        return Daemon(
            load,
            cfbackup_command(),
            path,
            max_parallel=args.max_parallel,
            state_dir=context.config.state_dir,
        ).run()


def _require_environment(config, schedules) -> None:
    """The daemon's runs read ``*_env`` secrets from its own environment: one that is not set
    there is refused when the daemon starts, not found by the first run at night."""
    import os

    from cfbackup_scheduler.install import environment_secrets

    missing = [
        (where, variable)
        for name in dict.fromkeys(s.profile for s in schedules)
        for where, variable in environment_secrets(config.profile(name).data, f"profiles.{name}")
        if not os.environ.get(variable)
    ]
    if missing:
        where, variable = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ConfigError(
            f"{where} reads ${variable}, which is not set in the daemon's environment{more}, "
            "so every scheduled run of that profile would fail: set it where the daemon "
            "starts (a systemd unit's EnvironmentFile=, a file only its owner can read)."
        )


def install(args, context) -> int:
    from cfbackup_scheduler.daemon import cfbackup_command
    from cfbackup_scheduler.install import (
        DEFAULT_UNIT_DIR,
        cron_line,
        systemctl,
        systemd_units,
        unit_name,
        unit_user,
        write_atomically,
    )

    path = _config_path(context)
    schedules = _schedules(context.config, args.profiles)
    if not schedules:
        raise ConfigError(
            f"{path}: no profile has a [schedule] with cron or interval: nothing to install."
        )
    environment_file = _environment_file(args, path, context.config, schedules)
    _warn_shared_times(schedules)
    command = cfbackup_command()
    if args.cron:
        try:
            lines = [
                cron_line(s, command, path, user=args.cron_user, environment_file=environment_file)
                for s in schedules
            ]
        except ValueError as error:
            raise ConfigError(str(error) + ".") from None
        print("# cfbackup schedules (cfbackup schedule install --cron)")
        for schedule, line in zip(schedules, lines, strict=True):
            print(f"# profile {schedule.profile}: {schedule.describe()}")
            print(line)
        return 0
    unit_dir = Path(args.unit_dir or DEFAULT_UNIT_DIR)
    user = unit_user(path, unit_dir)
    if user:
        print(
            f"the services run as {user} (User={user}), the owner of {path}, not as root",
            file=sys.stderr,
        )
    units = {}
    for schedule in schedules:
        units.update(
            systemd_units(
                schedule,
                command,
                path,
                environment_file=environment_file,
                user=user,
                unit_dir=unit_dir,
            )
        )
    if args.print:
        for name, text in units.items():
            print(f"# {name}\n{text}")
        return 0
    if not unit_dir.is_dir():
        raise ConfigError(f"{unit_dir}: no such directory: create it or pass --unit-dir.")
    for name, text in units.items():
        changed = write_atomically(unit_dir / name, text)
        print(f"{'wrote' if changed else 'unchanged'} {unit_dir / name}")
    timers = " ".join(f"{unit_name(s.profile, s.label)}.timer" for s in schedules)
    run = " ".join(systemctl(unit_dir))
    print(f"now run: {run} daemon-reload && {run} enable --now {timers}", file=sys.stderr)
    return 0


def _environment_file(args, path: Path, config, schedules) -> str | None:
    """``--environment-file``, checked (absolute, private, setting the variables the scheduled
    profiles read); without it, a profile reading a secret from the environment is refused: a
    timer or a cron line does not get the shell's environment, and the first run would fail."""
    import shlex

    from cfbackup.errors import CfbackupError, ExitCode
    from cfbackup_scheduler.install import check_environment_file, environment_secrets

    needed = []
    for name in dict.fromkeys(s.profile for s in schedules):
        needed += environment_secrets(config.profile(name).data, f"profiles.{name}")
    if args.environment_file:
        return check_environment_file(args.environment_file, needed, systemd=bool(args.systemd))
    if not needed:
        return None
    how = "--systemd" if args.systemd else "--cron"
    words = ["cfbackup", "-c", str(path), "schedule", "install", how]
    words += ["--unit-dir", args.unit_dir] if args.unit_dir else []
    words += ["--print"] if args.print else []
    words += ["--cron-user", args.cron_user] if args.cron_user else []
    command = shlex.join([*words, *args.profiles]) + " --environment-file FILE"
    keys = ", ".join(f"{where} ({var})" for where, var in needed)
    variables = " ".join(dict.fromkeys(f"{var}=..." for _, var in needed))
    raise CfbackupError(
        f"{keys} {'reads a secret' if len(needed) == 1 else 'read secrets'} from the "
        "environment, which "
        f"{'a systemd timer' if args.systemd else 'cron'} does not get from your shell: put "
        f"{variables} in a file only its owner can read (chmod 600 FILE) and run {command}.",
        exit_code=ExitCode.USAGE,
    )


def list_schedules(args, context) -> int:
    from datetime import UTC, datetime

    from cfbackup_scheduler.spec import systemd_calendars

    schedules = _schedules(context.config)
    if not schedules:
        print("no profile has a schedule")
    _warn_shared_times(schedules)
    # the trigger in APScheduler's local zone with its DST rules, as the daemon's (not today's
    # UTC offset, which put a run after a DST change an hour off)
    now = datetime.now(UTC)
    for schedule in schedules:
        next_run = schedule.trigger(jitter=False).get_next_fire_time(None, now)
        calendar = (
            "; OnCalendar=" + " | ".join(systemd_calendars(schedule.cron)) if schedule.cron else ""
        )
        when = f"{next_run:%Y-%m-%d %H:%M:%S %Z}" if next_run else "never"
        print(f"{schedule.profile}: {schedule.describe()}{calendar}; next run {when}")
    return 0
