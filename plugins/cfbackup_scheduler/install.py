"""Render schedules as systemd ``.service`` + ``.timer`` pairs or crontab lines, and write them.

The generated units run ``cfbackup -c CONFIG --quiet backup PROFILE`` (or ``drill PROFILE``,
``verify PROFILE --read-data=...``): the same path as a command typed by hand, with its lock,
hooks, history and notifications. ``KillMode=mixed`` sends the
stop signal to cfbackup alone, which stops duplicity with SIGINT (it cleans up and the next run
resumes) before systemd's final SIGKILL.

Two schedules of one profile falling due together (a backup and a drill at the same time, or
both started at boot by ``Persistent=true`` after downtime) must not knock each other out on
the profile lock: each scheduled command runs with ``CFBACKUP_LOCK_WAIT`` set to its
``max_wait`` (default 6h), so the second waits for the first instead of failing with exit 4.
It also runs with ``CFBACKUP_SCHEDULED=HOW:TABLE`` (``cron:profiles.web.schedule``): cron has no
one-instance rule of its own, so a second firing of a line while the first still runs or
waits exits at once (:mod:`cfbackup.lock`) instead of queueing; the messages name max_wait.
And with ``CFBACKUP_SCHEDULE_APPLY``: the install that wrote it, with its options, which those
messages give as the way to apply a raised max_wait (it runs as printed).
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cfbackup.errors import CfbackupError, ExitCode
from cfbackup.lock import APPLY_VARIABLE, SCHEDULED_VARIABLE, WAIT_VARIABLE
from cfbackup_scheduler.spec import Schedule, human, interval_as_cron, systemd_calendars

DEFAULT_UNIT_DIR = "/etc/systemd/system"


def unit_name(profile: str, label: str = "backup") -> str:
    """``cfbackup-web1`` for backups (the name it always had), ``cfbackup-web1-drill`` (or
    ``-verify``, ``-drill-from-nothing``) else."""
    return f"cfbackup-{profile}" if label == "backup" else f"cfbackup-{profile}-{label}"


def run_argv(command: Sequence[str], config_path: Path, schedule: Schedule) -> list[str]:
    return [
        *command,
        "-c",
        str(config_path),
        "--quiet",
        schedule.action,
        schedule.profile,
        *schedule.arguments,
    ]


def lock_wait(schedule: Schedule) -> str:
    """``CFBACKUP_LOCK_WAIT=6h``: how long the scheduled run waits for its profile's lock."""
    return f"{WAIT_VARIABLE}={human(schedule.lock_wait)}"


def scheduled_marker(schedule: Schedule, how: str) -> str:
    """``cron:profiles.web.schedule``: the value of ``$CFBACKUP_SCHEDULED`` (one run of the
    schedule at a time; its messages name max_wait in that table); how: systemd, cron, daemon."""
    return f"{how}:{schedule.table}"


def install_argv(
    command: Sequence[str],
    config_path: Path,
    schedule: Schedule,
    how: str,
    *,
    unit_dir: Path | None = None,
    environment_file: str | None = None,
    cron_user: str | None = None,
) -> list[str]:
    """The ``schedule install`` that wrote (systemd) or printed (cron) this schedule's units or
    line, with the options it was given: what applies a changed max_wait to it."""
    return [
        *command,
        "-c",
        str(config_path),
        "schedule",
        "install",
        f"--{how}",
        *(["--unit-dir", str(unit_dir.absolute())] if unit_dir else []),
        *(["--cron-user", cron_user] if cron_user else []),
        *(["--environment-file", environment_file] if environment_file else []),
        schedule.profile,
    ]


def systemctl(unit_dir: Path) -> list[str]:
    """``systemctl``, with ``--user`` for units in a user's own directory."""
    return ["systemctl", "--user"] if _user_unit_dir(unit_dir) else ["systemctl"]


def _user_unit_dir(unit_dir: Path) -> bool:
    parts = unit_dir.absolute().parts
    return ("systemd", "user") in zip(parts, parts[1:], strict=False)


def _specifiers(line: str) -> str:
    """A unit file line with ``%`` written as systemd reads it literally (``--read-data=5%``)."""
    return line.replace("%", "%%")


