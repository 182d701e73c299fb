"""The profile lock: refused at once by default; with ``$CFBACKUP_LOCK_WAIT`` (set by the
scheduled runs) a run waits for the holder, within a bound."""

from __future__ import annotations

import re
import threading
import time

import pytest

from cfbackup import history, lock
from cfbackup.errors import ConfigError, ExitCode, LockHeld
from cfbackup.hookspecs import hookimpl
from cfbackup.runtypes import RunResult


def test_a_held_lock_is_refused_at_once_without_a_wait(tmp_path, monkeypatch):
    monkeypatch.delenv(lock.WAIT_VARIABLE, raising=False)
    with lock.profile_lock(tmp_path, "web", "backup"):
        started = time.monotonic()
        with pytest.raises(LockHeld) as refused, lock.profile_lock(tmp_path, "web", "drill"):
            pass
    assert time.monotonic() - started < 0.5
    assert refused.value.exit_code == ExitCode.LOCKED
    assert "wait for it to finish (the lock is released" in refused.value.message


def test_with_a_wait_the_run_goes_once_the_holder_ends(tmp_path, monkeypatch):
    """A backup and a drill of one profile due together: the second waits, then runs."""
    monkeypatch.setenv(lock.WAIT_VARIABLE, "10s")
    held = threading.Event()

    def holder():
        with lock.profile_lock(tmp_path, "web", "backup", wait=0):
            held.set()
            time.sleep(1.0)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    started = time.monotonic()
    with lock.profile_lock(tmp_path, "web", "drill") as path:
        waited = time.monotonic() - started
        assert '"action": "drill"' in path.read_text()
    thread.join()
    assert 0.5 < waited < 5


def test_a_wait_is_bounded_and_the_error_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv(lock.WAIT_VARIABLE, "1s")
    with lock.profile_lock(tmp_path, "web", "backup", wait=0):
        started = time.monotonic()
        with pytest.raises(LockHeld) as refused, lock.profile_lock(tmp_path, "web", "drill"):
            pass
        waited = time.monotonic() - started
    assert 1.0 <= waited < 2.5
    message = refused.value.message
    assert message.startswith("profile web is locked by another cfbackup run, PID ")
    assert "(backup, since " in message
    assert message.endswith(
        ": waited 1s ($CFBACKUP_LOCK_WAIT) for it to finish: check whether that run hangs, or "
        "raise CFBACKUP_LOCK_WAIT."
    )


def test_a_wait_that_is_not_a_duration_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv(lock.WAIT_VARIABLE, "six hours")
    with pytest.raises(ConfigError) as refused, lock.profile_lock(tmp_path, "web", "backup"):
        pass
    assert refused.value.message.startswith("$CFBACKUP_LOCK_WAIT: 'six hours' is not a duration")
    assert refused.value.message.endswith("set it to a duration such as 6h.")


def _hold(state_dir, profile, action, seconds):
    """Another run holding ``profile``'s lock for ``seconds`` (a thread): started once held."""
    held = threading.Event()

    def holder():
        with lock.profile_lock(state_dir, profile, action, wait=0):
            held.set()
            time.sleep(seconds)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(5)
    return thread


class _Hooks:
    """Records the hooks a run fires."""

    def __init__(self):
        self.fired = []

    @hookimpl
    def cfbackup_on_error(self, run, error):
        self.fired.append("on_error")

    @hookimpl
    def cfbackup_run_finished(self, run, result):
        self.fired.append("run_finished")


def _execute(config_path, body, hooks=None):
    from cfbackup.config import load_config
    from cfbackup.plugins import make_plugin_manager
    from cfbackup.runner import execute_run

    loaded = load_config(config_path)
    pm = make_plugin_manager(load_entry_points=False)
    if hooks is not None:
        pm.register(hooks, name="recorder")
    return loaded, execute_run(loaded, loaded.profile("main"), "backup", {}, pm, body)


def test_a_stop_while_waiting_for_the_lock_says_nothing_was_run(config, tmp_path, monkeypatch):
    """Before: recorded as a backup "stopped before it finished", with on_error hooks and
    failure notifications for a run that had only waited."""
    monkeypatch.setenv(lock.WAIT_VARIABLE, "30s")
    sleeps = []

    def sleep(seconds):  # the third look at the lock is where SIGTERM (KeyboardInterrupt) lands
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise KeyboardInterrupt
        time.sleep(seconds)

    thread = _hold(tmp_path / "state", "main", "restore", 3)
    monkeypatch.setattr(lock.time, "sleep", sleep)
    hooks = _Hooks()
    ran = []
    try:
        loaded, result = _execute(config, ran.append, hooks)
    finally:
        monkeypatch.undo()
        thread.join()
    assert ran == []
    assert result.exit_code == ExitCode.INTERRUPTED
    assert re.fullmatch(
        r"stopped while waiting for PID \d+ \(restore\) to release profile main's lock; "
        r"nothing was run\.",
        result.message,
    ), result.message
    assert hooks.fired == []  # no on_error, no failure notification or metrics
    # no row: status showed it as the last failure, hiding a real one, and it sorted above
    # the run that held the lock
    assert history.runs(loaded.state_dir, "main") == []


