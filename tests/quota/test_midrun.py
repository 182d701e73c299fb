"""Another writer fills the container while duplicity uploads: the run stops at the 413 with
the numbers and exit code QUOTA, and after the quota is raised the next run resumes the chain
and the restore is byte-identical."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from quota_helpers import CFBACKUP, random_files, tree_digest

pytestmark = [pytest.mark.quota, pytest.mark.swift, pytest.mark.slow]


def _volumes(profile) -> list[str]:
    return [o["name"] for o in profile.objects() if ".vol" in o["name"]]


def test_413_from_a_concurrent_writer_then_recovery(quota_profile, tmp_path):
    p = quota_profile(encrypted=True, volsize=1)
    random_files(p.source, 600, 8000, per_dir=100, seed=3)  # ~5 volumes of 1 MiB
    (p.source / "link").symlink_to("d000/f00000.bin")
    estimate = p.next_backup()
    assert estimate["plan"]["kind"] == "full"
    quota = estimate["upload_bytes"] + 500_000
    p.set_container_quota(quota_bytes=quota)

    backup = subprocess.Popen(
        [str(CFBACKUP), "-c", str(p.config), "--debug", "backup"],
        env=p.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    writer = p.conn("user")  # the other writer: same account, same container
    deadline = time.monotonic() + 120
    while not _volumes(p):
        assert backup.poll() is None, "the backup ended before the other writer could act"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    used = int(writer.head_container(p.container)["x-container-bytes-used"])
    writer.put_object(p.container, "other-writer/blob", b"\0" * (quota - used - 1000))
    writer.head_container(p.container)  # refreshes the proxy's cached container usage
    out, err = backup.communicate(timeout=300)

    assert backup.returncode == 6, err  # ExitCode.QUOTA
    assert "container quota exceeded: Swift refused an upload (413)" in err
    assert f"container {p.container}: " in err and f"quota {quota} bytes" in err
    assert "duplicity exit code" in err
    assert "Traceback" not in err
    uploaded = _volumes(p)
    assert uploaded

    # the quota is raised (the other writer's blob stays): the next run resumes the chain
    p.cli("quota", "set", "qg", "--bytes", str(quota * 3), check=0)
    p.cli("backup", check=0)
    status = json.loads(p.cli("status", "--json", check=0).stdout)
    status = status[0] if isinstance(status, list) else status
    assert [c["state"] for c in status["chains"]] == ["complete"]
    assert [s["type"] for s in status["chains"][0]["sets"]] == ["full"]
    assert status["incomplete_sets"] == 0 and status["orphaned_sets"] == 0
    # duplicity resumes after the last volume its local manifest recorded; when that is none
    # (it flushes the manifest from the second volume on) it starts the set again
    log = max((p.base / "state" / "logs").glob("qg-backup-*.log")).read_text()
    assert "Last full backup left a partial set, restarting." in log

    restored = tmp_path / "restored"
    p.cli("restore", "qg", str(restored), check=0)
    assert tree_digest(restored) == tree_digest(p.source)
