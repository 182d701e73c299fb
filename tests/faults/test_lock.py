"""Two runs of one profile never overlap: the second is refused at once, names the holder, and
the first completes. Different profiles do not wait for each other."""

from __future__ import annotations

import json
import time

import pytest
from faultkit import FRONT_ENDS, error_line, wait_for, write_tree
from procwatch import duplicity_child

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.faults, pytest.mark.swift]


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_second_run_is_refused_and_the_first_completes(front_end, make_setup, webhook):
    profiles = ("main", "other")  # a native config holds a second, independent profile
    setup = make_setup(front_end, profiles=profiles, notify_url=webhook.url)
    write_tree(setup.source, mb=2)
    lock = setup.state_dir / "locks" / f"{setup.profile}.lock"

    first = setup.spawn("backup")
    wait_for(lambda: duplicity_child(first.pid, "backup"), 60, "the first run's duplicity")
    assert json.loads(lock.read_text())["pid"] == first.pid
    with first.frozen():  # the first run holds the lock, mid-run, until the block ends
        started = time.monotonic()
        second = setup.run("backup")
        elapsed = time.monotonic() - started
        assert second.returncode == ExitCode.LOCKED, second
        line = error_line(second)
        assert f"PID {first.pid}" in line and "locked by another cfbackup run" in line
        assert elapsed < 30, f"the second run waited {elapsed:.0f} s instead of failing at once"
        if setup.legacy:  # the same profile through cfbackup -c ~/.dt-cf-backup.conf
            other_front = setup.run("cli", "backup")
            assert other_front.returncode == ExitCode.LOCKED, other_front
        else:  # another profile runs to the end while this one is held
            other = setup.run("backup", "other")
            assert other.returncode == 0, other
    assert first.wait() == 0, first.output()
    setup.assert_history(ExitCode.LOCKED, ExitCode.OK)
    if not setup.legacy:  # a refused run is a failure, and notified as one
        assert webhook.failures() == [("backup", ExitCode.LOCKED)]
