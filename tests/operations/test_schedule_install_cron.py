"""The crontab lines of ``cfbackup schedule install --cron``: their fields and command as cron's
/bin/sh runs them, and cron's 999-byte command limit."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

CFBACKUP = Path(sys.executable).parent / "cfbackup"


def test_cron_lines(setup):
    setup.add_profile("nightly", schedule={"cron": "30 2 * * 1-5", "jitter": "10m"})
    setup.add_profile("often", schedule={"interval": "15m"})
    setup.write()
    out = setup.cli("schedule", "install", "--cron", check=0).stdout
    lines = [line for line in out.splitlines() if line and not line.startswith("#")]
    assert len(lines) == 2
    fields = lines[0].split(" ", 5)
    assert fields[:5] == ["30", "2", "*", "*", "1-5"]
    assert fields[5].startswith("sleep $(shuf -i 0-600 -n 1) && ")
    command = shlex.split(fields[5].split(" && ", 1)[1])
    assert command == [
        # one run of the line at a time; its messages name max_wait in this table
        "CFBACKUP_SCHEDULED=cron:profiles.nightly.schedule",
        "CFBACKUP_LOCK_WAIT=6h",  # another run of the profile holds its lock: wait for it
        # what its messages say to run to apply a changed max_wait
        # (only the install's options: the message adds this line's cfbackup, -c and profile)
        "CFBACKUP_SCHEDULE_APPLY=--cron",
        *[str(CFBACKUP), "-c", str(setup.path), "--quiet", "backup", "nightly"],
    ]
    assert lines[1].startswith(
        "*/15 * * * * CFBACKUP_SCHEDULED=cron:profiles.often.schedule CFBACKUP_LOCK_WAIT=6h "
        "CFBACKUP_SCHEDULE_APPLY=--cron " + str(CFBACKUP)
    )
    # the line really runs under /bin/sh, as cron would run it (here without the schedule)
    sh = subprocess.run(["/bin/sh", "-c", lines[1].split(" ", 5)[5]], capture_output=True)
    assert sh.returncode == 0, sh.stderr
    assert setup.history("often")[0]["result"] == "success"

    with_user = setup.cli("schedule", "install", "--cron", "--cron-user", "root", "often", check=0)
    assert "*/15 * * * * root " in with_user.stdout


def _long_verify(profile="fileserver-nightly-offsite"):
    from cfbackup_scheduler.spec import Schedule, parse_cron

    return Schedule(
        profile,
        parse_cron("30 2 * * 1-5"),
        None,
        900,
        3600,
        max_wait=21600,
        action="verify",
        arguments=("--read-data=next/7",),
    )


def test_a_cron_line_with_long_paths_stays_well_within_cron_s_limit():
    """CFBACKUP_SCHEDULE_APPLY repeated cfbackup's path, the config file and the profile in
    each line (677 bytes of command here): Debian's cron (Vixie cron) keeps the first 999 bytes
    of a command and silently drops the rest. The variable now carries only the install's
    options, which the run's message completes; this line stays under 60% of the limit."""
    from pathlib import Path

    from cfbackup_scheduler.install import CRON_COMMAND_MAX, cron_line

    line = cron_line(
        _long_verify(),
        ["/opt/backup-tools/cfbackup-0.1.0/.venv/bin/cfbackup"],
        Path("/etc/cfbackup/production/fileserver-nightly-offsite.toml"),
        user="backupadmin",
        environment_file="/etc/cfbackup/production/fileserver-nightly-offsite.secrets.env",
    )
    command = line.split(" ", 6)[6]  # after the five time fields and the user
    assert CRON_COMMAND_MAX == 999
    assert len(command.encode()) <= 0.6 * CRON_COMMAND_MAX, (len(command), command)
    # the environment file's path is written once: the line sources it as $1, and the
    # install's options name it as $1 (the two copies cost cron 2 x 63 bytes here)
    assert command.count("/etc/cfbackup/production/fileserver-nightly-offsite.secrets.env") == 1
    assert command.startswith(
        'set -a -- /etc/cfbackup/production/fileserver-nightly-offsite.secrets.env && . "$1" && '
    ), command
    assert (
        'CFBACKUP_SCHEDULE_APPLY="--cron --cron-user backupadmin --environment-file $1" '
    ) in command
    # what cron's /bin/sh makes of it: the install's options with the path
    apply = re.search(r'CFBACKUP_SCHEDULE_APPLY="[^"]*"', command)[0]
    sh = subprocess.run(
        ["/bin/sh", "-c", command.split(" && ")[0].replace("set -a", "set")
         + f" && {apply} /bin/sh -c 'printf %s \"$CFBACKUP_SCHEDULE_APPLY\"'"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert sh.stdout == (
        "--cron --cron-user backupadmin --environment-file "
        "/etc/cfbackup/production/fileserver-nightly-offsite.secrets.env"
    ), sh


def test_an_environment_file_whose_path_needs_quoting_is_named_in_full():
    """A path the shell must quote cannot be named as $1 inside the install's options (they
    are split again by the run's message): it is written out, quoted, there."""
    import shlex
    from pathlib import Path

    from cfbackup_scheduler.install import cron_line

    line = cron_line(
        _long_verify(),
        ["/usr/bin/cfbackup"],
        Path("/etc/cfbackup/config.toml"),
        environment_file="/etc/cfbackup/my secrets.env",
    )
    command = line.split(" ", 5)[5]
    assert command.startswith("set -a -- '/etc/cfbackup/my secrets.env' && . \"$1\" && ")
    apply = re.search(r"CFBACKUP_SCHEDULE_APPLY=('[^']*'(?:\"'\"'[^']*')*)", command)
    assert apply, command
    assert shlex.split(shlex.split(apply[1])[0]) == [
        "--cron", "--environment-file", "/etc/cfbackup/my secrets.env"
    ]  # fmt: skip


def test_a_cron_line_cron_would_cut_is_refused():
    """A command longer than cron keeps was printed all the same: cron would have run its
    first 999 bytes."""
    from pathlib import Path

    from cfbackup_scheduler.install import cron_line

    deep = "/srv/" + "/".join(["a-rather-long-folder-name"] * 12)
    with pytest.raises(ValueError) as refused:
        cron_line(
            _long_verify(),
            [f"{deep}/cfbackup"],
            Path(f"{deep}/config.toml"),
            environment_file=f"{deep}/secrets.env",
        )
    assert re.fullmatch(
        r"the crontab line of \[profiles\.fileserver-nightly-offsite\.verify\] would run a "
        r"command of \d{4} bytes, and cron \(Debian's, Vixie cron\) cuts a command at 999: give "
        r"cfbackup, the config file and the environment file shorter paths \(a symlink such as "
        r"/etc/cfbackup/cfg\.toml\), or install with --systemd",
        str(refused.value),
    ), refused.value
