"""``cfbackup schedule install`` and ``schedule list`` through the installed CLI: systemd units,
environment files, what ``list`` shows. The crontab lines are in
``test_schedule_install_cron.py``, how installed runs wait for the profile's lock in
``test_schedule_install_locks.py``."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from schedule_helpers import unit

CFBACKUP = Path(sys.executable).parent / "cfbackup"


def _schedule(setup, name, **schedule):
    setup.profile(name)["schedule"] = schedule
    setup.write()


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

    service = unit((units / "cfbackup-nightly.service").read_text())
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
    drill = unit((units / "cfbackup-demo-drill.service").read_text())["Service"]
    assert shlex.split(drill["ExecStart"]) == [*base, "drill", "demo"]
    kit = unit((units / "cfbackup-demo-drill-from-nothing.service").read_text())["Service"]
    assert shlex.split(kit["ExecStart"]) == [*base, "drill", "demo", "--from-nothing"]
    checks = unit((units / "cfbackup-demo-verify.service").read_text())["Service"]
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
    service = unit((units / "cfbackup-demo.service").read_text())
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
    service = unit((units / "cfbackup-demo.service").read_text())
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