def _systemd_assignment(name: str, value: str) -> str:
    """``"NAME=value"`` for ``Environment=``: quoted (spaces), ``%`` doubled (a specifier);
    ``$`` is not expanded there."""
    assignment = f"{name}={value}".replace("%", "%%")
    return '"' + assignment.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _systemd_word(word: str) -> str:
    """Quote one ExecStart word: ``%`` and ``$`` are specifiers/variables in unit files."""
    word = word.replace("%", "%%").replace("$", "$$")
    if word and not any(c in word for c in " \t\"'\\;"):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_units(
    schedule: Schedule,
    command: Sequence[str],
    config_path: Path,
    *,
    environment_file: str | None = None,
    user: str | None = None,
    unit_dir: Path = Path(DEFAULT_UNIT_DIR),
) -> dict[str, str]:
    """``{file name: text}`` for the profile's service and timer (``user``: ``User=``;
    ``unit_dir``: where they go, named in the command that applies a changed max_wait)."""
    name = unit_name(schedule.profile, schedule.label)
    exec_start = " ".join(_systemd_word(w) for w in run_argv(command, config_path, schedule))
    install = install_argv(
        command,
        config_path,
        schedule,
        "systemd",
        unit_dir=unit_dir,
        environment_file=environment_file,
    )
    apply = f"{shlex.join(install)} && {shlex.join([*systemctl(unit_dir), 'daemon-reload'])}"
    service = [
        "[Unit]",
        _specifiers(f"Description=cfbackup {schedule.command} of profile {schedule.profile}"),
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"ExecStart={exec_start}",
        *([_specifiers(f"User={user}")] if user else []),
        *([f"EnvironmentFile={environment_file}"] if environment_file else []),
        "# another run of the profile (its backup, drill, verify) holds the lock: wait for it",
        f"Environment={lock_wait(schedule)}",
        f"Environment={SCHEDULED_VARIABLE}={scheduled_marker(schedule, 'systemd')}",
        "# what its messages say to run to apply a changed max_wait",
        f"Environment={_systemd_assignment(APPLY_VARIABLE, apply)}",
        "# SIGTERM reaches cfbackup only: it stops duplicity cleanly (a backup resumes next time)",
        "KillMode=mixed",
        "TimeoutStopSec=120",
        "Nice=10",
        "IOSchedulingClass=best-effort",
        "IOSchedulingPriority=7",
        "",
    ]
    if schedule.cron:
        when = [f"OnCalendar={calendar}" for calendar in systemd_calendars(schedule.cron)]
        when.append("# a run missed while the machine was off starts at the next boot")
        when.append("Persistent=true")
    else:
        when = [f"OnActiveSec={schedule.interval}s", f"OnUnitActiveSec={schedule.interval}s"]
    timer = [
        "[Unit]",
        _specifiers(
            f"Description=cfbackup {schedule.action} schedule of profile {schedule.profile} "
            f"({schedule.describe()})"
        ),
        "",
        "[Timer]",
        *when,
        *([f"RandomizedDelaySec={schedule.jitter}s"] if schedule.jitter else []),
        f"Unit={name}.service",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ]
    return {f"{name}.service": "\n".join(service), f"{name}.timer": "\n".join(timer)}


# the longest command a crontab line may hold: Vixie cron (Debian's cron) reads it into a
# buffer of MAX_COMMAND = 1000 bytes (entry.c, load_entry: get_string(cmd, MAX_COMMAND, ...)),
# keeping the first 999 and silently dropping the rest
CRON_COMMAND_MAX = 999


def cron_line(
    schedule: Schedule,
    command: Sequence[str],
    config_path: Path,
    *,
    user: str | None = None,
    environment_file: str | None = None,
) -> str:
    """One crontab line (``user`` adds the user column of /etc/crontab and /etc/cron.d;
    ``environment_file``: NAME=value lines read by cron's /bin/sh before the command)."""
    when = " ".join(
        schedule.cron.expression.split()
        if schedule.cron
        else [interval_as_cron(schedule.interval or 0)]
    )
    # another run of the profile holds its lock: wait for it (VAR=value: for this command);
    # the previous run of this line still runs or waits: exit at once (CFBACKUP_SCHEDULED)
    marker = shlex.quote(f"{SCHEDULED_VARIABLE}={scheduled_marker(schedule, 'cron')}")
    install = install_argv(
        command,
        config_path,
        schedule,
        "cron",
        cron_user=user,
        environment_file=environment_file,
    )
    if len(command) == 1:  # only the install's options: the run's message rebuilds the rest
        install = install[install.index("--cron") : -1]  # (its cfbackup, -c FILE, profile)
    apply = f"{APPLY_VARIABLE}={shlex.quote(shlex.join(install))}"  # the value quoted only
    if environment_file and shlex.quote(environment_file) == environment_file:
        # the file is sourced as $1 (below): named so in the options too, not written twice
        # (a path the shell must quote is written out: the message splits the value again)
        words = shlex.join(install[: install.index("--environment-file") + 1])
        rest = shlex.join(install[install.index("--environment-file") + 2 :])
        apply = f'{APPLY_VARIABLE}="{_double_quoted(words)} $1{f" {rest}" if rest else ""}"'
    run = (
        f"{marker} {lock_wait(schedule)} {apply} "
        f"{shlex.join(run_argv(command, config_path, schedule))}"
    )
    if schedule.jitter:  # cron has no jitter of its own; /bin/sh has no $RANDOM
        run = f"sleep $(shuf -i 0-{schedule.jitter} -n 1) && {run}"
    if environment_file:  # set -a: every NAME=value of the file is exported to cfbackup;
        # -- FILE: the file is $1 (sourced, and named in the install's options). Left on: no
        # plain assignment follows (VAR=value before a command is exported to it anyway).
        run = f'set -a -- {shlex.quote(environment_file)} && . "$1" && {run}'
    run = run.replace("%", "\\%")  # % ends the command in a crontab line
    if len(run.encode()) > CRON_COMMAND_MAX:
        raise ValueError(
            f"the crontab line of [{schedule.table}] would run a command of "
            f"{len(run.encode())} bytes, and cron (Debian's, Vixie cron) cuts a command at "
            f"{CRON_COMMAND_MAX}: give cfbackup, the config file and the environment file "
            f"shorter paths (a symlink such as /etc/cfbackup/cfg.toml), or install with "
            f"--systemd"
        )
    return " ".join([when, *([user] if user else []), run])


