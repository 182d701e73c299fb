"""An incremental's duplicity uses the manifest cfbackup's passphrase check decrypted
(``patches/handed_manifest.py``) instead of downloading it again: the local Swift's proxy log
shows one GET of it per backup (the check's) instead of two, the backup restores byte for byte
and the handed file is gone after the run. duplicity given a manifest under another name (its
last set is newer than the one the check read) downloads its own; given other bytes under its
last set's name, it takes them (and its comparison with its local copy refuses them)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from support import proxylog
from support.trees import assert_same_tree, make_awkward_tree

from cfbackup.duplicity import launcher
from cfbackup.duplicity.patches import handed_manifest

pytestmark = pytest.mark.swift

USED = "Using remote manifest "  # the patch's line at -v info
MISMATCHED = 5  # duplicity's log.ErrorCode.mismatched_manifests


def _manifest_gets(requests, name: str) -> int:
    return sum(1 for m, path, _s in requests if m == "GET" and path.endswith("/" + name))


def _manifests(archive: Path) -> list[str]:
    """The manifests of duplicity's local copy (plaintext), oldest first: the remote ones are
    the same names with .gpg."""
    found = sorted(archive.rglob("duplicity-*.manifest"), key=lambda p: p.stat().st_mtime)
    return [p.name for p in found]


def test_an_incremental_uses_the_manifest_the_check_decrypted(
    tmp_path, make_config, cfbackup, local_swift
):
    src = make_awkward_tree(tmp_path / "src", big_mb=1)
    config = make_config(source=src)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"TMPDIR": str(temp)}
    assert cfbackup("-c", config, "backup", env=env).returncode == 0
    (full,) = _manifests(tmp_path / "archive")
    time.sleep(1.1)  # duplicity's times have one-second resolution
    (src / "plain.txt").write_text("changed after the full\n")

    skip = proxylog.length(local_swift)
    result = cfbackup("-c", config, "backup", env=env)
    assert result.returncode == 0, result
    requests = proxylog.requests_since(local_swift, skip)
    # the check's GET, none by duplicity (it made two before)
    assert _manifest_gets(requests, full + ".gpg") == 1, requests
    assert any(m == "PUT" and ".vol1.difftar" in p for m, p, _s in requests), requests
    assert list(temp.iterdir()) == []  # the handed manifest's folder is gone
    logs = "\n".join(p.read_text() for p in (tmp_path / "state" / "logs").glob("*.log"))
    assert "handed-manifest" in logs  # the run log names the patches duplicity ran with

    restored = cfbackup("-c", config, "restore", "main", tmp_path / "restored")
    assert restored.returncode == 0, restored
    assert_same_tree(src, tmp_path / "restored")


def test_duplicity_downloads_its_own_unless_the_names_match(
    tmp_path, dup_env, local_swift, container
):
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    archive = tmp_path / "archive"
    target = f"swift://{container}/host1"

    def backup(
        handed: tuple[str, bytes] | None = None, action: str = "incremental"
    ) -> subprocess.CompletedProcess:
        env = dict(dup_env)
        if handed is not None:
            (tmp_path / "handed").write_bytes(handed[0].encode() + b"\n" + handed[1])
            env[handed_manifest.FILE] = str(tmp_path / "handed")
        time.sleep(1.1)  # a new second: a new set
        (src / "plain.txt").write_text(f"changed at {time.time()}\n")
        return subprocess.run(
            [*launcher.command(), action, "-v", "info", "--name", "m", "--archive-dir",
             str(archive), str(src), target],
            env=env, capture_output=True, text=True, timeout=180)

    assert backup(action="full").returncode == 0
    assert backup().returncode == 0
    full, last = _manifests(archive)

    # the full's manifest: not the last set's, duplicity downloads the last set's
    skip = proxylog.length(local_swift)
    run = backup((full + ".gpg", next(archive.rglob(full)).read_bytes()))
    assert run.returncode == 0, run.stdout[-3000:]
    requests = proxylog.requests_since(local_swift, skip)
    assert _manifest_gets(requests, last + ".gpg") == 1, requests
    assert USED not in run.stdout
    # the last set's name with other bytes (its manifest, written on another host): taken, no
    # download, and duplicity's own comparison with its local copy refuses them
    newest = _manifests(archive)[-1]
    elsewhere = re.sub(rb"(?m)^Hostname .*$", b"Hostname elsewhere.invalid",
                       next(archive.rglob(newest)).read_bytes())
    skip = proxylog.length(local_swift)
    run = backup((newest + ".gpg", elsewhere))
    assert run.returncode == MISMATCHED, run.stdout[-3000:]
    assert f"{USED}{newest}" in run.stdout
    assert _manifest_gets(proxylog.requests_since(local_swift, skip), newest + ".gpg") == 0
