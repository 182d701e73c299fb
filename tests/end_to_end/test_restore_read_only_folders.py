"""Restores, as a user who is not root, of a backup whose folders are read-only (mode 0555).

Without root's CAP_DAC_OVERRIDE nothing can be moved out of, or removed from, a folder its
owner may not write: the staged restore (``restore_merge.py``) must still be moved into place
and its staging folder removed. The tests drop every capability (``setpriv``) so that root runs
cfbackup as an ordinary user would.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest
from support.cli import BIN

pytestmark = pytest.mark.swift  # make_config's fixtures; the profile's target is a file:// URL

AS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv"
)


def _as_a_user(cli_env, here, *args) -> subprocess.CompletedProcess:
    """cfbackup ARGS in folder ``here`` with no capability: as a user who is not root."""
    return subprocess.run(
        ["setpriv", "--inh-caps=-all", "--bounding-set=-all", str(BIN / "cfbackup"), *args],
        cwd=here,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _backed_up(tmp_path, make_config, cfbackup, files: dict[str, str], read_only) -> str:
    """A backup (file://, unencrypted) of ``src`` holding ``files``, then the folders named in
    ``read_only`` (relative, "" for ``src`` itself) made 0555; returns the config."""
    src = tmp_path / "src"
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    for folder in read_only:
        os.chmod(src / folder, 0o555)
    config = make_config(
        source=src, target=f"file://{tmp_path}/backups", encryption='mode = "none"'
    )
    assert cfbackup("-c", config, "backup").returncode == 0
    return config


@AS_ROOT
@pytest.mark.parametrize("force", [False, True])
def test_read_only_folders_restore_into_the_current_folder_as_a_user(
    tmp_path, make_config, cfbackup, cli_env, force
):
    """``cfbackup restore PROFILE .`` of a source whose top folder and a subfolder are 0555
    exited 12 ("moving the restored files into ... failed ... (Permission denied): restore
    into an empty directory instead", typed in one) and left its staging folder, which no
    later restore could remove either; with --force, so did a merge into a folder already
    there. Now they restore, the folders keep the backup's modes, and nothing is left."""
    files = {"ro/f": "in a read-only folder\n", "top.txt": "top\n"}
    config = _backed_up(tmp_path, make_config, cfbackup, files, read_only=("ro", ""))
    here = tmp_path / "restore"
    here.mkdir()
    if force:  # what is there already: a file of the user's, and the read-only folder's name
        (here / "mine.txt").write_text("mine\n")
        (here / "ro").mkdir()
        (here / "ro" / "old").write_text("old\n")
    done = _as_a_user(cli_env, here, "-c", config, "restore", "main", ".", *(["--force"] * force))
    try:
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        assert (here / "top.txt").read_text() == "top\n"
        assert (here / "ro" / "f").read_text() == "in a read-only folder\n"
        assert _mode(here) == 0o555 and _mode(here / "ro") == 0o555
        assert [p.name for p in here.iterdir() if p.name.startswith(".cfbackup")] == []
        if force:
            assert (here / "mine.txt").read_text() == "mine\n"
            assert (here / "ro" / "old").read_text() == "old\n"
    finally:
        for folder in (here, *here.rglob("*")):
            if folder.is_dir() and not folder.is_symlink():
                os.chmod(folder, 0o755)


@AS_ROOT
def test_restore_force_again_over_read_only_folders_as_a_user(
    tmp_path, make_config, cfbackup, cli_env
):
    """``restore --force`` over what the same restore left (a read-only folder there already,
    as the backup has it) stopped part-way as a user: the restored files could not move into
    the 0555 folder (Permission denied), exit 12, a kept staging folder, and the retry it
    suggested failed the same way. Now the folder takes them and keeps the backup's mode."""
    files = {"ro/f": "in a read-only folder\n", "a.txt": "moved before ro\n"}
    config = _backed_up(tmp_path, make_config, cfbackup, files, read_only=("ro",))
    here = tmp_path / "restore"
    here.mkdir()
    try:
        first = _as_a_user(cli_env, tmp_path, "-c", config, "restore", "main", str(here))
        assert first.returncode == 0, first.stderr
        assert _mode(here / "ro") == 0o555
        (here / "ro" / "mine").mkdir(mode=0o555)  # the user's own, in the read-only folder
        (here / "a.txt").write_text("changed since\n")
        again = _as_a_user(
            cli_env, tmp_path, "-c", config, "restore", "main", str(here), "--force"
        )
        assert again.returncode == 0, again.stderr
        assert (here / "a.txt").read_text() == "moved before ro\n"
        assert (here / "ro" / "f").read_text() == "in a read-only folder\n"
        assert _mode(here / "ro") == 0o555 and _mode(here / "ro" / "mine") == 0o555
        assert [p.name for p in here.iterdir() if p.name.startswith(".cfbackup")] == []
    finally:
        for folder in (here, *here.rglob("*")):
            if folder.is_dir() and not folder.is_symlink():
                os.chmod(folder, 0o755)


@AS_ROOT
@pytest.mark.parametrize("made", [False, True])
def test_a_failed_restore_of_read_only_folders_as_a_user_leaves_nothing(
    tmp_path, make_config, cfbackup, cli_env, made
):
    """A restore into a new folder, or an empty one, that fails part-way (a corrupt last
    volume) removes what it wrote, so that the retry needs no --force. As a user, a read-only
    folder it had restored could not be emptied (rmtree, errors ignored): the new folder
    stayed with part of the backup in it, and the empty one was no longer empty."""
    src = tmp_path / "src"
    (src / "a_ro").mkdir(parents=True)
    (src / "a_ro" / "small").write_text("restored first\n")
    (src / "a_ro" / "big").write_bytes(os.urandom(1_500_000))
    (src / "z").mkdir()
    (src / "z" / "big").write_bytes(os.urandom(1_500_000))
    os.chmod(src / "a_ro", 0o555)
    config = make_config(
        source=src,
        target=f"file://{tmp_path}/backups",
        encryption='mode = "none"',
        extra="volsize = 1\n",
    )
    assert cfbackup("-c", config, "backup").returncode == 0
    volumes = sorted(
        (tmp_path / "backups").glob("*.vol*.difftar.gz"),
        key=lambda p: int(p.name.split(".vol")[1].split(".")[0]),
    )
    assert len(volumes) > 2
    volumes[-1].write_bytes(os.urandom(1000))  # the last volume: corrupt
    here = tmp_path / "restore"
    if made:
        here.mkdir()
    try:
        done = _as_a_user(cli_env, tmp_path, "-c", config, "restore", "main", str(here))
        assert done.returncode == 7 and "is corrupt" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        if made:
            assert list(here.iterdir()) == []
        else:
            assert not os.path.lexists(here)
    finally:
        for folder in (here, *here.rglob("*")) if here.exists() else ():
            if folder.is_dir() and not folder.is_symlink():
                os.chmod(folder, 0o755)


@AS_ROOT
def test_read_only_folders_restore_into_a_target_whose_name_is_not_utf8_as_a_user(
    tmp_path, make_config, cfbackup, cli_env
):
    """A target whose path is not UTF-8 (caf\\xe9) is restored beside it, then moved there:
    as a user, a read-only (0555) top folder could not be renamed to another parent,
    shutil.move copied it and failed to remove the copy (exit 1, an internal error and a
    traceback) and left its staging folder. It moves, keeping the backup's modes."""
    files = {"ro/f": "in a read-only folder\n", "top.txt": "top\n"}
    config = _backed_up(tmp_path, make_config, cfbackup, files, read_only=("ro", ""))
    here = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9")
    try:
        done = _as_a_user(cli_env, tmp_path, "-c", config, "restore", "main", here)
        assert done.returncode == 0, done.stderr
        with open(os.path.join(here, "ro", "f")) as restored:
            assert restored.read() == "in a read-only folder\n"
        assert _mode(here) == 0o555 and _mode(os.path.join(here, "ro")) == 0o555
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cfbackup")] == []
    finally:
        for folder, _, _ in os.walk(tmp_path):
            os.chmod(folder, 0o755)
