"""Restores read a copy cfbackup fetches ahead while duplicity restores (cfbackup/prefetch.py):
only the volumes a path needs, a full and its incrementals in duplicity's order, a point in
time, no room for the copy, Ctrl-C. Every restore is compared byte for byte, and no copy is left
behind."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from faultkit import error_line, wait_for, write_tree
from procwatch import duplicity_child
from support.trees import assert_same_tree

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.faults, pytest.mark.swift]


def _prefetched(setup) -> tuple[int, int]:
    """(volumes needed, volumes in the chain) from the newest restore's run log."""
    logs = sorted((setup.state_dir / "logs").glob("*-restore-*.log"), key=os.path.getmtime)
    found = re.search(r"prefetch: (\d+) of (\d+) volumes needed", logs[-1].read_text())
    assert found, f"no prefetch in {logs[-1]}"
    return int(found[1]), int(found[2])


def _no_copy_left(setup) -> None:
    folder = setup.state_dir / "restore"
    assert not folder.exists() or not any(folder.iterdir()), list(folder.iterdir())


def test_chain_path_and_point_in_time(make_setup, tmp_path):
    setup = make_setup()
    write_tree(setup.source, mb=4)  # about 5 volumes of 1 MB: random data does not compress
    assert setup.run("backup").returncode == 0
    before = tmp_path / "before"
    shutil.copytree(setup.source, before, symlinks=True)
    time.sleep(1.1)  # duplicity's times have one-second resolution
    between = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
    time.sleep(1.1)
    big = setup.source / "data" / "random-1.bin"
    with open(big, "r+b") as handle:  # rewrite a block in the middle: an incremental's volumes
        handle.seek(2 << 20)
        handle.write(os.urandom(1 << 20))
    (setup.source / "data" / "later.bin").write_bytes(os.urandom(1536 << 10))
    assert setup.run("backup").returncode == 0

    latest = tmp_path / "latest"
    assert setup.run("restore", latest).returncode == 0
    assert_same_tree(setup.source, latest)
    needed, total = _prefetched(setup)
    assert needed == total > 5, (needed, total)

    one = tmp_path / "one"
    assert setup.run("restore", one, "--path", "plain.txt").returncode == 0
    assert (one / "plain.txt").read_bytes() == (setup.source / "plain.txt").read_bytes()
    needed, total = _prefetched(setup)
    assert needed < total, (needed, total)  # the first volume of each set that holds it

    old = tmp_path / "old"
    assert setup.run("restore", old, "--time", between).returncode == 0
    assert_same_tree(before, old)
    _no_copy_left(setup)


def test_no_room_for_the_copy_is_one_sentence(make_setup, small_disk, tmp_path):
    """The copy and duplicity's temp dir share a folder: under state_dir, or under tempdir."""
    setup = make_setup()
    write_tree(setup.source, mb=2)
    assert setup.run("backup").returncode == 0
    state = small_disk("small-state")  # 2 MB: duplicity wants room for 2.3 volumes of 200 MB
    config = setup.config.read_text().replace(str(setup.state_dir), str(state))
    setup.config.write_text(config)
    out = tmp_path / "restored"
    result = setup.run("restore", out)
    assert result.returncode == ExitCode.DUPLICITY, result
    line = error_line(result)
    assert "no space left on the local disk" in line and "set tempdir" in line, line
    assert not out.exists(), "a failed restore left a partial tree"
    assert not any((state / "restore").iterdir())

    roomy = tmp_path / "roomy"
    setup.config.write_text(config.replace("volsize = 1", f'volsize = 1\ntempdir = "{roomy}"'))
    assert setup.run("restore", out).returncode == 0  # as the sentence said
    assert_same_tree(setup.source, out)
    assert not any((roomy / "restore").iterdir())


@pytest.mark.parametrize("target", ["new", "empty folder"])
def test_ctrl_c_mid_restore_removes_the_copy_and_the_partial_tree(make_setup, tmp_path, target):
    """Into a folder made first (the runbook's way) the folder stays, empty as it was: the
    same restore runs again without --force."""
    setup = make_setup()
    write_tree(setup.source, mb=12)
    assert setup.run("backup").returncode == 0
    out = tmp_path / "restored"
    if target == "empty folder":
        out.mkdir()
    run = setup.spawn("restore", out)
    copy = setup.state_dir / "restore"
    wait_for(
        lambda: any(copy.glob("*/main/copy/*.difftar")) or run.process.poll() is not None,
        timeout=120,
        what="a volume in the copy",
        step=0.02,
    )
    if target == "empty folder":  # duplicity has begun to write into it
        wait_for(
            lambda: any(p.is_file() for p in out.rglob("*")) or run.process.poll() is not None,
            timeout=60,
            what="a restored file",
            step=0.01,
        )
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
    assert run.wait() == ExitCode.INTERRUPTED, run.output()
    assert "Traceback" not in run.output()
    if target == "new":
        assert not out.exists(), "an interrupted restore left a partial tree"
    else:
        assert out.is_dir() and not any(out.iterdir()), "an interrupted restore left a tree"
    _no_copy_left(setup)
    assert not [p for p in Path(copy).rglob("*") if p.is_file()]


