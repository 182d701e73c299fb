"""``cfbackup schedule install`` and ``schedule list`` through the installed CLI."""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

CFBACKUP = Path(sys.executable).parent / "cfbackup"


def _schedule(setup, name, **schedule):
    setup.profile(name)["schedule"] = schedule
    setup.write()


def _unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(text)
    return parser


def _systemd_verify(units: Path) -> None:
    verify = subprocess.run(
        ["systemd-analyze", "verify", *(str(p) for p in sorted(units.iterdir()))],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0 and verify.stderr == "" and verify.stdout == "", verify


def test_systemd_units_verify_and_say_what_they_should(setup, tmp_path):
    setup.add_profile("nightly", schedule={"cron": "30 2 * * *", "jitter": "15m"})
    setup.add_profile("often", schedule={"interval": "6h"})
    setup.add_profile("both", schedule={"cron": "0 4 1 * sun"})
    setup.add_profile("off", schedule={"cron": "@daily", "enabled": False})
    setup.write()
    units = tmp_path / "units"
    units.mkdir()
    result = setup.cli("schedule", "install", "--systemd", "--unit-dir", str(units), check=0)
    assert "systemctl daemon-reload" in result.stderr
    names = sorted(p.name for p in units.iterdir())
    assert names == sorted(
        f"cfbackup-{p}.{kind}"
        for p in ("nightly", "often", "both")
        for kind in ("service", "timer")
    )
    _systemd_verify(units)

    service = _unit((units / "cfbackup-nightly.service").read_text())
    argv = shlex.split(service["Service"]["ExecStart"])
    assert argv == [str(CFBACKUP), "-c", str(setup.path), "--quiet", "backup", "nightly"]
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["KillMode"] == "mixed"

    timer = (units / "cfbackup-nightly.timer").read_text()
    assert "OnCalendar=*-*-* 02:30:00\n" in timer
    assert "RandomizedDelaySec=900s\n" in timer
    assert "Persistent=true\n" in timer
    assert "Unit=cfbackup-nightly.service\n" in timer
    both = (units / "cfbackup-both.timer").read_text()
    assert "OnCalendar=*-*-01 04:00:00\nOnCalendar=Sun *-*-* 04:00:00\n" in both
    often = (units / "cfbackup-often.timer").read_text()
    assert "OnUnitActiveSec=21600s" in often and "OnCalendar" not in often

    # a second install changes nothing; --print writes nothing
    again = setup.cli("schedule", "install", "--systemd", "--unit-dir", str(units), check=0)
    assert again.stdout.count("unchanged") == 6
    printed = setup.cli("schedule", "install", "--systemd", "--print", "nightly", check=0)
    assert "# cfbackup-nightly.timer" in printed.stdout and "often" not in printed.stdout


def test_unit_quoting_survives_odd_paths(tmp_path):
    from cfbackup_scheduler.install import systemd_units
    from cfbackup_scheduler.spec import Schedule, parse_cron

    schedule = Schedule("p", parse_cron("@daily"), None, 0, 3600)
    config = tmp_path / "my 100% config$.toml"
    units = systemd_units(schedule, [str(CFBACKUP)], config)
    for name, text in units.items():
        (tmp_path / name).write_text(text)
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "cfbackup-p.service")],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0 and verify.stderr == "", verify
    assert '"-c" ' not in units["cfbackup-p.service"]
    assert '"' + str(tmp_path) + '/my 100%% config$$.toml"' in units["cfbackup-p.service"]


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


def test_interval_cron_cannot_express_is_a_config_error(setup):
    _schedule(setup, "demo", interval="7m")
    result = setup.cli("schedule", "install", "--cron", check=3)
    assert "cannot be written as a crontab line" in result.stderr


def test_invalid_schedule_is_reported_with_its_key(setup):
    _schedule(setup, "demo", cron="61 * * * *")
    result = setup.cli("schedule", "install", "--cron", check=3)
    assert "profiles.demo.schedule.cron" in result.stderr and "outside 0-59" in result.stderr
    check = setup.cli("check", "demo")
    assert "[FAIL] schedule: profiles.demo.schedule.cron" in check.stdout


def test_no_schedule_is_an_error_and_list_shows_next_runs(setup):
    result = setup.cli("schedule", "install", "--systemd", "--print", check=3)
    assert "no profile has a [schedule]" in result.stderr
    _schedule(setup, "demo", cron="0 3 * * sun", jitter="5m")
    out = setup.cli("schedule", "list", check=0).stdout
    assert "demo: cron '0 3 * * sun', jitter up to 5m; OnCalendar=Sun *-*-* 03:00:00" in out
    assert " 03:00:00 " in out