def test_the_wait_for_the_lock_is_not_part_of_the_run_s_duration(config, tmp_path, monkeypatch):
    """Before: a 0.2 s backup after a 1.5 s wait was recorded (history, notifications,
    metrics) as a 1.7 s run."""
    monkeypatch.setenv(lock.WAIT_VARIABLE, "30s")
    thread = _hold(tmp_path / "state", "main", "backup", 1.5)

    def body(run):
        time.sleep(0.2)
        return RunResult(profile="main", action="backup")

    try:
        loaded, result = _execute(config, body)
    finally:
        thread.join()
    assert result.exit_code == ExitCode.OK
    assert 0.2 <= result.duration < 1.0
    row = history.runs(loaded.state_dir, "main", limit=1)[0]
    assert 0.2 <= row["finished"] - row["started"] < 1.0


def test_a_second_firing_of_a_schedule_exits_at_once(tmp_path, monkeypatch):
    """cron starts a line again at its next time: while the first firing still waits for the
    profile lock (a hung run holds it), the second one exits at once instead of queueing
    behind it (before: up to six processes queued, each with a running history row); a
    different schedule of the profile still waits for its turn."""
    monkeypatch.setenv(lock.WAIT_VARIABLE, "30s")
    holder = _hold(tmp_path, "web", "restore", 2.5)
    monkeypatch.setenv(lock.SCHEDULED_VARIABLE, "cron:profiles.web.schedule")
    first_in = threading.Event()

    def first():
        with lock.profile_lock(tmp_path, "web", "backup"):
            first_in.set()

    waiting = threading.Thread(target=first)
    waiting.start()
    time.sleep(0.5)  # the first firing waits for the lock by now
    started = time.monotonic()
    with pytest.raises(LockHeld) as refused, lock.profile_lock(tmp_path, "web", "backup"):
        pass
    assert time.monotonic() - started < 0.5
    assert re.fullmatch(
        r"the previous run of \[profiles\.web\.schedule\], PID \d+ \(backup, since [^)]+\), "
        r"is still running or waiting for profile web's lock: this backup is skipped \(one "
        r"run of a schedule at a time\); check whether that run hangs\.",
        refused.value.message,
    ), refused.value.message
    # the drill's schedule is another: it waits for the profile lock, and gets it
    monkeypatch.setenv(lock.SCHEDULED_VARIABLE, "cron:profiles.web.drill")
    with lock.profile_lock(tmp_path, "web", "drill"):
        pass
    holder.join()
    waiting.join()
    assert first_in.is_set()


def test_a_scheduled_run_s_wait_names_max_wait_and_how_to_apply_it(tmp_path, monkeypatch):
    """$CFBACKUP_LOCK_WAIT of a scheduled run is written from max_wait: raising the variable
    by hand is lost at the next schedule install (before, the message said to). How to apply
    it is what the schedule was installed with ($CFBACKUP_SCHEDULE_APPLY: the test of each in
    test_schedule_install_locks.py runs it); without it (an older install), the command to
    adapt."""
    monkeypatch.setenv(lock.WAIT_VARIABLE, "1s")
    monkeypatch.setattr(lock.sys, "argv", ["/opt/cfb/bin/cfbackup", "-c", "c.toml"])
    config = tmp_path / "c.toml"
    expected = {
        ("cron", None): " and put its profiles.web.drill line in place of this one in the crontab.",
        ("cron", "cfb -c c.toml schedule install --cron web"): ", then run cfb -c c.toml "
        "schedule install --cron web and put its profiles.web.drill line in place of this one "
        "in the crontab.",
        # a crontab line's: only the install's options, completed with this run's own
        # cfbackup, config file and profile (the whole command made lines cron would cut)
        ("cron", "--cron --cron-user root"): ", then run /opt/cfb/bin/cfbackup -c "
        f"{config} schedule install --cron --cron-user root web and put its profiles.web.drill "
        "line in place of this one in the crontab.",
        ("systemd", None): f" and apply it with cfbackup -c {config} schedule install --systemd "
        "(with the options it was installed with) && systemctl daemon-reload.",
        ("systemd", "x --unit-dir d && systemctl --user daemon-reload"): " and apply it with x "
        "--unit-dir d && systemctl --user daemon-reload.",
        ("daemon", None): " and reload the scheduler daemon (SIGHUP).",
        ("daemon", "kill -HUP 42"): " and reload the scheduler daemon (kill -HUP 42).",
    }
    with lock.profile_lock(tmp_path, "web", "backup", wait=0):
        for (how, command), apply in expected.items():
            monkeypatch.setenv(lock.SCHEDULED_VARIABLE, f"{how}:profiles.web.drill")
            monkeypatch.setenv(lock.APPLY_VARIABLE, command or "")
            with (
                pytest.raises(LockHeld) as refused,
                lock.profile_lock(tmp_path, "web", "drill", config_path=config),
            ):
                pass
            message = refused.value.message
            assert ": waited 1s (max_wait in [profiles.web.drill]) for it to finish: check " in (
                message
            ), message
            assert message.endswith(apply), (how, command, message)
            if how == "cron" and command is None:
                assert f", then run cfbackup -c {config} schedule install --cron (with" in message


