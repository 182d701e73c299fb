"""A restore duplicity could not finish for some entries (a device node on a machine without
CAP_MKNOD, a mount point in the way) exits 9 (PARTIAL) naming them and why, never 0 and
"restored": duplicity logs each as a warning and exits 0. What was restored stays."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess

import pytest
from support.cli import BIN, CliResult

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift  # make_config's fixtures; the profile's target is a file:// URL

AS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root (mknod, mount, setpriv)"
)


@pytest.fixture
def backed_up(tmp_path, make_config, cfbackup):
    """A profile ``main`` (no encryption, file:// target) backing up a device node among files."""
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (src / "dev").mkdir()
    (src / "dev" / "afile").write_text("before\n")
    os.mknod(src / "dev" / "mynull", 0o666 | 0o020000, os.makedev(1, 3))
    (src / "dev" / "zafter").write_text("after\n")
    config = make_config(
        source=src, target=f"file://{tmp_path}/backups", encryption='mode = "none"'
    )
    result = cfbackup("-c", config, "backup")
    assert result.returncode == 0, result
    return src, config


def _without_mknod(cli_env, *args) -> CliResult:
    """cfbackup as on a new machine (a container) where mknod is refused: no CAP_MKNOD."""
    return _without("mknod", cli_env, *args)


def _without(capability: str, cli_env, *args) -> CliResult:
    return CliResult(
        subprocess.run(
            [
                "setpriv",
                f"--inh-caps=-{capability}",
                f"--bounding-set=-{capability}",
                str(BIN / "cfbackup"),
            ]
            + [str(a) for a in args],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
    )


def _run_log(tmp_path) -> str:
    logs = sorted((tmp_path / "state" / "logs").glob("main-restore-*.log"), key=os.path.getmtime)
    return logs[-1].read_text()


@AS_ROOT
@pytest.mark.parametrize("path, time", [(None, None), ("dev", None), (None, "2099-01-01")])
def test_a_device_node_mknod_refuses_makes_the_restore_partial_and_named(
    tmp_path, backed_up, cli_env, path, time
):
    """It printed "dev restored to ..." and exited 0 with mynull missing. The restore it
    suggests keeps --time (it used to drop it: the entry came back as of the latest backup,
    beside a tree restored as of --time)."""
    _, config = backed_up
    out = tmp_path / "out"
    when = ("--time", time) if time else ()
    result = _without_mknod(
        cli_env, "-c", config, "restore", "main", out, *(("--path", path) if path else ()), *when
    )
    assert result.returncode == ExitCode.PARTIAL, result
    assert "1 entry could not be restored: dev/mynull (duplicity: Error running ['mknod'" in (
        result.stderr
    ), result
    assert "everything else was restored and is kept" in result.stderr, result
    again = f"(cfbackup -c {config} restore main {out} --path dev/mynull{' '.join(('', *when))})"
    assert again in result.stderr, result  # the fix, as it runs
    assert "Traceback" not in result.output
    dev = out / "dev"  # --path dev goes to TARGET/dev too
    assert sorted(os.listdir(dev)) == ["afile", "zafter"]  # the rest is restored and stays
    assert (dev / "zafter").read_text() == "after\n"
    assert "not restored: dev/mynull: Error running ['mknod'" in _run_log(tmp_path)


@AS_ROOT
@pytest.mark.parametrize("path", [None, "etc"])
def test_a_restore_that_may_not_set_owners_keeps_modes_and_times(
    tmp_path, backed_up, cli_env, path
):
    """Without CAP_CHOWN (any user but root; a container) duplicity's chown of each entry
    failed, which skipped its mode and times too (a 0600 file came back 0644) and, read as
    entries not restored, made the restore exit 9 for every file. Owners are now left to the
    restorer; modes and times come back; the restore succeeds."""
    src, config = backed_up
    secret = src / "etc" / "hosts"
    os.chown(secret, 1000, 1000)
    os.chmod(secret, 0o600)
    os.utime(secret, (1_700_000_000, 1_700_000_000))
    assert (
        subprocess.run([BIN / "cfbackup", "-c", config, "backup", "--full"], env=cli_env).returncode
        == 0
    )
    out = tmp_path / "out"
    result = _without(
        "chown", cli_env, "-c", config, "restore", "main", out, *(("--path", path) if path else ())
    )
    assert result.returncode == 0, result
    assert "could not be restored" not in result.output, result
    restored = os.stat(out / "etc" / "hosts")
    assert (restored.st_mode & 0o7777, restored.st_mtime) == (0o600, 1_700_000_000)
    assert restored.st_uid == 0  # the restorer's


@AS_ROOT
def test_a_mount_point_where_the_file_goes_is_refused_with_umount(tmp_path, backed_up, cfbackup):
    """An empty mount point where etc/hosts goes: duplicity could not replace it (EBUSY) and it
    said "etc/hosts restored to ..." with the empty mount point still there. A folder where the
    backup has a file is refused before anything changes; the fix for a mount point is to
    unmount it (mv cannot move one)."""
    _, config = backed_up
    target = tmp_path / "t"
    point = target / "etc" / "hosts"
    point.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "none", point], check=True)
    try:
        result = cfbackup("-c", config, "restore", "main", target, "--path", "etc/hosts")
        assert result.returncode == ExitCode.RESTORE_TARGET, result
        assert f"{point} is a folder and etc/hosts in the backup is a file, nothing was " in (
            result.stderr
        ), result
        assert f"(umount {point})" in result.stderr, result
        assert "restored to" not in result.stderr, result
        assert os.path.ismount(point) and not os.listdir(point)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(["umount", point], check=True)


@AS_ROOT
def test_a_drill_where_mknod_is_refused_says_so_not_that_the_backup_is_damaged(
    tmp_path, backed_up, cli_env
):
    """It found "dev/mynull: duplicity's restore did not produce it", exit 8, "the backup is
    damaged" and "backup --full starts a sound chain": a full backup cannot help there."""
    _, config = backed_up
    result = _without_mknod(cli_env, "-c", config, "drill", "main", "--sample", "100%")
    assert result.returncode == ExitCode.PARTIAL, result
    assert "could not check 1 file(s)" in result.stderr, result
    assert "duplicity could not restore dev/mynull here (Error running ['mknod'" in (result.stderr)
    assert "damaged" not in result.output and "--full" not in result.output, result