def test_drill_and_verify_schedules_become_their_own_units_and_lines(setup, tmp_path):
    """[drill] and [verify] schedules next to a backup schedule: their own systemd units and
    crontab lines, running exactly the command a person would type; the drill's line really
    runs a drill (file:// target, no encryption) and reports into the history and metrics."""
    prom = tmp_path / "cfbackup.prom"
    demo = setup.profile("demo")
    demo["schedule"] = {"cron": "30 2 * * *"}
    demo["drill"] = {"cron": "0 5 * * sun", "sample": "100%", "max_duration": "20m"}
    demo["drill_from_nothing"] = {"cron": "0 6 1 * *"}
    demo["verify"] = {"cron": "15 4 * * *", "jitter": "10m", "read_data": "5%"}
    demo["notify"] = {"metrics_file": str(prom)}
    setup.write()
    units = tmp_path / "units"
    units.mkdir()
    setup.cli("schedule", "install", "--systemd", "--unit-dir", str(units), check=0)
    names = sorted(p.name for p in units.iterdir())
    assert names == sorted(
        f"cfbackup-demo{suffix}.{kind}"
        for suffix in ("", "-drill", "-drill-from-nothing", "-verify")
        for kind in ("service", "timer")
    )
    _systemd_verify(units)
    base = [str(CFBACKUP), "-c", str(setup.path), "--quiet"]
    drill = _unit((units / "cfbackup-demo-drill.service").read_text())["Service"]
    assert shlex.split(drill["ExecStart"]) == [*base, "drill", "demo"]
    kit = _unit((units / "cfbackup-demo-drill-from-nothing.service").read_text())["Service"]
    assert shlex.split(kit["ExecStart"]) == [*base, "drill", "demo", "--from-nothing"]
    checks = _unit((units / "cfbackup-demo-verify.service").read_text())["Service"]
    assert shlex.split(checks["ExecStart"].replace("%%", "%")) == [
        *base, "verify", "demo", "--read-data=5%"
    ]  # fmt: skip
    assert "OnCalendar=Sun *-*-* 05:00:00\n" in (units / "cfbackup-demo-drill.timer").read_text()
    timer = (units / "cfbackup-demo-verify.timer").read_text()
    assert "OnCalendar=*-*-* 04:15:00\n" in timer and "RandomizedDelaySec=600s\n" in timer

    listed = setup.cli("schedule", "list", check=0).stdout
    assert "demo: drill: cron '0 5 * * sun'" in listed
    assert "demo: verify --read-data=5%: cron '15 4 * * *', jitter up to 10m" in listed
    check = setup.cli("check", "demo").stdout
    assert "[ok] drill schedule: drill: cron '0 5 * * sun'" in check
    assert "[ok] drill from nothing schedule: drill --from-nothing: cron '0 6 1 * *'" in check

    out = setup.cli("schedule", "install", "--cron", check=0).stdout
    commands = {}
    for line in out.splitlines():
        if line and not line.startswith("#"):
            command = line.split(" ", 5)[5].split(" && ")[-1]
            words = shlex.split(command)[len(base) + 3 :]  # after the three VAR=value
            commands[words[0] + ("-from-nothing" if "--from-nothing" in words else "")] = command
    assert sorted(commands) == ["backup", "drill", "drill-from-nothing", "verify"]
    assert shlex.split(commands["verify"].replace("\\%", "%"))[-1] == "--read-data=5%"
    setup.cli("backup", "demo", check=0)
    sh = subprocess.run(["/bin/sh", "-c", commands["drill"]], capture_output=True)
    assert sh.returncode == 0, sh.stderr
    run = setup.history("demo")[0]
    assert (run["action"], run["result"]) == ("drill", "success")
    assert run["stats"]["files_checked"] == run["stats"]["files_sampled"] == 2
    assert isinstance(run["stats"]["seed"], int)
    text = prom.read_text()
    assert 'cfbackup_drill_files_checked{profile="demo"} 2\n' in text
    assert 'cfbackup_drill_mismatches{profile="demo"} 0\n' in text
    assert 'cfbackup_drill_last_success_timestamp{profile="demo"} ' in text
    read = setup.cli("verify", "demo", "--read-data", check=0)  # plain .difftar.gz volumes
    assert "1 of 1 volume(s) (all volumes" in read.stdout
    assert 'cfbackup_verify_volumes_checked{profile="demo"} 1\n' in prom.read_text()
    # next/t: each run reads the slice after the last one (what the verify timer runs daily)
    for _ in range(4):
        setup.cli("verify", "demo", "--read-data=next/3", check=0)
    slices = [r["stats"]["slice"] for r in setup.history("demo") if r["stats"].get("slice")]
    assert slices == ["1/3", "3/3", "2/3", "1/3"]

    # a profile whose backup unit would take the drill's name is refused
    setup.add_profile("demo-drill", schedule={"cron": "@daily"})
    setup.write()
    clash = setup.cli("schedule", "install", "--systemd", "--print", check=3)
    assert "would both be cfbackup-demo-drill" in clash.stderr


