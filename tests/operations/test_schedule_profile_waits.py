"""How the daemon's runs of one profile wait for each other, and for the profile's lock held
outside the daemon (without holding a --max-parallel slot), up to max_wait, in process with fake
runs: the daemon of ``cfbackup_scheduler.daemon`` on a ``BackgroundScheduler``, its children
small Python scripts."""

from __future__ import annotations

import os
import re
import sys
import time

from polling import wait_for
from schedule_helpers import profile_lines

# a scheduled "run" that logs "start ACTION PROFILE" and "end ACTION PROFILE" (1.5 s apart);
# one the daemon gave up on logs "given up ACTION PROFILE" and fails as the real one does
_FAKE_ACTION_RUN = """
import os, sys, time
log, action, profile = sys.argv[2], sys.argv[-2], sys.argv[-1]
if os.environ.get("CFBACKUP_LOCK_GIVEN_UP"):
    with open(log, "a") as f:
        f.write(f"given up {action} {profile}\\n")
    sys.exit(4)
with open(log, "a") as f:
    f.write(f"start {action} {profile}\\n")
time.sleep(1.5)
with open(log, "a") as f:
    f.write(f"end {action} {profile}\\n")
"""


def _fake_daemon(tmp_path, schedules, max_parallel, state_dir=None):
    from apscheduler.events import EVENT_JOB_EXECUTED
    from apscheduler.schedulers.background import BackgroundScheduler
    from cfbackup_scheduler.daemon import Daemon

    log = tmp_path / "runs.log"
    log.touch()
    daemon = Daemon(
        lambda: schedules,
        [sys.executable, "-c", _FAKE_ACTION_RUN],
        log,
        max_parallel=max_parallel,
        state_dir=state_dir,
    )
    scheduler = daemon.build_scheduler(BackgroundScheduler)
    codes = {}
    scheduler.add_listener(
        lambda event: codes.update({event.job_id: event.retval}), EVENT_JOB_EXECUTED
    )
    daemon._apply(schedules)
    scheduler.start()
    return daemon, scheduler, log, codes


def _due_now(scheduler, *names):
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    for name in names:
        scheduler.modify_job(name, next_run_time=now)


def test_runs_of_one_profile_wait_for_each_other_others_run_in_parallel(tmp_path, caplog):
    """A backup and a drill of one profile due together started two children: the second
    failed on the profile lock (exit 4) and that night's backup or drill was lost. Now the
    second waits for the first; another profile still runs beside them (--max-parallel)."""
    import logging

    from cfbackup_scheduler.spec import Schedule

    caplog.set_level(logging.INFO, logger="cfbackup.scheduler")
    schedules = [
        Schedule("web", None, 3600, 0, 60),
        Schedule("web", None, 3600, 0, 60, action="drill"),
        Schedule("db", None, 3600, 0, 60),
    ]
    daemon, scheduler, log, codes = _fake_daemon(tmp_path, schedules, max_parallel=3)
    try:
        _due_now(scheduler, "web", "web:drill", "db")
        wait_for(
            lambda: (
                {"end backup web", "end drill web", "end backup db"}
                <= set(log.read_text().splitlines())
            ),
            timeout=10,
            what="the three runs",
        )
        wait_for(lambda: len(codes) == 3, timeout=3, what="the jobs' ends")
    finally:
        daemon.stop("the test's end")
    lines = log.read_text().splitlines()
    web, running, most = 0, 0, 0
    for line in lines:
        step = 1 if line.startswith("start ") else -1
        running += step
        most = max(most, running)
        if line.endswith(" web"):
            web += step
            assert web <= 1, lines  # the backup and the drill of web never overlap
    assert most == 2, lines  # db ran beside web
    assert codes == {"web": 0, "web:drill": 0, "db": 0}
    waited = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith("profile ") and " waits for the " in r.getMessage()
    ]
    assert len(waited) == 1, waited
    assert re.fullmatch(
        r"profile web(:drill)?: the (backup|drill) waits for the (drill|backup) to finish \(one "
        r"run of a profile at a time; at most 6h, max_wait\)",
        waited[0],
    ), waited


