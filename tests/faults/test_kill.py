"""kill -9 in the middle of a backup, as a crash or the OOM killer does: the next run resumes
the interrupted set (no stale lock, cfbackup's or duplicity's; the volumes already at the
target are not uploaded again but the last one) and the restore is byte-identical."""

from __future__ import annotations

import os
import random
import signal

import pytest
from faultkit import FRONT_ENDS, wait_for, write_tree
from procwatch import alive, cmdline, descendants, duplicity_child
from support.resume import assert_resumed, volume_stamps
from support.trees import assert_same_tree

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.faults, pytest.mark.swift]


def kill_mid_upload(setup, kind: str) -> dict[str, str]:
    """kill -9 a backup (cfbackup and duplicity) in the middle of uploading a ``kind`` set,
    three volumes in (so that duplicity can resume rather than start again); returns the
    volumes then at the target."""
    setup.spawn_until_uploading(kind, volumes=3).kill_group()
    assert setup.lock_is_free(), "a killed run left its profile lock held"
    return volume_stamps(setup.listing(), kind)


def resume(setup, kind: str, before: dict[str, str]) -> None:
    """The next run resumes the killed set, finds the killed run and records it."""
    result = setup.run("backup")
    assert result.returncode == 0, result
    assert "the run ended without recording its outcome" in result.stderr  # found the killed run
    assert_resumed(before, volume_stamps(setup.listing(), kind), setup.last_log())
    failure = setup.status()["last_failure"]
    assert failure["exit_code"] == ExitCode.INTERRUPTED and "killed" in failure["message"]


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_kill_9_mid_full_and_mid_incremental_then_resume(front_end, make_setup, tmp_path,
                                                          no_secret_anywhere):
    """Both front-ends through a killed full; the incremental part (the same code path once
    the command line is parsed) only through cfbackup, to keep the suite short."""
    setup = make_setup(front_end)
    write_tree(setup.source, mb=6)

    resume(setup, "full", kill_mid_upload(setup, "full"))

    if not setup.legacy:
        (setup.source / "plain.txt").write_text("changed after the full backup\n")
        (setup.source / "data" / "new.bin").write_bytes(random.Random(9).randbytes(6 << 20))
        resume(setup, "inc", kill_mid_upload(setup, "inc"))

    # the argv watch saw the runs it guards (duplicity's backups run for seconds)
    assert no_secret_anywhere.saw("cfbackup-duplicity", " backup ", "--archive-dir")
    out = tmp_path / "restored"
    result = setup.run("restore", out)
    assert result.returncode == 0, result
    assert_same_tree(setup.source, out)
    rows = setup.assert_history(ExitCode.INTERRUPTED, ExitCode.OK)
    killed = [r for r in rows if r["exit_code"] == ExitCode.INTERRUPTED]
    assert len(killed) == (1 if setup.legacy else 2), rows
    assert all("killed" in r["message"] for r in killed), rows


@pytest.mark.parametrize("pool", [False, True], ids=["", "upload-pool"])
def test_kill_9_of_cfbackup_alone_takes_duplicity_with_it(make_setup, pool):
    """duplicity gets SIGTERM when cfbackup dies (PR_SET_PDEATHSIG), so no orphan keeps
    uploading or holds duplicity's lock on the archive dir; the next run resumes its set. The
    processes of duplicity's upload pool (--concurrency) die with duplicity in turn."""
    # without: none, whatever upload_workers "auto" would make of a loaded loopback
    setup = make_setup(
        extra='extra_options = ["--concurrency=1"]\n' if pool else "upload_workers = 0\n"
    )
    write_tree(setup.source, mb=6)
    run = setup.spawn_until_uploading(volumes=3)
    child = duplicity_child(run.pid, "backup")
    assert child, f"no duplicity child of {run.pid}"
    workers = [p for p in descendants(child) if "--multiprocessing-fork" in cmdline(p)]
    assert bool(workers) == pool, [cmdline(p) for p in descendants(child)]
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    wait_for(lambda: not alive(child), 10, f"duplicity (pid {child}) to die with cfbackup")
    wait_for(lambda: not any(map(alive, workers)), 10, f"its upload pool {workers} to die too")

    resume(setup, "full", volume_stamps(setup.listing(), "full"))
    setup.assert_history(ExitCode.INTERRUPTED, ExitCode.OK)