def _double_quoted(text: str) -> str:
    """``text`` for the inside of a shell's double quotes: ``\\ " $ ` `` escaped."""
    return re.sub(r'([\\"$`])', r"\\\1", text)


def write_atomically(path: Path, text: str, mode: int = 0o644) -> bool:
    """Replace ``path`` with ``text``; False when it already held exactly that."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return True


# --- what the scheduled runs need from the machine -----------------------------------------


def environment_secrets(data: Any, where: str) -> list[tuple[str, str]]:
    """``(key, variable)`` for each secret a profile's settings read from the environment
    (``password_env``, ``passphrase_env``, ... anywhere in its tables)."""
    found: list[tuple[str, str]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key.endswith("_env") and isinstance(value, str) and value:
                found.append((f"{where}.{key}", value))
            else:
                found.extend(environment_secrets(value, f"{where}.{key}"))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            found.extend(environment_secrets(item, f"{where}[{index}]"))
    return found


_ASSIGNMENT = re.compile(r"\s*(export\s+)?([A-Za-z_][A-Za-z0-9_]*)=")


def check_environment_file(
    value: str, needed: list[tuple[str, str]], *, systemd: bool = False
) -> str:
    """``--environment-file``: an absolute path to a regular file only its owner can read,
    setting every variable in ``needed``; a USAGE error (exit 2) naming the fix otherwise.
    For systemd units, ``export NAME=value`` does not count: the shell reads it (the cron line
    sources the file), but systemd's ``EnvironmentFile=`` ignores it as an invalid assignment."""

    def refuse(message: str) -> CfbackupError:
        return CfbackupError(f"--environment-file {message}", exit_code=ExitCode.USAGE)

    path = Path(value)
    if not path.is_absolute():
        raise refuse(
            f"{value}: give an absolute path (timers and cron do not start in this directory): "
            f"--environment-file {path.absolute()}."
        )
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8") if stat.S_ISREG(st.st_mode) else None
    except FileNotFoundError:
        raise refuse(
            f"{path}: no such file: create it with NAME=value lines and run chmod 600 {path}."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "it is not UTF-8 text"
        raise refuse(f"{path}: cannot read it ({reason.lower()}).") from None
    if text is None:
        raise refuse(f"{path}: not a regular file: give a file of NAME=value lines.")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise refuse(
            f"{path}: holds secrets but is readable by other users (mode {mode:04o}): run "
            f"chmod 600 {path}."
        )
    found = [m for m in map(_ASSIGNMENT.match, text.splitlines()) if m]
    names = {m.group(2) for m in found if not (systemd and m.group(1))}
    exported = {m.group(2) for m in found if m.group(1)} - names
    unset = {var: where for where, var in needed if var not in names}
    if unset and exported & set(unset):
        shown = ", ".join(var for var in unset if var in exported)
        raise refuse(
            f"{path} sets {shown} with export, which systemd's EnvironmentFile= ignores (it "
            f"takes NAME=value lines only): remove the word export from those lines."
        )
    if unset:
        raise refuse(
            f"{path} does not set {', '.join(unset)} (read by {', '.join(unset.values())}): "
            f"add {' and '.join(f'{var}=...' for var in unset)} to it, one per line."
        )
    return str(path)


def unit_user(config_path: Path, unit_dir: Path) -> str | None:
    """``User=`` for system units of a config owned by someone else than root (a config
    installed with sudo from a user's home): its owner, so that the backups, their hooks and
    their state run as that user, not as root. None for root's configs and for units in a
    user's own systemd directory (``~/.config/systemd/user``: they run as that user anyway)."""
    import pwd

    if _user_unit_dir(unit_dir):
        return None
    uid = config_path.stat().st_uid
    if uid == 0:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