def test_a_run_waiting_for_its_profile_longer_than_max_wait_gives_up(tmp_path, caplog):
    import logging

    from cfbackup_scheduler.spec import Schedule

    caplog.set_level(logging.INFO, logger="cfbackup.scheduler")
    schedules = [
        Schedule("web", None, 3600, 0, 60),
        Schedule("web", None, 3600, 0, 60, action="drill", max_wait=1),
    ]
    daemon, scheduler, log, codes = _fake_daemon(tmp_path, schedules, max_parallel=2)
    try:
        _due_now(scheduler, "web")
        wait_for(lambda: "start backup web" in log.read_text(), timeout=5, what="the backup")
        _due_now(scheduler, "web:drill")
        wait_for(lambda: "given up drill web" in log.read_text(), timeout=5, what="the drill")
        # given up while the backup ran: its child is started all the same, told so, to be
        # recorded (the real one fails at once: test_schedule_daemon.py,
        # test_a_run_given_up_behind_its_profile_s_other_run_is_recorded)
        assert "end backup web" not in log.read_text()
        wait_for(lambda: len(codes) == 2, timeout=5, what="the runs' ends")
    finally:
        daemon.stop("the test's end")
    assert codes == {"web": 0, "web:drill": 4}  # what the fake children said
    assert "start drill web" not in log.read_text()
    assert "profile web: drill started" not in [r.getMessage() for r in caplog.records]
    gave_up = [r for r in caplog.records if "did not run" in r.getMessage()]
    assert [r.levelname for r in gave_up] == ["ERROR"]
    assert re.fullmatch(
        r"profile web:drill: the drill due at \S+ \S+( \S+)? did not run \(exit code 4\): the "
        r"backup was still running after 1s \(max_wait\): it runs at its next time; look for a "
        r"run that hangs, or raise max_wait in \[profiles\.web\.drill\] and reload the "
        rf"scheduler daemon \(kill -HUP {os.getpid()}\)",
        gave_up[0].getMessage(),
    ), gave_up[0].getMessage()


def test_a_lock_held_outside_the_daemon_does_not_hold_a_slot(tmp_path, caplog):
    """A restore typed by hand held profile a's lock: a's scheduled run took the only
    --max-parallel slot and its child waited for the lock inside it (up to 6h), so b waited
    too, and the daemon's log did not say why. Now a waits outside the slot, and says for
    whom; b runs meanwhile, and a once the restore ends."""
    import logging
    import threading

    from cfbackup_scheduler.spec import Schedule

    from cfbackup import lock

    caplog.set_level(logging.INFO, logger="cfbackup.scheduler")
    state = tmp_path / "state"
    held, release = threading.Event(), threading.Event()

    def restore():
        with lock.profile_lock(state, "a", "restore", wait=0):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=restore)
    holder.start()
    assert held.wait(5)
    schedules = [Schedule("a", None, 3600, 0, 60), Schedule("b", None, 3600, 0, 60)]
    daemon, scheduler, log, codes = _fake_daemon(tmp_path, schedules, 1, state_dir=state)
    try:
        _due_now(scheduler, "a")
        waits = wait_for(
            lambda: [line for line in profile_lines(caplog, "a") if " waits for PID " in line],
            timeout=5,
            what="a to wait for the lock",
        )
        _due_now(scheduler, "b")
        wait_for(lambda: "end backup b" in log.read_text(), timeout=8, what="b to run")
        assert "start backup a" not in log.read_text()  # the restore still holds a's lock
        release.set()
        wait_for(lambda: "end backup a" in log.read_text(), timeout=8, what="a to run")
        wait_for(lambda: len(codes) == 2, timeout=3, what="the jobs' ends")
    finally:
        release.set()
        holder.join()
        daemon.stop("the test's end")
    assert codes == {"a": 0, "b": 0}
    assert re.fullmatch(
        rf"profile a: the backup waits for PID {os.getpid()} \(restore, since [^)]+\) to "
        r"release profile a's lock, a cfbackup run outside the scheduler \(at most 6h, "
        r"max_wait; it takes no --max-parallel slot meanwhile\)",
        waits[0],
    ), waits
    assert len(waits) == 1  # said once


