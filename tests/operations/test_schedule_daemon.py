"""``cfbackup schedule run``: the real daemon runs real backups, reloads on SIGHUP and stops
cleanly on SIGTERM, also in the middle of a run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from polling import wait_for

CFBACKUP = Path(sys.executable).parent / "cfbackup"


class DaemonProcess:
    def __init__(self, setup, *args, env=None):
        self.log_path = setup.root / "daemon.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        st = os.fstat(self.log.fileno())
        self.process = subprocess.Popen(
            [str(CFBACKUP), "-c", str(setup.path), "schedule", "run", *args],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env={**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}", **(env or {})},
        )

    def text(self) -> str:
        return self.log_path.read_text()

    def signal(self, signum) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout=15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.log.close()


@pytest.fixture
def daemon_factory():
    started = []

    def start(setup, *args, **kwargs):
        daemon = DaemonProcess(setup, *args, **kwargs)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait()


def _successes(setup, profile):
    return [
        r for r in setup.history(profile) if r["action"] == "backup" and r["result"] == "success"
    ]


def test_daemon_runs_reloads_and_stops(setup, daemon_factory):
    setup.profile("demo")["schedule"] = {"interval": "1s"}
    setup.write()
    daemon = daemon_factory(setup)
    wait_for(lambda: len(_successes(setup, "demo")) >= 2, what="two scheduled backups")
    assert (setup.root / "target-demo").is_dir()
    text = daemon.text()
    # journald-friendly: stderr is "the journal" here, so each line has a priority prefix
    assert "<6>cfbackup scheduler started" in text
    assert "<6>profile demo: backup finished: success (exit code 0)" in text
    assert all(line.startswith("<") for line in text.splitlines() if line)

    # SIGHUP: demo switched off, a new profile scheduled
    setup.profile("demo")["schedule"]["enabled"] = False
    setup.add_profile("second", schedule={"interval": "1s"})
    setup.write()
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: "reloaded: 1 schedule(s)" in daemon.text(), what="the reload")
    assert "(added second, changed none, removed demo)" in daemon.text()
    wait_for(lambda: _successes(setup, "second"), what="a backup of the new profile")
    # (a demo run that had started before the reload may still have been finishing)
    demo_runs = len(setup.history("demo"))
    wait_for(lambda: len(_successes(setup, "second")) >= 2, what="more runs of the new profile")
    assert len(setup.history("demo")) == demo_runs, "demo still runs after its schedule was off"

    # SIGHUP with a broken config keeps the schedules
    setup.path.write_text("profiles = 3\n")
    daemon.signal(signal.SIGHUP)
    wait_for(
        lambda: "reload failed, keeping the previous schedules" in daemon.text(),
        what="the failed reload",
    )
    # the schedule still fires; the run itself reads the broken file and says so
    wait_for(
        lambda: "<3>profile second: backup finished: configuration error" in daemon.text(),
        what="a run after the failed reload",
    )

    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 10
    text = daemon.text()
    assert "SIGTERM received: stopping" in text
    assert text.rstrip().endswith("cfbackup scheduler stopped")


def test_sigterm_interrupts_the_running_backup_cleanly(setup, daemon_factory):
    setup.profile("demo")["schedule"] = {"interval": "1s"}
    setup.profile("demo")["command_hooks"] = {"before_backup": ["sleep 60"]}
    setup.write()
    daemon = daemon_factory(setup)
    wait_for(
        lambda: [r for r in setup.history("demo") if r["finished"] is None],
        what="a backup in progress",
    )
    time.sleep(0.5)
    started = time.monotonic()
    assert daemon.stop(timeout=30) == 0
    assert time.monotonic() - started < 15
    rows = setup.history("demo")
    assert rows[0]["result"] == "interrupted" and rows[0]["exit_code"] == 130
    text = daemon.text()
    assert "interrupting demo (the backup resumes at its next run)" in text
    assert "profile demo: backup interrupted by the shutdown" in text
    # no second run was started while stopping
    assert len(rows) == 1


def test_no_schedules_is_a_config_error(setup):
    result = setup.cli("schedule", "run", timeout=30)
    assert result.returncode == 3
    assert "no profile has a [schedule]" in result.stderr


def test_a_secret_the_daemon_s_environment_lacks_is_refused_at_start(setup):
    """Each run reads *_env secrets from the daemon's environment: a missing one failed every
    run at night; the daemon now refuses to start, naming it (config error, exit 3)."""
    setup.profile("demo")["schedule"] = {"cron": "30 2 * * *"}
    setup.profile("demo")["encryption"] = {"mode": "symmetric", "passphrase_env": "CFB_T_PASS"}
    setup.write()
    result = setup.cli("schedule", "run", env={"CFB_T_PASS": ""}, timeout=30)
    assert result.returncode == 3, result
    assert (
        "profiles.demo.encryption.passphrase_env reads $CFB_T_PASS, which is not set in the "
        "daemon's environment" in result.stderr
    ), result


def test_timestamped_lines_outside_the_journal(setup, daemon_factory):
    setup.profile("demo")["schedule"] = {"cron": "0 0 1 1 *"}
    setup.write()
    daemon = daemon_factory(setup, env={"JOURNAL_STREAM": ""})
    wait_for(lambda: "next run at" in daemon.text(), what="the start lines")
    assert daemon.stop() == 0
    text = daemon.text()
    first = text.splitlines()[0]
    assert re.match(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO profile demo: cron '0 0 1 1 \*'$", first
    )
    assert re.search(r"profile demo: next run at \d{4}-01-01 00:00:00", text)


def test_a_real_backup_and_drill_due_together_both_succeed(setup, daemon_factory):
    """The reviewer's case, with the real daemon and real runs against a file:// target: the
    backup (held 2 s by a before_backup hook) and the drill of one profile due at the same
    moment (the same interval, counted from the daemon's start), with --max-parallel 2. One
    of them failed on the profile lock (exit 4); now the second waits and both succeed."""
    setup.cli("backup", "demo", check=0)
    setup.profile("demo")["schedule"] = {"interval": "3s"}
    setup.profile("demo")["drill"] = {"interval": "3s", "sample": "100%"}
    setup.profile("demo")["command_hooks"] = {"before_backup": ["sleep 2"]}
    setup.write()
    daemon = daemon_factory(setup, "--max-parallel", "2")

    def finished(action):
        return [
            r
            for r in setup.history("demo")
            if r["action"] == action and r["finished"] and r["result"] != "interrupted"
        ]

    wait_for(
        lambda: len(finished("backup")) >= 2 and finished("drill"),  # the first is by hand
        timeout=60,
        what="a scheduled backup and drill",
    )
    assert daemon.stop(timeout=30) == 0
    rows = [r for r in setup.history("demo") if r["result"] != "interrupted"]
    assert [r for r in rows if r["exit_code"] != 0] == [], rows
    assert "another run holds the profile's lock" not in daemon.text()
    assert re.search(r"profile demo(:drill)?: the (backup|drill) waits for the", daemon.text())
    assert "fall due at the same time (every 3s)" in daemon.text()  # and it was warned about


def test_a_run_given_up_on_an_outside_lock_is_recorded_and_fires_on_error(setup, daemon_factory):
    """A scheduled backup the daemon gave up on, the profile's lock held outside it past
    max_wait, left only a journal line: no history row and no on_error hook or notification,
    so status and the notify plugin never learned it did not happen. It is now recorded as a
    run finding the lock held is (LOCKED, with its hooks), and its message says it waited."""
    from cfbackup import lock

    errors = setup.root / "on_error.txt"
    setup.profile("demo")["schedule"] = {"interval": "2s", "max_wait": "1s"}
    setup.profile("demo")["command_hooks"] = {"on_error": [f'echo "$CFBACKUP_ERROR" >> {errors}']}
    setup.write()
    state = Path(setup.config["state_dir"])
    with lock.profile_lock(state, "demo", "restore", wait=0):
        daemon = daemon_factory(setup)
        rows = wait_for(
            lambda: [r for r in setup.history("demo") if r["finished"]],
            timeout=30,
            what="the run given up to be recorded",
        )
        # said once the child has recorded it
        wait_for(lambda: "did not run" in daemon.text(), timeout=10, what="the journal line")
        assert daemon.stop(timeout=30) == 0
    assert rows[0]["action"] == "backup" and rows[0]["exit_code"] == 4, rows
    assert rows[0]["result"] == "locked", rows
    message = rows[0]["message"]
    assert re.match(
        rf"profile demo is locked by another cfbackup run, PID {os.getpid()} \(restore, since "
        r"[^)]+\): waited 1s \(max_wait in \[profiles\.demo\.schedule\]\) for it to finish",
        message,
    ), message
    assert errors.read_text().startswith("profile demo is locked by another cfbackup run"), (
        daemon.text()
    )
    assert "did not run (exit code 4)" in daemon.text(), daemon.text()


def test_a_run_given_up_behind_its_profile_s_other_run_is_recorded(setup, daemon_factory):
    """The same for a drill the daemon gave up on while the profile's backup still ran past
    the drill's max_wait: only a journal line, where a timer's drill giving up after the same
    wait is recorded (LOCKED) and fires on_error."""
    errors = setup.root / "on_error.txt"
    setup.profile("demo")["schedule"] = {"interval": "2s"}
    setup.profile("demo")["drill"] = {"interval": "3s", "max_wait": "1s"}
    setup.profile("demo")["command_hooks"] = {
        "before_backup": ["sleep 5"],
        "on_error": [f'echo "$CFBACKUP_ERROR" >> {errors}'],
    }
    setup.write()
    daemon = daemon_factory(setup)
    rows = wait_for(  # the next drill, due while no backup runs, runs (and succeeds)
        lambda: [
            r for r in setup.history("demo") if r["action"] == "drill" and r["exit_code"] == 4
        ],
        timeout=20,
        what="the drill given up to be recorded",
    )
    assert daemon.stop(timeout=30) == 0
    assert rows[0]["result"] == "locked", rows
    assert re.match(
        r"profile demo is locked by another cfbackup run, PID \d+ \(backup, since [^)]+\): "
        r"waited 1s \(max_wait in \[profiles\.demo\.drill\]\) for it to finish",
        rows[0]["message"],
    ), rows
    assert errors.read_text().startswith("profile demo is locked by another cfbackup run")


class _NoJobs:
    """The scheduler of an in-process daemon whose runs a test starts itself."""

    def get_job(self, name):
        return None


def _in_process_daemon(setup, schedules):
    """A daemon with --max-parallel 1 running real children, its only slot held (by another
    profile's long backup, say); runs are started with ``daemon.run_profile(key)``."""
    from cfbackup_scheduler.daemon import Daemon

    daemon = Daemon(
        lambda: schedules,
        [str(CFBACKUP)],
        setup.path,
        max_parallel=1,
        state_dir=Path(setup.config["state_dir"]),
    )
    daemon.schedules = {s.key: s for s in schedules}
    daemon.scheduler = _NoJobs()
    assert daemon._slots.acquire(blocking=False)
    return daemon


def test_a_run_given_up_on_an_outside_lock_released_meanwhile_does_not_run(setup, caplog):
    """The lock held outside the daemon was released a moment after the daemon gave up: its
    child, started to record the give-up with CFBACKUP_LOCK_WAIT=0s, found the lock free and
    ran the whole backup, without a --max-parallel slot, while the journal said "did not
    run". It now never takes the lock: it is recorded as given up, and runs nothing."""
    import logging
    import threading

    from cfbackup_scheduler.spec import Schedule, parse_cron

    from cfbackup import lock

    caplog.set_level(logging.INFO, logger="cfbackup.scheduler")
    backup = Schedule("demo", parse_cron("@daily"), None, 0, 3600, max_wait=1)
    daemon = _in_process_daemon(setup, [backup])
    state = Path(setup.config["state_dir"])
    held, waited = threading.Event(), threading.Event()

    def restore():  # released as soon as the daemon gives up, before its child starts
        with lock.profile_lock(state, "demo", "restore", wait=0):
            held.set()
            wait_for(lambda: "demo" in daemon._waiting, timeout=10, what="the run to wait")
            wait_for(lambda: "demo" not in daemon._waiting, timeout=10, what="the give-up")
            waited.set()

    given_up = daemon._run_given_up

    def after_the_release(*args, **kwargs):  # the child starts once the lock is free, as meant
        wait_for(lambda: lock.holder(state, "demo") is None, timeout=10, what="the release")
        return given_up(*args, **kwargs)

    daemon._run_given_up = after_the_release  # else a fast child raced the holder's release
    holder = threading.Thread(target=restore)
    holder.start()
    try:
        assert held.wait(5)
        code = daemon.run_profile("demo")
    finally:
        holder.join()
    assert waited.is_set()
    assert code == 4
    assert not (setup.root / "target-demo").exists()  # nothing was backed up
    rows = setup.history("demo")
    assert [(r["action"], r["result"]) for r in rows] == [("backup", "locked")], rows
    assert re.fullmatch(
        rf"profile demo: the scheduler gave up on this backup after waiting 1s \(max_wait in "
        rf"\[profiles\.demo\.schedule\]\) for PID {os.getpid()} \(restore, since [^)]+\) to "
        r"release profile demo's lock, so it did not run: check whether that run hangs, or "
        r"raise max_wait in \[profiles\.demo\.schedule\] and reload the scheduler daemon "
        r"\(kill -HUP \d+\)\.",
        rows[0]["message"],
    ), rows[0]["message"]
    journal = [r.getMessage() for r in caplog.records if r.name == "cfbackup.scheduler"]
    assert not [line for line in journal if "backup started" in line], journal
    # one error line for the one event: the daemon's, naming the fix (the child's own refusal,
    # logged as an error beside it, said it a second time)
    errors = _journal_errors(caplog)
    assert len(errors) == 1 and re.fullmatch(
        r"profile demo: the backup due at \S+ \S+( \S+)? did not run \(exit code 4\): PID "
        rf"{os.getpid()} \(restore, since [^)]+\), a cfbackup run outside the scheduler, still "
        r"held profile demo's lock after 1s \(max_wait\): it runs at its next time; check "
        r"whether that run hangs, or raise max_wait in \[profiles\.demo\.schedule\] and "
        rf"reload the scheduler daemon \(kill -HUP {os.getpid()}\)",
        errors[0],
    ), errors


def _journal_errors(caplog) -> list[str]:
    """The daemon's error lines (its children's included, logged under its name)."""
    import logging

    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "cfbackup.scheduler" and r.levelno >= logging.ERROR
    ]


def test_a_run_given_up_behind_its_profile_s_run_waiting_for_a_slot_does_not_run(setup, caplog):
    """The profile's backup waited for a --max-parallel slot (holding the profile's turn, not
    its lock): the verify given up behind it was said to wait for "the backup still running",
    and its child found the lock free and ran the whole verify without a slot. Now the
    journal says the backup was waiting for a slot, and the verify does not run."""
    import logging
    import threading

    from cfbackup_scheduler.spec import Schedule, parse_cron

    setup.cli("backup", "demo", check=0)  # a verify that ran would succeed
    caplog.set_level(logging.INFO, logger="cfbackup.scheduler")
    backup = Schedule("demo", parse_cron("@daily"), None, 0, 3600)
    verify = Schedule("demo", parse_cron("@daily"), None, 0, 3600, action="verify", max_wait=1)
    daemon = _in_process_daemon(setup, [backup, verify])
    waiting = threading.Thread(target=daemon.run_profile, args=(backup.key,))
    waiting.start()
    try:
        wait_for(lambda: backup.key in daemon._waiting, timeout=10, what="the backup to wait")
        code = daemon.run_profile(verify.key)
    finally:
        with daemon._children_lock:
            daemon._stopping = True  # the waiting backup gives up
        waiting.join(10)
    assert code == 4
    rows = [r for r in setup.history("demo") if r["action"] == "verify"]
    assert [r["result"] for r in rows] == ["locked"], rows
    assert re.fullmatch(
        r"profile demo: the scheduler gave up on this verify after waiting 1s \(max_wait in "
        r"\[profiles\.demo\.verify\]\) for the backup \(still waiting for a free slot\) to "
        r"finish, so it did not run: .*",
        rows[0]["message"],
    ), rows[0]["message"]
    journal = [r.getMessage() for r in caplog.records if r.name == "cfbackup.scheduler"]
    gave_up = [line for line in journal if line.startswith("profile ") and "did not run" in line]
    assert len(gave_up) == 1 and re.fullmatch(
        r"profile demo:verify: the verify due at \S+ \S+( \S+)? did not run \(exit code 4\): the "
        r"backup was still waiting for a free slot after 1s \(max_wait\): it runs at its next "
        r"time; look for a run that hangs, or raise --max-parallel, or raise max_wait in "
        rf"\[profiles\.demo\.verify\] and reload the scheduler daemon \(kill -HUP {os.getpid()}\)",
        gave_up[0],
    ), gave_up
    assert not [line for line in journal if "verify started" in line], journal
    assert _journal_errors(caplog) == gave_up  # the child's refusal is not said twice


def test_a_run_given_up_on_runs_no_secret_command_it_does_not_need(setup, tmp_path):
    """A child the daemon gave up on only records that it did not run (a locked row, its
    on_error hook): the passphrase it would back up with is never read, so its
    passphrase_command (a password manager's prompt, a vault login) is not run."""
    marker = tmp_path / "passphrase-command-ran"
    errors = tmp_path / "on_error.txt"
    setup.profile("demo")["encryption"] = {
        "mode": "symmetric",
        "passphrase_command": f"sh -c 'touch {marker}; echo a-passphrase'",
    }
    setup.profile("demo")["schedule"] = {"cron": "@daily"}
    setup.profile("demo")["command_hooks"] = {"on_error": [f'echo "$CFBACKUP_ERROR" >> {errors}']}
    setup.write()
    given_up = {  # as the daemon starts it (Daemon._run_child)
        "CFBACKUP_SCHEDULED": "daemon:profiles.demo.schedule",
        "CFBACKUP_LOCK_GIVEN_UP": "the drill to finish",
        "CFBACKUP_LOCK_WAIT": "0s",
        "CFBACKUP_LOCK_WAITED": "6h",
    }
    result = setup.cli("--quiet", "backup", "demo", env=given_up, check=4)
    assert "the scheduler gave up on this backup after waiting 6h" in result.stderr, result
    assert [r["result"] for r in setup.history("demo")] == ["locked"]
    assert errors.read_text().startswith("profile demo: the scheduler gave up")
    assert not marker.exists()
    # the same config, run by hand, does run it (the test would see it)
    setup.cli("--quiet", "backup", "demo", check=0)
    assert marker.exists()