def _log_of(run_log_dir: Path) -> str:
    logs = sorted(run_log_dir.glob("*-restore-*.log"), key=os.path.getmtime)
    return logs[-1].read_text() if logs else ""


RETRIED = re.compile(
    r"restore: fetching \S+ failed, trying again in 2 s \(try 2 of 3\): cannot reach Swift")


def _outage_mid_prefetch(setup, out: Path):
    """Spawn a restore; once its first volume is in the copy, hold duplicity (the prefetch stops
    with volumes ahead) and stop Swift's proxy, then let duplicity go on: the next downloads
    find Swift unreachable. Returns the run."""
    run = setup.spawn("restore", out)
    copy = setup.state_dir / "restore"
    wait_for(lambda: any(copy.glob("*/main/copy/*.difftar")) or run.process.poll() is not None,
             timeout=120, what="a volume in the copy", step=0.02)
    duplicity = wait_for(lambda: duplicity_child(run.pid, "restore"), 30, "the restore's duplicity")
    os.kill(duplicity, signal.SIGSTOP)
    try:
        setup.swift.stop_proxy()
    finally:
        os.kill(duplicity, signal.SIGCONT)
    return run


def test_a_swift_outage_mid_prefetch_is_tried_again_and_one_that_persists_ends_the_restore(
    make_setup, tmp_path
):
    """A download that fails on Swift (its proxy down, after swiftclient's own retries) is tried
    again as the profile's duplicity options say (here 3 tries, 2 s apart); the outage over,
    the restore completes byte for byte. An outage that outlasts the tries ends the restore with
    exit 10 and one sentence, no partial tree and no copy left."""
    setup = make_setup(extra='extra_options = ["--num-retries=3", "--backend-retry-delay", "2"]\n')
    write_tree(setup.source, mb=12)  # about 13 volumes: more than the 4 fetched ahead
    assert setup.run("backup").returncode == 0
    logs = setup.state_dir / "logs"

    out = tmp_path / "restored"
    run = _outage_mid_prefetch(setup, out)
    try:
        wait_for(lambda: RETRIED.search(_log_of(logs)), timeout=90,
                 what="a download to be tried again")
    finally:
        setup.swift.start_proxy()
    assert run.wait() == 0, run.output()
    assert RETRIED.search(run.output()), "the retry was not announced on stderr"
    assert_same_tree(setup.source, out)
    _no_copy_left(setup)

    out = tmp_path / "never"
    run = _outage_mid_prefetch(setup, out)
    try:
        code = run.wait(timeout=240)
    finally:
        setup.swift.start_proxy()
    output = run.output()
    assert code == ExitCode.BACKEND, output
    errors = [line for line in output.splitlines() if line.startswith("cfbackup: error:")]
    assert len(errors) == 1 and "Swift" in errors[0], output
    tries = [int(n) for n in re.findall(r"trying again in 2 s \(try (\d) of 3\)", output)]
    assert tries and max(tries) == 3, output  # the third try was the last
    assert not out.exists(), "a failed restore left a partial tree"
    _no_copy_left(setup)


def test_force_into_a_mount_point_restores_on_its_filesystem(make_setup, tmp_path):
    """``--force`` into a folder that is a filesystem of its own (a database's volume; a fresh
    ext4 holds lost+found, so it is never empty): the restore is staged inside it. Staged
    beside it, on the parent's filesystem, moving it in failed (EXDEV) after the whole restore,
    as an internal error, and threw the restored tree away."""
    setup = make_setup()
    write_tree(setup.source, mb=3)
    assert setup.run("backup").returncode == 0
    mount = tmp_path / "volume"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)], check=True)
    try:
        (mount / "lost+found").mkdir()
        result = setup.run("restore", mount, "--force")
        assert result.returncode == 0, result
        assert (mount / "lost+found").is_dir()  # what only the target held stays
        shutil.rmtree(mount / "lost+found")
        assert_same_tree(setup.source, mount)  # nothing of the staging is left either
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)