def test_a_lock_held_outside_past_max_wait_gives_up_and_a_stop_names_the_wait(tmp_path, caplog):
    import logging

    from cfbackup_scheduler.spec import Schedule

    from cfbackup import lock

    caplog.set_level(logging.INFO, logger="cfbackup.scheduler")
    state = tmp_path / "state"
    schedules = [Schedule("a", None, 3600, 0, 60, max_wait=1), Schedule("b", None, 3600, 0, 60)]
    daemon, scheduler, log, codes = _fake_daemon(tmp_path, schedules, 1, state_dir=state)
    try:
        with (
            lock.profile_lock(state, "a", "restore", wait=0),
            lock.profile_lock(state, "b", "restore", wait=0),
        ):
            _due_now(scheduler, "a", "b")
            wait_for(lambda: "a" in codes, timeout=5, what="a to give up")
            wait_for(
                lambda: any(" waits for PID " in line for line in profile_lines(caplog, "b")),
                timeout=5,
                what="b to wait",
            )
            started = time.monotonic()
            daemon.stop("SIGTERM")
            assert time.monotonic() - started < 5
    finally:
        if not daemon._stopping:
            daemon.stop("the test's end")
    # a's child was started all the same, told it was given up on, to be recorded (the real
    # one fails at once: test_schedule_daemon.py, ..._is_recorded_and_fires_on_error); b's,
    # still waiting, not
    assert codes["a"] == 4  # what the fake child said
    assert "backup b" not in log.read_text() and "given up backup a" in log.read_text()
    assert "start backup a" not in log.read_text()
    gave_up = [line for line in profile_lines(caplog, "a") if "did not run" in line]
    assert re.fullmatch(
        r"profile a: the backup due at \S+ \S+( \S+)? did not run \(exit code 4\): PID \d+ "
        r"\(restore, since [^)]+\), a cfbackup run outside the scheduler, still held profile "
        r"a's lock after 1s \(max_wait\): it runs at its next time; check whether that run "
        r"hangs, or raise max_wait in \[profiles\.a\.schedule\] and reload the scheduler "
        rf"daemon \(kill -HUP {os.getpid()}\)",
        gave_up[0],
    ), gave_up
    stopped = [line for line in profile_lines(caplog, "b") if "did not run" in line]
    assert len(stopped) == 1 and re.search(
        r"it was still waiting for PID \d+ \(restore, since [^)]+\) to release profile b's "
        r"lock when the daemon stopped",
        stopped[0],
    ), stopped


def test_two_schedules_of_a_profile_at_the_same_time_are_warned_about(tmp_path, caplog):
    import logging

    from cfbackup_scheduler.spec import Schedule, parse_cron

    caplog.set_level(logging.INFO, logger="cfbackup.scheduler")
    nightly, sundays = parse_cron("30 2 * * *"), parse_cron("30 2 * * sun")
    schedules = [
        Schedule("web", nightly, None, 0, 60),
        Schedule("web", sundays, None, 0, 60, action="drill"),
        Schedule("db", nightly, None, 0, 60),  # another profile: not a clash
    ]
    daemon, scheduler, log, codes = _fake_daemon(tmp_path, schedules, max_parallel=1)
    daemon.stop("the test's end")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(
        "profiles.web.schedule (cron '30 2 * * *') and profiles.web.drill (cron '30 2 * * sun') "
        "fall due at the same time (next on "
    ), warnings


def test_a_given_up_run_whose_record_fails_is_one_error_line_with_the_child_s_reason(
    tmp_path, caplog
):
    """The child of a run given up on could not record it (a config broken since the daemon
    read it): its error line and the daemon's made two for one event. The daemon's line now
    carries the child's reason."""
    import logging
    from datetime import datetime

    from cfbackup_scheduler.daemon import Daemon
    from cfbackup_scheduler.spec import Schedule
    from cfbackup_scheduler.waiting import GivenUp

    caplog.set_level(logging.INFO, logger="cfbackup.scheduler")
    broken = (
        "import sys; print('cfbackup: error: profiles.web.target: not a URL: write "
        "swift://CONTAINER.'); sys.exit(3)"
    )
    drill = Schedule("web", None, 3600, 0, 60, action="drill", max_wait=1)
    daemon = Daemon(lambda: [drill], [sys.executable, "-c", broken], tmp_path / "c.toml")
    daemon.schedules = {drill.key: drill}
    given_up = GivenUp("the backup to finish", "the backup was still running after 1s")
    code = daemon._run_given_up(drill.key, given_up, datetime.now().astimezone(), 1.0)
    assert code == 3
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and re.fullmatch(
        r"profile web:drill: the drill due at \S+ \S+( \S+)? did not run \(given up: the "
        r"backup was still running after 1s\); recording it ended with: .+ \(exit code 3\): "
        r"profiles\.web\.target: not a URL: write swift://CONTAINER\.",
        errors[0],
    ), errors