def test_the_documented_defaults_schedule_and_a_profile_interval(setup):
    """docs/plugins/scheduler.md: [defaults.schedule] cron for every profile, one profile with
    its own interval. The merged table held both, and every command refused the config."""
    setup.config["defaults"] = {"schedule": {"cron": "15 3 * * *"}}
    setup.add_profile("system", schedule={"cron": "30 2 * * *"})
    setup.add_profile("home", schedule={"interval": "6h"})
    setup.add_profile("plain")
    setup.write()
    result = setup.cli("schedule", "list", check=0)
    shown = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert shown["home"].startswith("every 6h; next run"), shown  # not the defaults' cron
    assert shown["plain"].startswith("cron '15 3 * * *'"), shown  # the defaults' cron
    assert shown["system"].startswith("cron '30 2 * * *'"), shown


def test_a_cron_that_never_fires_is_refused_by_name(setup):
    setup.add_profile("feb", schedule={"cron": "0 0 30 2 *"})
    setup.write()
    result = setup.cli("schedule", "list")
    assert result.returncode == 3, result  # CONFIG, not a crash (exit 1) on "next run"
    assert "profiles.feb.schedule.cron: '0 0 30 2 *' names a day that never comes" in (
        result.stderr
    ), result


def _env_secret_profile(setup):
    setup.profile("demo")["schedule"] = {"cron": "30 2 * * *"}
    setup.profile("demo")["encryption"] = {
        "mode": "symmetric",
        "passphrase_env": "CFB_TEST_PASSPHRASE",
    }
    setup.write()


