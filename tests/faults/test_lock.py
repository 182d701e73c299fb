"""Two runs of one profile never overlap: the second is refused at once, names the holder, and
the first completes. Different profiles do not wait for each other."""

from __future__ import annotations

import json
import os
import re
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


def test_status_during_a_backup_shows_the_chains_and_the_backup_completes(make_setup):
    """status runs without the profile lock, beside a backup: it reads the chains without
    duplicity, whose archive-dir lock the backup's duplicity holds. It exits 0, shows the
    chains and the running backup, and the backup completes. (status ran duplicity's
    collection-status: it failed with exit 4, or made a backup starting during it fail.)"""
    setup = make_setup("cfbackup")
    write_tree(setup.source, mb=2)
    assert setup.run("backup").returncode == 0
    (setup.source / "data" / "more.bin").write_bytes(os.urandom(2 << 20))  # an incremental
    first = setup.spawn_until_uploading("inc")
    archive_lock = next(setup.archive_dir.rglob("lockfile"))  # duplicity's, in the archive dir
    with first.frozen():  # mid-upload: both locks held until the block ends
        status = setup.run("status")
        assert status.returncode == 0, status
        assert f"running: a backup of {setup.profile} (PID {first.pid}, since " in status.stdout
        # the chain being extended is "no-sig" until the new set's signatures are written
        # (duplicity's collection-status says the same), "complete" after
        assert re.search(r"^  chain \((complete|no-sig)\): full ", status.stdout, re.M), status
        report = setup.run("status", "--json")
        assert report.returncode == 0, report
        data = json.loads(report.stdout)
        assert data["running"]["pid"] == first.pid and data["running"]["chains_shown"]
        assert [s["type"] for c in data["chains"] for s in c["sets"]][0] == "full"
        assert data["last_full"] and not data["broken"]
        assert archive_lock.exists()
    assert first.wait() == 0, first.output()
    after = json.loads(setup.run("status", "--json").stdout)
    assert after["running"] is None and after["last_incremental"], after
