"""``restore --force`` over live files: nothing is lost, nothing is left half-done.

Each test builds what a damaged server has (a folder where the backup has a file, a symlink,
a separate mount, a read-only disk, a restore killed with -9) and checks that cfbackup either
restores exactly what the backup holds or refuses in one sentence with the target untouched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import time

import pytest
from support.trees import snapshot

from cfbackup.errors import ExitCode

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


def test_one_file_over_a_folder_is_refused_and_the_folder_kept(tmp_path, backed_up, cfbackup):
    """It used to delete the folder (with the staging folder inside it) and restore nothing;
    with / as the destination that was shutil.rmtree("/")."""
    src, config = backed_up
    keep = tmp_path / "keep"
    (keep / "b").mkdir(parents=True)
    (keep / "a").write_text("precious a\n")
    (keep / "b" / "c").write_text("precious c\n")
    before = snapshot(keep)
    result = cfbackup(
        "-c", config, "--restore-file", "etc/hosts", keep, "--force", program="dt-cf-backup"
    )
    assert result.returncode == ExitCode.RESTORE_TARGET, result
    assert f"give the file's own path as the destination, such as {keep / 'hosts'}" in (
        result.stderr
    ), result
    assert snapshot(keep) == before and not _staging_left(keep)

    result = cfbackup(
        "-c",
        config,
        "--restore-file",
        "etc/hosts",
        keep / "hosts",
        "--force",
        program="dt-cf-backup",
    )
    assert result.returncode == 0, result
    assert (keep / "hosts").read_text() == "127.0.0.1 localhost\n"
    assert (keep / "a").read_text() == "precious a\n" and not _staging_left(tmp_path)

    # cfbackup restore --path: the same path under TARGET is a folder
    target = tmp_path / "t2"
    (target / "etc" / "hosts").mkdir(parents=True)
    (target / "etc" / "hosts" / "inside").write_text("inside\n")
    before = snapshot(target)
    result = cfbackup("-c", config, "restore", "main", target, "--path", "etc/hosts", "--force")
    assert result.returncode == ExitCode.RESTORE_TARGET, result
    assert f"{target}/etc/hosts is a folder and etc/hosts in the backup is a file" in (
        result.stderr
    ), result
    assert snapshot(target) == before and not _staging_left(target)


def test_a_clash_anywhere_is_refused_before_anything_moves(tmp_path, backed_up, cfbackup):
    src, config = backed_up
    target = tmp_path / "t"
    (target / "etc").mkdir(parents=True)
    (target / "etc" / "hosts").write_text("old hosts\n")  # would be replaced: must not be
    (target / "etc" / "nginx").write_text("a file where the backup has a folder\n")
    (tmp_path / "elsewhere").mkdir()
    (target / "data").symlink_to(tmp_path / "elsewhere")
    (target / "top.txt").write_text("old top\n")
    before = snapshot(target)
    result = cfbackup("-c", config, "restore", "main", target, "--force")
    assert result.returncode == ExitCode.RESTORE_TARGET, result
    line = result.stderr
    assert "nothing was changed" in line, line
    assert f"{target}/etc/nginx is a file where the backup has a folder" in line, line
    assert f"{target}/data is a symlink where the backup has a folder" in line, line
    assert snapshot(target) == before and not _staging_left(target)
    assert not any((tmp_path / "elsewhere").iterdir())


def test_force_merge_brings_back_folder_times_and_owners(tmp_path, backed_up, cfbackup):
    src, config = backed_up
    target = tmp_path / "t"
    (target / "data").mkdir(parents=True)
    (target / "data" / "a").write_text("damaged\n")
    (target / "etc").mkdir()
    (target / "only-here").write_text("kept\n")
    result = cfbackup("-c", config, "restore", "main", target, "--force")
    assert result.returncode == 0, result
    assert (target / "data" / "a").read_text() == "data a\n"
    assert (target / "only-here").read_text() == "kept\n"
    for folder in ("data", "etc", "etc/nginx", "."):
        assert int((target / folder).stat().st_mtime) == int(OLD), folder
    if os.geteuid() == 0:
        assert ((target / "data").stat().st_uid, (target / "data").stat().st_gid) == (1234, 1234)
    assert not _staging_left(target)


def test_a_symlink_to_a_folder_as_target_is_refused_at_once(tmp_path, backed_up, cfbackup):
    """The whole tree and one path alike (before: `--path etc/hosts` wrote through the
    symlink, into the folder it points to); the printed command restores there as printed."""
    src, config = backed_up
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    for path in ((), ("--path", "etc/hosts")):
        for force in ((), ("--force",)):
            result = cfbackup("-c", config, "restore", "main", link, *path, *force)
            assert result.returncode == ExitCode.RESTORE_TARGET, result
            command = shlex.join(["cfbackup", "-c", str(config), "restore", "main", str(real)])
            command = shlex.join([*shlex.split(command), *path, *force])
            assert (
                f"{link} is a symlink to {real}: give {real} as the target ({command})."
                in result.stderr
            ), result
            assert link.is_symlink() and not any(real.iterdir())
    result = cfbackup(*shlex.split(command)[1:])
    assert result.returncode == 0, result
    assert (real / "etc" / "hosts").read_text() == "127.0.0.1 localhost\n"


def test_a_file_in_the_way_of_the_path_is_named(tmp_path, backed_up, cfbackup):
    src, config = backed_up
    target = tmp_path / "t9"
    target.mkdir()
    (target / "etc").write_text("a file\n")
    result = cfbackup("-c", config, "restore", "main", target, "--path", "etc/nginx/nginx.conf")
    assert result.returncode == ExitCode.RESTORE_TARGET, result
    assert f"{target}/etc is a file where the restore needs a folder" in result.stderr, result
    assert (target / "etc").read_text() == "a file\n"


@contextlib.contextmanager
def _tmpfs(path, *options: str):
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(("size=8m", *options)), "tmpfs", str(path)],
        check=True,
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@AS_ROOT
def test_a_mount_inside_the_target_is_copied_across(tmp_path, backed_up, cfbackup):
    """restore / --force on a server with a separate /var: os.replace gives EXDEV there."""
    src, config = backed_up
    target = tmp_path / "t"
    target.mkdir()
    (target / "top.txt").write_text("old top\n")
    with _tmpfs(target / "data") as data:
        (data / "a").write_text("damaged\n")
        (data / "only-here").write_text("kept\n")
        result = cfbackup("-c", config, "restore", "main", target, "--force")
        assert result.returncode == 0, result
        assert (data / "a").read_text() == "data a\n"
        assert (data / "sub" / "b").read_text() == "data b\n"
        assert (data / "only-here").read_text() == "kept\n"
        assert (data.stat().st_uid, int(data.stat().st_mtime)) == (1234, int(OLD))
        assert (target / "etc" / "hosts").read_text() == "127.0.0.1 localhost\n"
        assert not _staging_left(target)


@AS_ROOT
def test_a_move_failing_part_way_keeps_the_rest_and_says_where(tmp_path, backed_up, cfbackup):
    src, config = backed_up
    target = tmp_path / "t"
    (target / "etc").mkdir(parents=True)
    (target / "etc" / "hosts").write_text("old hosts\n")
    (target / "top.txt").write_text("old top\n")
    subprocess.run(["chattr", "+i", str(target / "etc")], check=True)  # EPERM on a move in
    try:
        result = cfbackup("-c", config, "restore", "main", target, "--force")
    finally:
        subprocess.run(["chattr", "-i", str(target / "etc")], check=True)
    assert result.returncode == ExitCode.RESTORE_TARGET, result
    line = result.stderr
    assert "stopped part-way" in line and "Operation not permitted" in line, line
    kept = [p for p in target.iterdir() if p.name.startswith(".cfbackup-restore-kept-")]
    assert len(kept) == 1, sorted(target.iterdir())
    assert f"the rest of the restore is kept in {kept[0]}/restored" in line, line
    assert f"{target}/data".encode() in (kept[0] / "moved.nul").read_bytes().split(b"\0")
    assert (target / "data" / "a").read_text() == "data a\n"  # moved before the failure
    assert (kept[0] / "restored" / "etc" / "hosts").read_text() == "127.0.0.1 localhost\n"
    assert (kept[0] / "restored" / "top.txt").read_text() == "top\n"

    # the command it prints finishes the restore by hand
    command = re.search(r"finish by hand \((cp -a [^)]*)\)", line)[1]
    subprocess.run(command, shell=True, check=True)
    assert (target / "etc" / "hosts").read_text() == "127.0.0.1 localhost\n"
    assert (target / "top.txt").read_text() == "top\n"
    # and so does the restore it prints, -c FILE and --force kept
    again = re.search(r"run the restore again \((cfbackup [^)]*)\), then delete", line)[1]
    assert again == shlex.join(
        ["cfbackup", "-c", str(config), "restore", "main", str(target), "--force"]
    )
    assert cfbackup(*shlex.split(again)[1:]).returncode == 0


@AS_ROOT
def test_a_read_only_target_names_the_remount(tmp_path, backed_up, cfbackup):
    src, config = backed_up
    with _tmpfs(tmp_path / "ro", "ro") as mount:
        for target in (mount / "srv", mount):  # to be made in it; the mount point itself
            result = cfbackup("-c", config, "restore", "main", target)
            assert result.returncode == ExitCode.RESTORE_TARGET, result
            assert (
                f"{target} is on a read-only file system: remount it read-write "
                f"(mount -o remount,rw {mount}) or restore elsewhere" in result.stderr
            ), result


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


@pytest.mark.parametrize("force", [(), ("--force",)])
def test_a_symlink_above_the_path_is_never_written_through(tmp_path, backed_up, cfbackup, force):
    """Before: with TARGET/etc a symlink to a live folder (a restore of the backup's own
    symlinks leaves such as var/run -> /run), `--path etc/hosts --force` replaced the live
    hosts file, and without --force created one there."""
    src, config = backed_up
    live = tmp_path / "live"
    live.mkdir()
    if force:
        (live / "hosts").write_text("LIVE\n")
    target = tmp_path / "tsl"
    target.mkdir()
    (target / "etc").symlink_to(live)
    before = snapshot(live)
    result = cfbackup("-c", config, "restore", "main", target, "--path", "etc/hosts", *force)
    assert result.returncode == ExitCode.RESTORE_TARGET, result
    link = target / "etc"
    assert f"{link} is a symlink where the backup has a folder, nothing was changed" in (
        result.stderr
    ), result
    assert snapshot(live) == before and (target / "etc").is_symlink()
    # the command it prints makes the next restore work
    command = re.search(r"move it away \((mv [^)]*)\)", result.stderr)[1]
    subprocess.run(command, shell=True, check=True)
    result = cfbackup("-c", config, "restore", "main", target, "--path", "etc/hosts", *force)
    assert result.returncode == 0, result
    assert (target / "etc" / "hosts").read_text() == "127.0.0.1 localhost\n"
    assert snapshot(live) == before


def test_a_folder_where_the_backup_has_a_file_is_refused_every_time(tmp_path, backed_up, cfbackup):
    """Before: an empty folder was replaced by the file without --force; a folder that was not
    empty was first told "add --force", then, with --force, "give the file's own path"."""
    src, config = backed_up
    target = tmp_path / "te"
    (target / "etc" / "hosts").mkdir(parents=True)
    for force in ((), ("--force",)):
        result = cfbackup("-c", config, "restore", "main", target, "--path", "etc/hosts", *force)
        assert result.returncode == ExitCode.RESTORE_TARGET, result
        assert f"{target}/etc/hosts is a folder and etc/hosts in the backup is a file" in (
            result.stderr
        ), result
        assert (target / "etc" / "hosts").is_dir() and not any((target / "etc" / "hosts").iterdir())
        assert not _staging_left(target)

    legacy = ("-c", config, "--restore-file", "etc/hosts")
    empty, full = tmp_path / "te4", tmp_path / "te3"
    empty.mkdir()
    (full / "x").mkdir(parents=True)
    for folder in (empty, full):
        for force in ((), ("--force",)):
            result = cfbackup(*legacy, folder, *force, program="dt-cf-backup")
            assert result.returncode == ExitCode.RESTORE_TARGET, result
            fix = f"give the file's own path as the destination, such as {folder}/hosts"
            assert fix in result.stderr, result
            assert folder.is_dir() and not _staging_left(folder)
    assert not any(empty.iterdir()) and [p.name for p in full.iterdir()] == ["x"]

    # with a trailing slash: into that folder, as cp reads it
    result = cfbackup(*legacy, f"{empty}/", program="dt-cf-backup")
    assert result.returncode == 0, result
    assert (empty / "hosts").read_text() == "127.0.0.1 localhost\n"


def test_a_restore_into_an_empty_folder_of_the_path_still_works(tmp_path, backed_up, cfbackup):
    """The runbook's mkdir first: a folder of the backup restored into an empty folder."""
    src, config = backed_up
    target = tmp_path / "tn"
    (target / "etc" / "nginx").mkdir(parents=True)
    result = cfbackup("-c", config, "restore", "main", target, "--path", "etc/nginx")
    assert result.returncode == 0, result
    assert (target / "etc" / "nginx" / "nginx.conf").read_text() == "worker_processes 1;\n"
    assert int((target / "etc" / "nginx").stat().st_mtime) == int(OLD)
    assert not _staging_left(target)


