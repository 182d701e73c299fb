"""``restore --force`` over live files: nothing is lost, nothing is left half-done.

Each test builds what a damaged server has (a folder where the backup has a file, a symlink,
a separate mount, a read-only disk, a restore killed with -9) and checks that cfbackup either
restores exactly what the backup holds or refuses in one sentence with the target untouched.
"""

from __future__ import annotations

import os
import time

import pytest

pytestmark = pytest.mark.swift  # make_config's fixtures; the profile's target is a file:// URL

AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount, chown, chattr)")
OLD = time.mktime((2020, 1, 2, 3, 4, 5, 0, 0, -1))  # a folder time a restore must bring back


@pytest.fixture
def backed_up(tmp_path, make_config, cfbackup):
    """A profile ``main`` (no encryption, file:// target) and one backup of ``src``."""
    src = tmp_path / "src"
    (src / "etc" / "nginx").mkdir(parents=True)
    (src / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (src / "etc" / "nginx" / "nginx.conf").write_text("worker_processes 1;\n")
    (src / "data" / "sub").mkdir(parents=True)
    (src / "data" / "a").write_text("data a\n")
    (src / "data" / "sub" / "b").write_text("data b\n")
    (src / "top.txt").write_text("top\n")
    if os.geteuid() == 0:
        os.chown(src / "data", 1234, 1234)
    for folder in ("data", "etc/nginx", "etc", "."):
        os.utime(src / folder, (OLD, OLD))
    config = make_config(
        source=src, target=f"file://{tmp_path}/backups", encryption='mode = "none"'
    )
    result = cfbackup("-c", config, "backup")
    assert result.returncode == 0, result
    return src, config


def _staging_left(folder) -> list[str]:
    return sorted(str(p) for p in folder.rglob(".cfbackup-restore-*"))


def test_a_staging_folder_left_by_kill_9_is_never_backed_up_and_is_removed(
    tmp_path, backed_up, cfbackup
):
    """A restore --force into the live source killed with -9 leaves its staging folder there;
    the next backup must not take it, and the next restore there removes it (its pid is
    dead)."""
    src, config = backed_up
    stale = src / ".cfbackup-restore-99999999-abc123"  # pid beyond pid_max: dead
    (stale / "restored").mkdir(parents=True)
    (stale / "restored" / "leak.txt").write_text("a copy of the restore\n")
    kept = src / ".cfbackup-restore-kept-99999999-def456"  # kept on purpose by a failed merge
    kept.mkdir()
    result = cfbackup("-c", config, "backup")
    assert result.returncode == 0, result
    listing = cfbackup("-c", config, "list", "main")
    assert listing.returncode == 0, listing
    assert "cfbackup-restore" not in listing.stdout, listing.stdout

    result = cfbackup("-c", config, "restore", "main", src, "--force")
    assert result.returncode == 0, result
    assert not stale.exists() and kept.is_dir()
