"""A full local disk under duplicity's temp dir or archive dir (a real 2 MB tmpfs): a clear
error, nothing inconsistent left at the target, and the next run with space completes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from faultkit import error_line, write_tree
from support.trees import assert_same_tree

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.faults, pytest.mark.swift]


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` but ``leave`` bytes (rounded to tmpfs pages)."""
    import os

    stats = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(bytes(stats.f_bavail * stats.f_frsize - leave))
    return filler


def test_temp_dir_then_archive_dir_full(make_setup, small_disk, webhook, tmp_path):
    tempdir, archive = small_disk("tmp"), small_disk("archive")
    setup = make_setup(extra=f'tempdir = "{tempdir}"\n', notify_url=webhook.url)
    write_tree(setup.source, mb=3)

    # the temp dir cannot hold a volume: duplicity's own check stops it before any upload
    result = setup.run("backup")
    assert result.returncode == ExitCode.DUPLICITY, result
    assert "no space left on the local disk" in error_line(result)
    assert "bytes free in the temp dir" in error_line(result)
    assert not setup.volumes("full")

    # the archive dir (duplicity's cache of manifests and signatures) fills up mid-run
    text = setup.config.read_text().replace(f'tempdir = "{tempdir}"\n', "")
    setup.config.write_text(text.replace(str(setup.archive_dir), str(archive / "cache")))
    filler = fill(archive, leave=16 << 10)
    result = setup.run("backup")
    assert result.returncode == ExitCode.DUPLICITY, result
    assert "no space left on the local disk" in error_line(result)

    filler.unlink()  # space again: the next run completes what is at the target
    result = setup.run("backup")
    assert result.returncode == 0, result
    status = json.loads(setup.run("status", "--json").stdout)
    assert not status["broken"] and not status["incomplete_sets"], status
    out = tmp_path / "restored"
    assert setup.run("restore", out).returncode == 0
    assert_same_tree(setup.source, out)
    setup.assert_history(ExitCode.DUPLICITY, ExitCode.OK)
    assert webhook.failures() == [("backup", ExitCode.DUPLICITY)] * 2  # each failure notified


def test_restore_target_full(make_setup, small_disk, tmp_path):
    """The restore's own disk (a 2 MB tmpfs) cannot hold the 3 MB tree: one clear error, and
    what the failed restore wrote is removed (the target held nothing before)."""
    setup = make_setup()
    write_tree(setup.source, mb=3)
    assert setup.run("backup").returncode == 0
    target = small_disk("restore") / "srv"
    result = setup.run("restore", target)
    assert result.returncode == ExitCode.DUPLICITY, result
    line = error_line(result)
    assert "no space left on the local disk" in line, line
    assert f"the filesystem of {target} (mounted at {target.parent}) is full" in line, line
    assert "archive dir" not in line, line  # a backup's message: a restore names its target
    assert not target.exists() or not any(target.iterdir()), sorted(target.rglob("*"))
    setup.assert_history(ExitCode.DUPLICITY)
    # with space, the same restore completes
    out = tmp_path / "restored"
    assert setup.run("restore", out).returncode == 0
    assert_same_tree(setup.source, out)


def test_restore_force_target_full_keeps_the_old_tree(make_setup, small_disk, tmp_path):
    """--force restores beside the old tree before moving it into place: the sentence says it
    needs room for both, and the old files are untouched."""
    setup = make_setup()
    write_tree(setup.source, mb=3)
    assert setup.run("backup").returncode == 0
    target = small_disk("restore")
    (target / "old.txt").write_text("the live file\n")
    result = setup.run("restore", target, "--force")
    assert result.returncode == ExitCode.DUPLICITY, result
    line = error_line(result)
    assert f"the filesystem of {target} (mounted at {target}) is full" in line, line
    assert "--force needs room for the restored tree on top of the one it replaces" in line
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert (target / "old.txt").read_text() == "the live file\n"