def test_a_newline_in_the_target_keeps_a_failure_on_one_line(tmp_path, backed_up, cfbackup):
    """Before: run_restore's "TARGET...: File name too long" split at the newline. (The name
    too long is the target's: a --path the backup lacks is refused before, exit 5.)"""
    src, config = backed_up
    target = tmp_path / "t\nnl" / ("x" * 300)
    result = cfbackup("-c", config, "restore", "main", target, "--path", "etc/nginx")
    assert result.returncode == ExitCode.RESTORE_TARGET, result
    assert result.stderr.count("\n") == 1 and "t\\x0anl" in result.stderr, result


@pytest.mark.parametrize("path", ["etc/hosts", "etc/nginx/nginx.conf"])
def test_a_symlink_made_after_the_first_check_is_refused_too(tmp_path, cfbackup, make_config, path):
    """A before_restore hook (or anything else) putting the symlink there after the checks
    made before the hooks: refused right before duplicity, nothing written through it. Without
    that second check, etc/hosts went straight to live/hosts, and etc/nginx/nginx.conf made
    live/nginx first (exit 0 both times)."""
    src = tmp_path / "src"
    (src / "etc" / "nginx").mkdir(parents=True)
    (src / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (src / "etc" / "nginx" / "nginx.conf").write_text("worker_processes 1;\n")
    live, target = tmp_path / "live", tmp_path / "tr"
    live.mkdir()
    target.mkdir()
    more = f'[profiles.main.command_hooks]\nbefore_restore = ["ln -s {live} {target}/etc"]\n'
    config = make_config(
        source=src, target=f"file://{tmp_path}/backups", encryption='mode = "none"', more=more
    )
    assert cfbackup("-c", config, "backup").returncode == 0
    result = cfbackup("-c", config, "restore", "main", target, "--path", path)
    assert result.returncode == ExitCode.RESTORE_TARGET, result
    link = target / "etc"
    assert f"{link} is a symlink where the backup has a folder, nothing was changed" in (
        result.stderr
    ), result
    assert not any(live.iterdir()) and link.is_symlink()
    # the command it prints runs as printed and moves the symlink itself, not what it points to
    command = re.search(r"move it away \((mv [^)]*)\)", result.stderr)[1]
    assert command == f"mv {link} {link}.old", command
    subprocess.run(command, shell=True, check=True)
    assert not os.path.lexists(link) and (target / "etc.old").is_symlink()
    assert not any(live.iterdir())
