"""Restores read a copy cfbackup fetches ahead while duplicity restores (cfbackup/prefetch.py):
only the volumes a path needs, a full and its incrementals in duplicity's order, a point in
time, no room for the copy, Ctrl-C. Every restore is compared byte for byte, and no copy is left
behind."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest
from faultkit import error_line, wait_for, write_tree
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


def test_ctrl_c_mid_restore_removes_the_copy_and_the_partial_tree(make_setup, tmp_path):
    setup = make_setup()
    write_tree(setup.source, mb=12)
    assert setup.run("backup").returncode == 0
    out = tmp_path / "restored"
    run = setup.spawn("restore", out)
    copy = setup.state_dir / "restore"
    wait_for(
        lambda: any(copy.glob("*/main/copy/*.difftar")) or run.process.poll() is not None,
        timeout=120,
        what="a volume in the copy",
        step=0.02,
    )
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
    assert run.wait() == ExitCode.INTERRUPTED, run.output()
    assert "Traceback" not in run.output()
    assert not out.exists(), "an interrupted restore left a partial tree"
    _no_copy_left(setup)
    assert not [p for p in Path(copy).rglob("*") if p.is_file()]
