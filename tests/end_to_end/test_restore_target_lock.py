"""Two restores into one folder, of two profiles (two config files over the same backup): the
second is refused at once (exit 4), naming the folder and the first restore's PID, and the
folder holds the first restore only. Before, the profile lock saw nothing (another profile,
another state_dir): with ``--force``, or the first run as ``restore main .`` inside the folder,
both merged beside each other and exited 0.

The first restore is held deterministically: a gpg on PATH that waits, on its first decrypt,
until the test lets it go (the restore is then inside duplicity, its staging folder there).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from support.cli import BIN
from support.trees import snapshot

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift  # make_config's fixtures; the target is a file:// URL


@pytest.fixture
def two_configs(tmp_path, make_config, cfbackup):
    """One backup of ``src`` (profile ``main``, config.toml) and a second config file over the
    same backup (profile ``other``, its own state_dir): no profile lock is shared."""
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (src / "top.txt").write_text("top\n")
    config = make_config(source=src, target=f"file://{tmp_path}/backups")
    assert cfbackup("-c", config, "backup").returncode == 0
    text = config.read_text().replace("[profiles.main", "[profiles.other")
    other = tmp_path / "other.toml"
    other.write_text(text.replace(f'"{tmp_path}/state"', f'"{tmp_path}/state2"'))
    other.chmod(0o600)
    return config, other


class HeldRestore:
    """``cfbackup restore`` started in the background, held in its first gpg decrypt until
    ``release()``."""

    def __init__(self, tmp_path: Path, cli_env: dict, args: list, cwd: Path | None = None):
        gate = tmp_path / f"gate-{time.monotonic_ns()}"
        gate.mkdir()
        self.started, self.go = gate / "started", gate / "go"
        gpg = gate / "gpg"
        gpg.write_text(
            "#!/bin/sh\n"
            f'case "$*" in *--decrypt*) touch {self.started}; i=0\n'
            f"  while [ ! -e {self.go} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done;;\n"
            f'esac\nexec {shutil.which("gpg")} "$@"\n'
        )
        gpg.chmod(0o755)
        self.process = subprocess.Popen(
            [str(BIN / "cfbackup"), *map(str, args)],
            env={**cli_env, "PATH": f"{gate}:{cli_env['PATH']}"},
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not self.started.exists():
            assert self.process.poll() is None, self.process.communicate()
            assert time.monotonic() < deadline, "the restore never reached gpg"
            time.sleep(0.05)

    def release(self) -> tuple[int, str]:
        self.go.touch()
        _, stderr = self.process.communicate(timeout=300)
        return self.process.returncode, stderr

    def stop(self) -> None:
        self.go.touch()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.mark.parametrize("second", [["--force"], []], ids=["force", "plain"])
@pytest.mark.parametrize("first", ["--force", "."])
def test_a_restore_of_another_profile_into_a_folder_being_restored_into_is_refused(
    tmp_path, two_configs, cfbackup, cli_env, first, second
):
    """Without --force too, the second restore hears of the first: not that the first's files
    (or its hidden staging folder) make the folder "not empty", which --force then merged."""
    config, other = two_configs
    folder = tmp_path / "restore"
    folder.mkdir()
    (folder / "mine.txt").write_text("the user's own file\n")
    if first == "--force":
        held = HeldRestore(tmp_path, cli_env, ["-c", config, "restore", "main", folder, "--force"])
    else:  # typed inside the folder: staged in a hidden folder there, moved in at the end
        (folder / "mine.txt").unlink()
        held = HeldRestore(tmp_path, cli_env, ["-c", config, "restore", "main", "."], cwd=folder)
    try:
        before = snapshot(folder)
        refused = cfbackup("-c", other, "restore", "other", folder, *second)
        assert refused.returncode == ExitCode.LOCKED, refused
        assert refused.stderr == (
            f"cfbackup: error: {folder} is being restored into by another restore (PID "
            f"{held.process.pid}): wait for it to finish (the lock is released when that "
            "process ends), or restore into another folder.\n"
        ), refused
        assert snapshot(folder) == before  # nothing touched
        code, stderr = held.release()
    finally:
        held.stop()
    assert code == 0, stderr
    assert (folder / "etc" / "hosts").read_text() == "127.0.0.1 localhost\n"
    assert not list(folder.glob(".cfbackup-restore-*"))
    if first == "--force":
        assert (folder / "mine.txt").read_text() == "the user's own file\n"
    # the folder is free again: the same restore of the other profile now runs
    again = cfbackup("-c", other, "restore", "other", folder, "--force")
    assert again.returncode == 0, again


def test_a_restore_inside_or_around_a_folder_being_restored_into_is_refused(
    tmp_path, two_configs, cfbackup, cli_env
):
    """A folder inside another restore's folder, or one holding it, is refused too (the two
    would write into the same place); a sibling folder restores meanwhile."""
    config, other = two_configs
    outer = tmp_path / "restore"
    inner = outer / "etc"
    inner.mkdir(parents=True)
    held = HeldRestore(tmp_path, cli_env, ["-c", config, "restore", "main", inner])
    try:
        around = cfbackup("-c", other, "restore", "other", outer, "--force")
        assert around.returncode == ExitCode.LOCKED, around
        assert around.stderr == (
            f"cfbackup: error: {inner} is being restored into by another restore (PID "
            f"{held.process.pid}), inside {outer}: wait for it to finish (the lock is released "
            "when that process ends), or restore into another folder.\n"
        ), around
        deeper = cfbackup("-c", other, "restore", "other", inner / "new")
        assert deeper.returncode == ExitCode.LOCKED, deeper
        assert deeper.stderr == (
            f"cfbackup: error: {inner} is being restored into by another restore (PID "
            f"{held.process.pid}), and {inner / 'new'} is inside it: wait for it to finish "
            f"(the lock is released when that process ends), or restore into a folder "
            f"outside {inner}.\n"
        ), deeper
        assert not (inner / "new").exists()  # the folder made to lock it is gone again
        beside = cfbackup("-c", other, "restore", "other", outer / "beside")
        assert beside.returncode == 0, beside
        code, stderr = held.release()
    finally:
        held.stop()
    assert code == 0, stderr
    assert (inner / "etc" / "hosts").exists() and (outer / "beside" / "top.txt").exists()


def test_a_dt_cf_backup_restore_into_a_folder_being_restored_into_is_refused(
    tmp_path, two_configs, cfbackup, cli_env
):
    """The old front-end's restore goes through the same lock: another backup, another state,
    the same folder."""
    config, _ = two_configs
    (tmp_path / "old-src").mkdir()
    (tmp_path / "old-src" / "old.txt").write_text("old\n")
    old = tmp_path / "old.conf"
    old.write_text(
        f'ROOT="{tmp_path}/old-src"\nDEST="file://{tmp_path}/old-dest"\nINCLIST=()\n'
        f"EXCLIST=()\nENCRYPTION='no'\nLOGDIR=\"{tmp_path}/old-logs/\"\n"
    )
    old.chmod(0o600)
    home = tmp_path / "old-home"
    home.mkdir()
    env = {**cli_env, "HOME": str(home)}
    assert cfbackup("-c", old, "-b", program="dt-cf-backup", env=env).returncode == 0
    folder = tmp_path / "restore"
    folder.mkdir()
    held = HeldRestore(tmp_path, cli_env, ["-c", config, "restore", "main", folder, "--force"])
    try:
        refused = cfbackup(
            "-c", old, "--force", "--restore", folder, program="dt-cf-backup", env=env
        )
        assert refused.returncode == ExitCode.LOCKED, refused
        assert (
            f"{folder} is being restored into by another restore (PID {held.process.pid}): "
            "wait for it to finish" in refused.stderr
        ), refused
        assert not (folder / "old.txt").exists()
        code, stderr = held.release()
    finally:
        held.stop()
    assert code == 0, stderr
    assert not (folder / "old.txt").exists()
