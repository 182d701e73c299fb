"""The gpg-ahead patch (cfbackup/duplicity/patches/gpg_ahead.py) with real gpg, duplicity and
Swift: a multi-volume full whose volumes' gpgs were started ahead restores byte for byte with
plain duplicity, and the spare gpg is gone, its file too, after a success and after Ctrl-C or
SIGTERM in the middle of the backup (what cfbackup sends duplicity when it is interrupted or
killed)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from faultkit import wait_for, write_tree
from procwatch import alive, descendants
from support.trees import assert_same_tree

from cfbackup.duplicity import launcher

pytestmark = [pytest.mark.faults, pytest.mark.swift]

STARTED = re.compile(r"gpg-ahead: started gpg (\d+) ahead into (\S+)")
ADOPTED = "gpg-ahead: adopted the gpg started ahead for "


def _full(tmp_path: Path, env: dict, container: str) -> subprocess.Popen:
    """cfbackup's launcher (core's patches) running a full with 1 MB volumes, -v9 for the
    patch's own lines, on stdout."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    argv = [*launcher.command(), "full", "-v9", "--volsize", "1", "--name", "ahead",
            "--archive-dir", str(tmp_path / "archive"), "--tempdir", str(tmp_path / "tmp"),
            str(tmp_path / "src"), f"swift://{container}"]
    return subprocess.Popen(argv, env={**env, "PYTHONUNBUFFERED": "1"}, text=True,
                            errors="replace", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _spares(output: str) -> list[tuple[int, str]]:
    return [(int(pid), name) for pid, name in STARTED.findall(output)]


def _assert_spares_gone(spares: list[tuple[int, str]]) -> None:
    assert spares, "no gpg was started ahead"
    for pid, name in spares:
        assert not alive(pid), f"the spare gpg {pid} outlived duplicity"
        assert not os.path.exists(name), f"the spare's file {name} was left behind"


def test_volumes_encrypted_ahead_restore_with_plain_duplicity(tmp_path, dup_env):
    src = write_tree(tmp_path / "src", mb=5)
    run = _full(tmp_path, dup_env, "gpg-ahead-ok")
    output, _ = run.communicate(timeout=180)
    assert run.returncode == 0, output[-3000:]

    spares = _spares(output)
    assert output.count(ADOPTED) >= 3, output[-3000:]  # volumes 2, 3... used a spare
    _assert_spares_gone(spares)
    assert list((tmp_path / "tmp").iterdir()) == []  # duplicity could remove its temp dir

    # plain duplicity, none of cfbackup's patches, restores it
    env = {k: v for k, v in dup_env.items() if k != "CFBACKUP_DUPLICITY_PATCHES"}
    restore = subprocess.run(
        [str(Path(sys.executable).parent / "duplicity"), "restore", "--name", "plain",
         "--archive-dir", str(tmp_path / "plain-archive"), "swift://gpg-ahead-ok",
         str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert restore.returncode == 0, restore.stdout[-2000:] + restore.stderr[-2000:]
    assert_same_tree(src, tmp_path / "out")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_spare_is_gone_after_an_interrupted_backup(tmp_path, dup_env, sig):
    write_tree(tmp_path / "src", mb=8)
    run = _full(tmp_path, dup_env, f"gpg-ahead-{sig.name.lower()}")
    seen: list[str] = []
    while not seen or not STARTED.search(seen[-1]):  # the run is alive while it writes
        seen.append(run.stdout.readline())
        assert seen[-1], "".join(seen)[-3000:]  # duplicity ended before starting a spare
    children = descendants(run.pid)  # the volume's gpg and the spare, while they run
    run.send_signal(sig)
    output = "".join(seen) + run.communicate(timeout=60)[0]

    assert run.returncode == (-signal.SIGTERM if sig == signal.SIGTERM else 4), output[-3000:]
    _assert_spares_gone(_spares(output))
    wait_for(lambda: not any(alive(pid) for pid in children), 10, "duplicity's gpgs to end")
    assert "Processed volume 8" not in output  # it was stopped mid-backup
    if sig == signal.SIGINT:  # duplicity cleans up (SIGTERM kills it: its temp dir stays)
        assert list((tmp_path / "tmp").iterdir()) == []
