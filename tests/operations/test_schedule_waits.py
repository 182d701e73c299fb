"""How the daemon's runs wait for a free --max-parallel slot, in process with fake runs: the
daemon of ``cfbackup_scheduler.daemon`` on a ``BackgroundScheduler``, its children small Python
scripts. How they wait for the profile's other run or a lock held outside the daemon is in
``test_schedule_profile_waits.py``."""

from __future__ import annotations

import re
import sys
import time

import pytest
from polling import wait_for
from schedule_helpers import profile_lines

# a scheduled "run": appends "start PROFILE" and "end PROFILE" lines to the file given as -c
_FAKE_RUN = """
import sys, time
log, profile = sys.argv[2], sys.argv[-1]
with open(log, "a") as f:
    f.write(f"start {profile}\\n")
time.sleep(1.5)
with open(log, "a") as f:
    f.write(f"end {profile}\\n")
"""


def test_a_run_waiting_for_its_turn_is_not_missed(tmp_path):
    """--max-parallel 1 and two profiles due at the same time, each run longer than the
    misfire grace time: the second waits for the first and then runs. It used to wait in
    APScheduler's executor queue, which counts that wait as lateness: past misfire_grace_time
    the run was dropped as missed, every night."""
    from apscheduler.events import EVENT_JOB_MISSED
    from apscheduler.schedulers.background import BackgroundScheduler
    from cfbackup_scheduler.daemon import Daemon
    from cfbackup_scheduler.spec import Schedule

    log = tmp_path / "runs.log"
    log.touch()
    schedules = [Schedule(name, None, 2, 0, 1) for name in ("first", "second")]
    daemon = Daemon(lambda: schedules, [sys.executable, "-c", _FAKE_RUN], log, max_parallel=1)
    scheduler = daemon.build_scheduler(BackgroundScheduler)
    missed = []
    scheduler.add_listener(lambda event: missed.append(event.job_id), EVENT_JOB_MISSED)
    daemon._apply(schedules)
    scheduler.start()
    try:
        wait_for(
            lambda: {"end first", "end second"} <= set(log.read_text().splitlines()),
            timeout=15,
            what="a run of each profile",
        )
    finally:
        daemon.stop("the test's end")
    assert missed == []
    running, most = 0, 0
    for line in log.read_text().splitlines():
        running += 1 if line.startswith("start ") else -1
        most = max(most, running)
    assert most == 1, log.read_text()  # --max-parallel 1 still holds


# a scheduled "run" like _FAKE_RUN: profile "long" holds its slot for 4 s, any other 0.2 s
_FAKE_LONG_RUN = _FAKE_RUN.replace("time.sleep(1.5)", 'time.sleep(4 if profile == "long" else 0.2)')


@pytest.fixture
def slot_held(tmp_path, caplog):
    """A daemon with --max-parallel 1 (a BackgroundScheduler, schedules an hour apart) whose
    slot is held by a 4 s run of "long"; ``due(name)`` makes a schedule due now."""
    import logging
    from datetime import UTC, datetime

    from apscheduler.schedulers.background import BackgroundScheduler
    from cfbackup_scheduler.daemon import Daemon
    from cfbackup_scheduler.spec import Schedule

    caplog.set_level(logging.INFO, logger="cfbackup.scheduler")
    log = tmp_path / "runs.log"
    log.touch()
    schedules = [
        Schedule("long", None, 3600, 0, 60),
        Schedule("short", None, 3600, 0, 60, max_wait=1),
        Schedule("patient", None, 3600, 0, 60),
    ]
    daemon = Daemon(lambda: schedules, [sys.executable, "-c", _FAKE_LONG_RUN], log, max_parallel=1)
    scheduler = daemon.build_scheduler(BackgroundScheduler)
    daemon._apply(schedules)
    scheduler.start()

    def due(name):
        scheduler.modify_job(name, next_run_time=datetime.now(UTC))

    try:
        due("long")
        wait_for(lambda: "start long" in log.read_text(), timeout=5, what="the long run")
        yield daemon, due, log
    finally:
        if not daemon._stopping:
            daemon.stop("the test's end")


