"""The gpg-ahead patch (cfbackup/duplicity/patches/gpg_ahead.py) with real gpg, duplicity and
Swift: the volumes, the signatures and the manifest of a set are written by gpgs started ahead,
and a full and an incremental so written restore byte for byte with plain duplicity; a spare
nobody adopts is gone, its file and directory too, after a success, a failed upload, and Ctrl-C
or SIGTERM in the middle of the backup (what cfbackup sends duplicity when it is interrupted or
killed); what SIGKILL leaves in the archive dir, the next backup removes."""

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
from swiftclient import client as swiftclient

from cfbackup.duplicity import launcher

pytestmark = [pytest.mark.faults, pytest.mark.swift]

# "... into FILE" for a volume's spare, "... into FILE for TARGET" for the signatures' and the
# manifest's
STARTED = re.compile(r"gpg-ahead: started gpg (\d+) ahead into (\S+)(?: for (\S+))?")
ADOPTED = "gpg-ahead: adopted the gpg started ahead for "
SET_FILES = (r"duplicity-(full|new)-signatures\.\S+\.sigtar\.gpg",
             r"duplicity-(full|inc)\.\S+\.manifest\.gpg")


def _backup(tmp_path: Path, env: dict, container: str, action: str = "full",
            *options: str) -> subprocess.Popen:
    """cfbackup's launcher (core's patches) running a backup with 1 MB volumes, -v9 for the
    patch's own lines, on stdout."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    argv = [*launcher.command(), action, "-v9", "--volsize", "1", "--name", "ahead", *options,
            "--archive-dir", str(tmp_path / "archive"), "--tempdir", str(tmp_path / "tmp"),
            str(tmp_path / "src"), f"swift://{container}"]
    return subprocess.Popen(argv, env={**env, "PYTHONUNBUFFERED": "1"}, text=True,
                            errors="replace", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(run: subprocess.Popen) -> str:
    output, _ = run.communicate(timeout=180)
    assert run.returncode == 0, output[-3000:]
    return output


def _spares(output: str) -> list[tuple[int, str, str | None]]:
    """(pid, its file, the set's file it is for or None for a volume) of each spare started."""
    return [(int(pid), name, target or None) for pid, name, target in STARTED.findall(output)]


def _for_set_files(output: str) -> list[str]:
    """The signatures and the manifest spares were started for, both present."""
    targets = [target for _, _, target in _spares(output) if target]
    for pattern in SET_FILES:
        assert [t for t in targets if re.search(pattern, t)], (pattern, output[-3000:])
    return targets


def _assert_spares_gone(output: str) -> None:
    """Every spare nobody adopted was killed before duplicity ended (an adopted one is the
    gpg of duplicity's file), and no spare's file or directory is left."""
    spares = _spares(output)
    assert spares, "no gpg was started ahead"
    adopted = {int(pid) for pid in re.findall(re.escape(ADOPTED) + r"\S+ \(gpg (\d+)\)", output)}
    for pid, name, target in spares:
        assert pid in adopted or not alive(pid), f"the spare gpg {pid} outlived duplicity"
        assert not os.path.exists(name), f"the spare's file {name} was left behind"
        if target:  # the set files' spares write into a directory of their own
            assert not os.path.exists(os.path.dirname(name)), f"{name}'s directory was left"


def _assert_set_written_ahead(output: str, tmp_path: Path) -> None:
    """The set's first volume, its signatures and its manifest were each encrypted by a gpg
    started before duplicity came to that file; no spare is left."""
    first_volume = output.index("Processed volume 1")
    adopted_volumes = [m.start() for m in re.finditer(re.escape(ADOPTED + str(tmp_path / "tmp")),
                                                      output)]
    assert adopted_volumes and adopted_volumes[0] < first_volume, output[-3000:]
    for target in _for_set_files(output):
        assert ADOPTED + target in output, output[-3000:]
    _assert_spares_gone(output)
    assert list((tmp_path / "tmp").iterdir()) == []  # duplicity could remove its temp dir
    # only duplicity's own files: no temp dir of its or gpg-ahead's in the archive dir
    assert [p.name for p in (tmp_path / "archive" / "ahead").iterdir() if p.is_dir()] == []


def test_sets_encrypted_ahead_restore_with_plain_duplicity(tmp_path, dup_env):
    src = write_tree(tmp_path / "src", mb=4)
    output = _finish(_backup(tmp_path, dup_env, "gpg-ahead-ok"))
    assert output.count(ADOPTED) >= 5, output[-3000:]  # volumes 1-4..., signatures, manifest
    _assert_set_written_ahead(output, tmp_path)

    # an incremental, its upload pool started after the spares (which must not hold their
    # pipes open): its one volume, signatures and manifest too
    (src / "data" / "changed.txt").write_text("changed after the full\n" * 1000)
    output = _finish(_backup(tmp_path, dup_env, "gpg-ahead-ok", "incr", "--concurrency", "2"))
    _assert_set_written_ahead(output, tmp_path)

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

    # nothing changed and --skip-if-no-change: the set's files are never sent, their spares
    # are killed at exit
    output = _finish(_backup(tmp_path, dup_env, "gpg-ahead-ok", "incr", "--skip-if-no-change"))
    assert "Skipped volume upload" in output, output[-3000:]
    targets = _for_set_files(output)
    assert not [t for t in targets if ADOPTED + t in output], output[-3000:]
    _assert_spares_gone(output)
    assert [p.name for p in (tmp_path / "archive" / "ahead").iterdir() if p.is_dir()] == []


def test_the_spares_are_gone_after_a_failed_upload(tmp_path, dup_env, local_swift):
    """Swift refuses the first volume (the container's quota): duplicity ends with the error
    before the set's end, which would have adopted the signatures' and the manifest's spares."""
    write_tree(tmp_path / "src", mb=3)
    user, key = local_swift.users["user"]
    conn = swiftclient.Connection(authurl=local_swift.auth_url, user=user, key=key,
                                  auth_version="1", retries=0)
    conn.put_container("gpg-ahead-quota", headers={"X-Container-Meta-Quota-Bytes": "100000"})
    run = _backup(tmp_path, dup_env, "gpg-ahead-quota")
    output, _ = run.communicate(timeout=180)

    assert run.returncode != 0 and "413" in output, output[-3000:]
    assert "Processed volume 1" not in output
    targets = _for_set_files(output)
    assert not [t for t in targets if ADOPTED + t in output], output[-3000:]
    _assert_spares_gone(output)
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_spares_are_gone_after_an_interrupted_backup(tmp_path, dup_env, sig):
    write_tree(tmp_path / "src", mb=8)
    run = _backup(tmp_path, dup_env, f"gpg-ahead-{sig.name.lower()}")
    seen: list[str] = []
    # the run is alive while it writes a volume, with the next volume's spare started, and the
    # signatures' and the manifest's spares waiting for the set's end
    while not (seen and ADOPTED in "".join(seen) and STARTED.search(seen[-1])
               and STARTED.search(seen[-1]).group(3) is None):
        seen.append(run.stdout.readline())
        assert seen[-1], "".join(seen)[-3000:]  # duplicity ended before starting a spare
    children = descendants(run.pid)  # the volume's gpg and the spares, while they run
    run.send_signal(sig)
    output = "".join(seen) + run.communicate(timeout=60)[0]

    assert run.returncode == (-signal.SIGTERM if sig == signal.SIGTERM else 4), output[-3000:]
    _for_set_files("".join(seen))
    _assert_spares_gone(output)
    wait_for(lambda: not any(alive(pid) for pid in children), 10, "duplicity's gpgs to end")
    assert "Processed volume 8" not in output  # it was stopped mid-backup
    if sig == signal.SIGINT:  # duplicity cleans up (SIGTERM kills it: its temp dir stays)
        assert list((tmp_path / "tmp").iterdir()) == []


def test_what_a_killed_run_leaves_the_next_backup_removes(tmp_path, dup_env):
    """SIGKILL (the OOM killer) runs nothing: the signatures' and the manifest's spares end
    when their input closes and leave their files in the archive dir, until the next backup."""
    write_tree(tmp_path / "src", mb=4)
    run = _backup(tmp_path, dup_env, "gpg-ahead-sigkill")
    seen: list[str] = []
    while ADOPTED not in "".join(seen):  # the set's files' spares wait, volume 1 is written
        seen.append(run.stdout.readline())
        assert seen[-1], "".join(seen)[-3000:]
    run.kill()
    run.communicate(timeout=60)
    left = {os.path.dirname(name) for _, name, target in _spares("".join(seen)) if target}
    assert left and all(os.path.isdir(d) for d in left), "".join(seen)[-3000:]

    output = _finish(_backup(tmp_path, dup_env, "gpg-ahead-sigkill"))
    assert not [d for d in left if os.path.exists(d)], output[-3000:]
    _assert_spares_gone(output)
