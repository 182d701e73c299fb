"""The local Swift used by every integration test is a real, correctly configured Swift,
and the installed duplicity's swift backend works against it (DESIGN.md sections 3 and 5)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from swiftclient import client as swiftclient
from swiftclient.exceptions import ClientException

pytestmark = pytest.mark.swift

DUPLICITY = Path(sys.executable).parent / "duplicity"


def _conn(swift, who="admin"):
    user, key = swift.users[who]
    return swiftclient.Connection(authurl=swift.auth_url, user=user, key=key, auth_version="1",
                                  retries=0)


def _name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_healthcheck_and_info_list_quota_middlewares(local_swift):
    with urllib.request.urlopen(f"{local_swift.proxy_url}/healthcheck", timeout=5) as resp:
        assert resp.status == 200 and resp.read() == b"OK"
    with urllib.request.urlopen(f"{local_swift.proxy_url}/info", timeout=5) as resp:
        info = json.load(resp)
    assert "container_quotas" in info and "account_quotas" in info
    assert "tempauth" in info and "slo" in info


def test_swiftclient_put_get(local_swift):
    conn = _conn(local_swift, "user")
    container = _name("putget")
    conn.put_container(container)
    conn.put_object(container, "hello.txt", b"hello swift")
    headers, body = conn.get_object(container, "hello.txt")
    assert body == b"hello swift"
    assert conn.url == local_swift.storage_url("test")


def test_other_account_is_separate(local_swift):
    conn = _conn(local_swift, "other")
    conn.head_account()
    assert conn.url == local_swift.storage_url("test2")
    with pytest.raises(ClientException) as err:
        conn.head_container("never-there", headers={})
    assert err.value.http_status == 404


def test_account_quota_needs_reseller_admin(local_swift):
    user = _conn(local_swift, "user")
    with pytest.raises(ClientException) as err:
        user.post_account({"X-Account-Meta-Quota-Bytes": "1000"})
    assert err.value.http_status == 403

    admin = _conn(local_swift, "admin")
    admin.post_account({"X-Account-Meta-Quota-Bytes": str(10**12)})
    try:
        assert user.head_account()["x-account-meta-quota-bytes"] == str(10**12)
    finally:
        admin.post_account({"X-Account-Meta-Quota-Bytes": ""})
    assert "x-account-meta-quota-bytes" not in user.head_account()


def test_container_quota_rejects_upload(local_swift):
    conn = _conn(local_swift, "user")
    container = _name("quota")
    conn.put_container(container, headers={"X-Container-Meta-Quota-Bytes": "10"})
    with pytest.raises(ClientException) as err:
        conn.put_object(container, "big", b"x" * 11)
    assert err.value.http_status == 413


def test_account_bytes_used_advances(local_swift):
    """X-Account-Bytes-Used moves only through the container-updater (DESIGN.md section 5)."""
    conn = _conn(local_swift, "other")
    before = int(conn.head_account().get("x-account-bytes-used", 0))
    container = _name("usage")
    conn.put_container(container)
    conn.put_object(container, "blob", b"y" * 12345)
    assert int(conn.head_container(container)["x-container-bytes-used"]) == 12345  # current
    local_swift.run_container_updaters_once()  # what the daemon does every interval
    used = int(conn.head_account()["x-account-bytes-used"])
    assert used >= before + 12345, f"account usage {used} (was {before}) after a sweep"


def _duplicity(swift, tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWIFT_", "ST_", "OS_"))}
    env.update(swift.env_v1("user"))
    argv = [str(DUPLICITY), *args, "--no-encryption", "--name", "localswift",
            "--archive-dir", str(tmp_path / "archive")]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def test_duplicity_swift_backend_backs_up_and_verifies(local_swift, tmp_path):
    """The installed duplicity's swift backend imports, authenticates with v1 and works."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.bin").write_bytes(os.urandom(50_000))
    container = _name("dup")
    url = f"swift://{container}"

    started = time.monotonic()
    full = _duplicity(local_swift, tmp_path, "full", str(src), url)
    assert full.returncode == 0, full.stdout + full.stderr
    # without ST_* each volume costs a 2-minute retry loop (DESIGN.md section 5)
    assert time.monotonic() - started < 60, "duplicity's size query retried"
    assert "_do_query" not in full.stdout + full.stderr

    verify = _duplicity(local_swift, tmp_path, "verify", url, str(src))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    listing = _duplicity(local_swift, tmp_path, "list-current-files", url)
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert "a.txt" in listing.stdout and "sub/b.bin" in listing.stdout

    _headers, objects = _conn(local_swift, "user").get_container(container)
    names = [o["name"] for o in objects]
    assert any(n.startswith("duplicity-full.") and n.endswith(".vol1.difftar.gz")
               for n in names), names
    assert any(n.endswith(".manifest") for n in names), names
    assert any(n.startswith("duplicity-full-signatures.") for n in names), names