def test_a_secret_from_the_environment_needs_an_environment_file(setup, tmp_path):
    """A timer or cron line does not get the user's shell environment: without
    --environment-file the first night's run failed on the missing variable. install refuses
    (exit 2), naming the variable and the command to run instead, and writes nothing."""
    _env_secret_profile(setup)
    units = tmp_path / "units"
    units.mkdir()
    for how, where in (("--systemd", "a systemd timer"), ("--cron", "cron")):
        args = (how, "--unit-dir", str(units)) if how == "--systemd" else (how,)
        result = setup.cli("schedule", "install", *args, env={"CFB_TEST_PASSPHRASE": "x"}, check=2)
        message = result.stderr
        assert "profiles.demo.encryption.passphrase_env" in message, message
        assert "CFB_TEST_PASSPHRASE" in message and where in message, message
        assert f"cfbackup -c {setup.path} schedule install {how}" in message, message
        assert "--environment-file FILE" in message, message
        assert result.stdout == "" and list(units.iterdir()) == []

    secrets = tmp_path / "secrets.env"
    secrets.write_text("# for cfbackup\nCFB_TEST_PASSPHRASE='a secret'\n")
    secrets.chmod(0o600)
    ok = setup.cli(
        "schedule", "install", "--systemd", "--unit-dir", str(units),
        "--environment-file", str(secrets), check=0,
    )  # fmt: skip
    assert "wrote" in ok.stdout
    service = _unit((units / "cfbackup-demo.service").read_text())
    assert service["Service"]["EnvironmentFile"] == str(secrets)
    _systemd_verify(units)
    out = setup.cli("schedule", "install", "--cron", "--environment-file", str(secrets), check=0)
    line = next(x for x in out.stdout.splitlines() if x and not x.startswith("#"))
    prefix, command = line.split(" ", 5)[5].rsplit(f"{CFBACKUP} ", 1)
    # what cron's /bin/sh does before the command: the variable is there
    sh = subprocess.run(
        ["/bin/sh", "-c", prefix + "printenv CFB_TEST_PASSPHRASE"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert sh.stdout == "a secret\n", sh


def test_the_environment_file_is_absolute_private_and_sets_the_variables(setup, tmp_path):
    _env_secret_profile(setup)
    secrets = tmp_path / "secrets.env"
    secrets.write_text("CFB_TEST_PASSPHRASE=x\n")
    secrets.chmod(0o640)

    def install(path):
        return setup.cli(
            "schedule", "install", "--systemd", "--print", "--environment-file", str(path)
        )

    relative = install("secrets.env")
    assert relative.returncode == 2, relative
    assert "--environment-file secrets.env: give an absolute path" in relative.stderr, relative
    readable = install(secrets)
    assert readable.returncode == 2, readable
    assert f"is readable by other users (mode 0640): run chmod 600 {secrets}" in readable.stderr
    missing = install(tmp_path / "nothing.env")
    assert missing.returncode == 2 and "no such file" in missing.stderr, missing
    secrets.chmod(0o600)
    secrets.write_text("OTHER=x\n")
    unset = install(secrets)
    assert unset.returncode == 2, unset
    assert "does not set CFB_TEST_PASSPHRASE" in unset.stderr, unset
    secrets.write_text("CFB_TEST_PASSPHRASE=x\n")
    assert install(secrets).returncode == 0
    # systemd's EnvironmentFile= takes NAME=value only: it ignores an export line (its
    # parser keeps "export NAME" as the key, an invalid name); the cron line's sh reads it
    secrets.write_text("export CFB_TEST_PASSPHRASE=x\n")
    exported = install(secrets)
    assert exported.returncode == 2, exported
    assert "sets CFB_TEST_PASSPHRASE with export, which systemd's EnvironmentFile= ignores" in (
        exported.stderr
    )
    cron = setup.cli("schedule", "install", "--cron", "--environment-file", str(secrets))
    assert cron.returncode == 0, cron


def test_system_units_for_a_users_config_run_as_that_user(setup, tmp_path):
    """sudo cfbackup -c ~alice/.config/cfbackup/config.toml schedule install --systemd wrote
    system units without User=: alice's backups (and her hooks) ran as root."""
    import os
    import pwd

    # a user that is not root (systemd-analyze calls User=nobody unsafe)
    owner = next(u for u in pwd.getpwall() if 0 < u.pw_uid < 65534)
    _schedule(setup, "demo", cron="30 2 * * *")
    units = tmp_path / "units"
    units.mkdir()
    setup.cli("schedule", "install", "--systemd", "--unit-dir", str(units), check=0)
    assert "User=" not in (units / "cfbackup-demo.service").read_text()  # root's config

    os.chown(setup.path, owner.pw_uid, owner.pw_gid)
    result = setup.cli("schedule", "install", "--systemd", "--unit-dir", str(units), check=0)
    assert f"the services run as {owner.pw_name}" in result.stderr, result
    service = _unit((units / "cfbackup-demo.service").read_text())
    assert service["Service"]["User"] == owner.pw_name
    _systemd_verify(units)
    user_units = tmp_path / ".config" / "systemd" / "user"  # a user's own units: no User=
    user_units.mkdir(parents=True)
    setup.cli("schedule", "install", "--systemd", "--unit-dir", str(user_units), check=0)
    assert "User=" not in (user_units / "cfbackup-demo.service").read_text()


def test_list_shows_next_runs_in_the_local_time_of_their_day(setup):
    """schedule list computed next runs with today's UTC offset: in winter, a July run showed
    03:00 CET, an hour off from the 03:00 CEST the daemon and the timer use."""
    setup.add_profile("jan", schedule={"cron": "0 3 1 1 *"})
    setup.add_profile("jul", schedule={"cron": "0 3 1 7 *"})
    setup.write()
    out = setup.cli("schedule", "list", env={"TZ": "Europe/Berlin"}, check=0).stdout
    shown = dict(line.split(": ", 1) for line in out.splitlines())
    assert re.search(r"next run \d{4}-01-01 03:00:00 CET$", shown["jan"]), shown
    assert re.search(r"next run \d{4}-07-01 03:00:00 CEST$", shown["jul"]), shown


def test_scheduled_runs_of_a_profile_wait_for_its_lock(setup, tmp_path):
    """A backup and a drill of one profile due together (or both fired at boot by
    Persistent=true after downtime): the second failed on the profile lock (exit 4) and that
    night's run was lost. The units and crontab lines now wait for the lock, up to max_wait
    (default 6h)."""
    setup.profile("demo")["schedule"] = {"cron": "30 2 * * *"}
    setup.profile("demo")["drill"] = {"cron": "30 2 * * *", "max_wait": "2h"}
    setup.write()
    printed = setup.cli("schedule", "install", "--systemd", "--print", check=0).stdout
    parts = re.split(r"^# (cfbackup-\S+)\n", printed, flags=re.M)[1:]
    units = {name: _unit(text) for name, text in zip(parts[::2], parts[1::2], strict=True)}
    services = dict(zip(parts[::2], parts[1::2], strict=True))
    assert "\nEnvironment=CFBACKUP_LOCK_WAIT=6h\n" in services["cfbackup-demo.service"]
    assert "\nEnvironment=CFBACKUP_LOCK_WAIT=2h\n" in services["cfbackup-demo-drill.service"]
    assert (
        "\nEnvironment=CFBACKUP_SCHEDULED=systemd:profiles.demo.drill\n"
        in services["cfbackup-demo-drill.service"]
    )
    assert units["cfbackup-demo-drill.service"]["Service"]["Type"] == "oneshot"

    # the crontab line, run by /bin/sh as cron would, while another run holds the lock for 4 s
    setup.cli("backup", "demo", check=0)
    out = setup.cli("schedule", "install", "--cron", check=0).stdout
    line = next(x for x in out.splitlines() if "CFBACKUP_LOCK_WAIT=2h " in x)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from cfbackup import lock\n"
            "with lock.profile_lock(Path(sys.argv[1]), 'demo', 'backup', wait=0):\n"
            "    print('held', flush=True); time.sleep(4)\n"
            "print(time.time(), flush=True)",
            setup.config["state_dir"],
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        sh = subprocess.run(
            ["/bin/sh", "-c", line.split(" ", 5)[5]], capture_output=True, text=True
        )
        released = float(holder.stdout.readline())
    finally:
        holder.wait(timeout=10)
    assert sh.returncode == 0, sh
    # it waited for the lock, and ran once the holder let go (its run counts from then)
    assert setup.history("demo")[0]["started"] >= released
    assert setup.history("demo")[0]["action"] == "drill"
    assert setup.history("demo")[0]["result"] == "success"


def test_a_second_firing_of_a_cron_line_does_not_queue_behind_the_first(setup):
    """cron has no one-instance rule: an hourly line fired during a hung run waited up to 6h
    at each firing, a queue of processes each with a running history row, which then ran one
    after the other. The second firing now exits at once, with one line saying why."""
    setup.profile("demo")["schedule"] = {"cron": "0 * * * *"}
    setup.write()
    out = setup.cli("schedule", "install", "--cron", check=0).stdout
    command = next(x for x in out.splitlines() if x and not x.startswith("#")).split(" ", 5)[5]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from cfbackup import lock\n"
            "with lock.profile_lock(Path(sys.argv[1]), 'demo', 'restore', wait=0):\n"
            "    print('held', flush=True); sys.stdin.readline()",
            setup.config["state_dir"],
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    first = None
    try:
        assert holder.stdout.readline() == "held\n"
        first = subprocess.Popen(["/bin/sh", "-c", command], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while not [r for r in setup.history("demo") if r["finished"] is None]:
            assert time.monotonic() < deadline, "the first firing never started waiting"
            time.sleep(0.2)
        started = time.monotonic()
        second = subprocess.run(
            ["/bin/sh", "-c", command], capture_output=True, text=True, timeout=15
        )
        assert time.monotonic() - started < 5
        assert second.returncode == 4, second
        assert re.fullmatch(
            r"cfbackup: error: the previous run of \[profiles\.demo\.schedule\], PID \d+ "
            r"\(backup, since [^)]+\), is still running or waiting for profile demo's lock: "
            r"this backup is skipped \(one run of a schedule at a time\); check whether that "
            r"run hangs\.\n",
            second.stderr,
        ), second.stderr
        rows = setup.history("demo")
        assert len([r for r in rows if r["finished"] is None]) == 1  # the first one only
        assert first.poll() is None  # still waiting for the lock
    finally:
        holder.communicate("\n", timeout=10)
        if first is not None:
            first.wait(timeout=60)
    assert first.returncode == 0, first.stderr.read()
    assert setup.history("demo")[0]["result"] == "success"


def test_two_schedules_of_a_profile_at_the_same_time_are_warned_about(setup):
    setup.profile("demo")["schedule"] = {"cron": "30 2 * * *"}
    setup.profile("demo")["drill"] = {"cron": "30 2 * * sun"}
    setup.profile("demo")["verify"] = {"cron": "0 4 1 * *"}  # another time: no warning
    setup.write()
    warning = (
        "cfbackup: warning: profiles.demo.schedule (cron '30 2 * * *') and profiles.demo.drill "
        "(cron '30 2 * * sun') fall due at the same time (next on "
    )
    for command in (["list"], ["install", "--cron"], ["install", "--systemd", "--print"]):
        result = setup.cli("schedule", *command, check=0)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(warning), (command, result.stderr)
        assert re.search(
            r"\(next on \d{4}-\d\d-\d\d at 02:30\), so one waits for the other to finish "
            r"\(at most max_wait, 6h when unset\): give profiles\.demo\.drill a time of its "
            r"own\.$",
            lines[0],
        ), lines[0]
        assert "Sun" in result.stdout or "sun" in result.stdout

    setup.profile("demo")["drill"] = {"cron": "30 5 * * sun"}
    setup.write()
    assert setup.cli("schedule", "list", check=0).stderr == ""


def _environment(service: str) -> dict[str, str]:
    """The Environment= assignments of a unit, as systemd reads them (quotes, ``%%``)."""
    found = {}
    for line in service.splitlines():
        if line.startswith("Environment="):
            for word in shlex.split(line.split("=", 1)[1]):
                name, _, value = word.replace("%%", "%").partition("=")
                found[name] = value
    return found


def _locked_run(setup, command, env=None):
    """``command`` (a unit's or crontab line's) run by /bin/sh while the profile's lock is
    held by another run: its stderr."""
    from cfbackup import lock

    with lock.profile_lock(Path(setup.config["state_dir"]), "demo", "restore", wait=0):
        run = subprocess.run(
            ["/bin/sh", "-c", command], capture_output=True, text=True, timeout=60, env=env
        )
    assert run.returncode == 4, run
    return run.stderr


def test_the_fix_after_a_lock_wait_runs_as_printed_for_how_it_was_installed(setup, tmp_path):
    """A scheduled run giving up on the lock said to apply a raised max_wait with `schedule
    install --systemd`: that wrote into /etc/systemd/system, not the --unit-dir the units were
    installed in, without the --environment-file they need (refused), and without the
    daemon-reload that makes systemd read them; for cron, `install --cron` only prints. The
    command it names now runs as printed and rewrites the units the user installed (or, for
    cron, prints the line to put in place of the crontab's)."""
    import os

    setup.profile("demo")["drill"] = {"cron": "30 2 * * *", "max_wait": "1s"}
    setup.profile("demo")["encryption"] = {"mode": "symmetric", "passphrase_env": "CFB_PASS"}
    setup.write()
    secrets = tmp_path / "secrets.env"
    secrets.write_text("CFB_PASS='a secret'\n")
    secrets.chmod(0o600)
    units = tmp_path / "units"
    units.mkdir()
    setup.cli(
        "schedule", "install", "--systemd", "--unit-dir", str(units),
        "--environment-file", str(secrets), check=0,
    )  # fmt: skip
    service = (units / "cfbackup-demo-drill.service").read_text()
    env = {**os.environ, **_environment(service), "CFB_PASS": "a secret"}
    exec_start = next(x for x in service.splitlines() if x.startswith("ExecStart="))
    message = _locked_run(setup, exec_start.split("=", 1)[1], env)
    fix = message.rstrip().rsplit(" and apply it with ", 1)[1].removesuffix(".")
    install, reload = fix.split(" && ")
    assert reload == "systemctl daemon-reload", message
    assert f"--unit-dir {units}" in install and f"--environment-file {secrets}" in install
    (units / "cfbackup-demo-drill.service").unlink()
    done = subprocess.run(["/bin/sh", "-c", install], capture_output=True, text=True)
    assert done.returncode == 0, done
    assert (units / "cfbackup-demo-drill.service").read_text() == service

    lines = setup.cli(
        "schedule", "install", "--cron", "--cron-user", "root", "--environment-file",
        str(secrets), check=0,
    ).stdout.splitlines()  # fmt: skip
    line = next(x for x in lines if "cron:profiles.demo.drill" in x)
    message = _locked_run(setup, line.split(" ", 6)[6])
    fix = re.search(
        r", then run (.+) and put its profiles\.demo\.drill line in place of this one in the "
        r"crontab\.$",
        message.rstrip(),
    )
    assert fix, message
    printed = subprocess.run(["/bin/sh", "-c", fix[1]], capture_output=True, text=True)
    assert printed.returncode == 0, printed
    assert line in printed.stdout.splitlines(), (line, printed.stdout)