def test_the_schedule_marker_applies_to_its_own_profile_only(tmp_path, monkeypatch):
    """A hook of a scheduled run that runs cfbackup for another profile inherits
    $CFBACKUP_SCHEDULED: it must not take that schedule's lock (refused as its own previous
    run) nor speak of its max_wait."""
    monkeypatch.setenv(lock.SCHEDULED_VARIABLE, "cron:profiles.web.schedule")
    monkeypatch.delenv(lock.WAIT_VARIABLE, raising=False)
    with lock.profile_lock(tmp_path, "web", "backup"), lock.profile_lock(tmp_path, "db", "backup"):
        with pytest.raises(LockHeld) as refused, lock.profile_lock(tmp_path, "db", "drill", 1):
            pass
    assert "($CFBACKUP_LOCK_WAIT)" in refused.value.message


def test_a_skipped_firing_leaves_no_row_and_fires_no_hook(config, tmp_path, monkeypatch):
    """A cron line firing again while its previous run still waits ran nothing: it was a
    "locked" failure row (status's last failure, hiding a real one) with on_error hooks and a
    failure notification every hour of a long backup."""
    from cfbackup.errors import ScheduleBusy

    state = tmp_path / "state"
    monkeypatch.setenv(lock.SCHEDULED_VARIABLE, "cron:profiles.main.schedule")
    in_first = threading.Event()
    release = threading.Event()

    def first():  # the schedule's previous run, holding its schedule lock
        with lock.profile_lock(state, "main", "backup", wait=0):
            in_first.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    assert in_first.wait(5)
    hooks, ran = _Hooks(), []
    try:
        loaded, result = _execute(config, ran.append, hooks)
    finally:
        release.set()
        thread.join()
    assert ran == [] and isinstance(result.error, ScheduleBusy), result
    assert result.exit_code == ExitCode.LOCKED
    assert hooks.fired == []
    assert history.runs(loaded.state_dir, "main") == []


def test_what_the_daemon_waited_is_counted_in_the_message(tmp_path, monkeypatch):
    """The daemon waits for its turn before it starts a run, then gives the child what is left
    of max_wait: a child giving up said it waited only that rest, and one the daemon gave up on
    (started so that it is recorded, told to wait no more) said "wait for it to finish" as if
    nothing had waited. $CFBACKUP_LOCK_WAITED (the daemon's own runs only) is counted."""
    monkeypatch.setenv(lock.WAITED_VARIABLE, "1h")
    monkeypatch.setenv(lock.WAIT_VARIABLE, "0s")
    with lock.profile_lock(tmp_path, "web", "backup", wait=0):
        for marker, waited in (("daemon:profiles.web.drill", "1h"), (None, None)):
            if marker:
                monkeypatch.setenv(lock.SCHEDULED_VARIABLE, marker)
            else:
                monkeypatch.delenv(lock.SCHEDULED_VARIABLE)
            started = time.monotonic()
            with pytest.raises(LockHeld) as refused, lock.profile_lock(tmp_path, "web", "drill"):
                pass
            assert time.monotonic() - started < 0.5  # it waits no more
            if waited:
                assert f": waited {waited} (max_wait in [profiles.web.drill]) for it" in (
                    refused.value.message
                ), refused.value.message
            else:  # not a daemon's run: the variable is not its own
                assert "wait for it to finish (the lock is released" in refused.value.message


def test_a_run_giving_up_on_the_lock_records_no_wait_as_its_duration(config, tmp_path, monkeypatch):
    """A run that waited 1 s for the lock and then gave up (LockHeld) was recorded (history,
    notifications, metrics) as a 1 s run: it ran nothing; its message says it waited."""
    monkeypatch.setenv(lock.WAIT_VARIABLE, "1s")
    thread = _hold(tmp_path / "state", "main", "restore", 3)
    hooks = _Hooks()
    try:
        loaded, result = _execute(config, lambda run: None, hooks)
    finally:
        thread.join()
    assert result.exit_code == ExitCode.LOCKED
    assert ": waited 1s ($CFBACKUP_LOCK_WAIT) for it to finish" in result.message
    assert result.duration < 0.5
    row = history.runs(loaded.state_dir, "main", limit=1)[0]
    assert row["result"] == "locked" and row["finished"] - row["started"] < 0.5, row
    assert hooks.fired == ["on_error", "run_finished"]  # recorded, and heard of
