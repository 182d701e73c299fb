"""How installed schedules wait for the profile's lock: the units' and crontab lines' waits, one
run of a crontab line at a time, schedules of one profile due together, and the fix a run
that gave up on the lock prints."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from schedule_helpers import unit


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
    units = {name: unit(text) for name, text in zip(parts[::2], parts[1::2], strict=True)}
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