def test_a_run_waiting_longer_than_max_wait_is_skipped_and_logged(slot_held, caplog):
    """A run waited for a free slot without bound: behind a stuck or very long run, runs piled
    up and started hours late. Past its schedule's max_wait it is now skipped, as missed."""
    daemon, due, log = slot_held
    due("short")  # max_wait 1 s, while "long" holds the only slot for 4 s
    missed = wait_for(
        lambda: [line for line in profile_lines(caplog, "short") if "was missed" in line],
        timeout=3.5,
        what="the waiting run to be skipped",
    )
    assert "end long" not in log.read_text()  # skipped while the slot was still held
    assert re.fullmatch(
        r"profile short: the backup due at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d( \S+)? was missed: "
        r"it waited [12]s for a free slot, longer than its max_wait 1s, while other runs "
        r"held all 1 \(--max-parallel\): "
        r"it runs at its next time; look for a run that hangs, or raise --max-parallel or "
        r"max_wait",
        missed[0],
    ), missed[0]
    assert [r.levelname for r in caplog.records if "was missed" in r.getMessage()] == ["ERROR"]
    wait_for(lambda: "end long" in log.read_text(), timeout=6, what="the long run's end")
    time.sleep(0.5)
    assert "start short" not in log.read_text()  # not run late once the slot was free


def test_a_run_due_again_while_it_waits_is_not_queued_twice(slot_held, caplog):
    daemon, due, log = slot_held
    due("patient")  # no max_wait: waits for "long"
    wait_for(
        lambda: any("waiting for a free slot" in line for line in profile_lines(caplog, "patient")),
        timeout=3,
        what="the run to wait",
    )
    due("patient")
    skipped = wait_for(
        lambda: [line for line in profile_lines(caplog, "patient") if "was skipped" in line],
        timeout=2,
        what="the second run to be coalesced",
    )
    assert "the previous one is still waiting for a free slot" in skipped[0], skipped
    wait_for(lambda: "end patient" in log.read_text(), timeout=8, what="the waiting run")
    assert log.read_text().count("start patient") == 1


def test_a_run_still_waiting_at_shutdown_is_named(slot_held, caplog):
    """SIGTERM used to drop the runs waiting for a slot without a word."""
    daemon, due, log = slot_held
    due("patient")
    wait_for(
        lambda: any("waiting for a free slot" in line for line in profile_lines(caplog, "patient")),
        timeout=3,
        what="the run to wait",
    )
    started = time.monotonic()
    daemon.stop("SIGTERM")
    assert time.monotonic() - started < 5
    dropped = [line for line in profile_lines(caplog, "patient") if "did not run" in line]
    assert len(dropped) == 1, profile_lines(caplog, "patient")
    assert re.fullmatch(
        r"profile patient: the backup due at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d( \S+)? did not run: it "
        r"was still waiting for a free slot when the daemon stopped \(it runs at its next time\)",
        dropped[0],
    ), dropped[0]
    assert "start patient" not in log.read_text()


def test_the_stop_line_says_what_becomes_of_each_interrupted_run(tmp_path, caplog):
    """It said "(the backup resumes at its next run)" of a drill too: a drill does not resume,
    it runs again at its next time."""
    import logging
    from datetime import UTC, datetime

    from apscheduler.schedulers.background import BackgroundScheduler
    from cfbackup_scheduler.daemon import Daemon
    from cfbackup_scheduler.spec import Schedule

    caplog.set_level(logging.INFO, logger="cfbackup.scheduler")
    log = tmp_path / "runs.log"
    log.touch()
    schedules = [  # two profiles: one profile's runs wait for each other
        Schedule("demo", None, 3600, 0, 60),
        Schedule("web", None, 3600, 0, 60, action="drill"),
    ]
    slow = _FAKE_RUN.replace("time.sleep(1.5)", "time.sleep(60)")  # until the stop's SIGTERM
    daemon = Daemon(lambda: schedules, [sys.executable, "-c", slow], log, max_parallel=2)
    scheduler = daemon.build_scheduler(BackgroundScheduler)
    daemon._apply(schedules)
    scheduler.start()
    try:
        for name in ("demo", "web:drill"):
            scheduler.modify_job(name, next_run_time=datetime.now(UTC))
        wait_for(
            lambda: log.read_text().count("start ") == 2 and len(daemon._children) == 2,
            timeout=5,
            what="the backup and the drill to run",
        )
    finally:
        daemon.stop("SIGTERM")
    stopping = [r.getMessage() for r in caplog.records if "received: stopping" in r.getMessage()]
    assert len(stopping) == 1 and stopping[0].startswith("SIGTERM received: stopping; "), stopping
    interrupted = stopping[0].split("; interrupting ", 1)[1].split(", ")
    assert sorted(interrupted) == [
        "demo (the backup resumes at its next run)",
        "web:drill (the drill runs again at its next time)",
    ], stopping
