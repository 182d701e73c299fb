"""The guard against a real Swift: refuse, warn, override, a real 413, account quotas."""

from __future__ import annotations

import json
import re
import shlex
import subprocess

import pytest
from quota_helpers import CFBACKUP, random_files

pytestmark = [pytest.mark.quota, pytest.mark.swift]


def test_guard_refuses_with_numbers_and_the_fix(quota_profile):
    p = quota_profile()
    random_files(p.source, 20, 50_000)
    p.set_container_quota(quota_bytes=400_000)
    done = p.cli("backup", check=6)  # ExitCode.QUOTA
    err = done.stderr
    assert "quota exceeded: the full backup of qg would not fit" in err
    assert f"container {p.container}: 0 bytes used + up to" in err
    assert "> quota 390.6 KiB" in err
    assert f"cfbackup -c {p.config} prune qg" in err
    assert f"cfbackup -c {p.config} backup qg --ignore-quota" in err
    assert p.objects() == []  # nothing left before the first byte
    status = json.loads(p.cli("status", "--json", check=0).stdout)
    status = status[0] if isinstance(status, list) else status
    assert status["remote"]["quota_bytes"] == 400_000
    assert status["remote"]["account"]["storage_url"].endswith("/AUTH_test")
    # the fix runs as printed (with the user's -c FILE), and then the backup fits
    fix = re.search(r"`(cfbackup -c \S+ quota set qg --bytes \d+)`", err)[1]
    argv = shlex.split(fix)
    done = subprocess.run([str(CFBACKUP), *argv[1:]], env=p.env, capture_output=True, text=True)
    assert done.returncode == 0, done
    p.cli("backup", check=0)


def test_guard_refuses_on_object_count(quota_profile):
    p = quota_profile()
    random_files(p.source, 3, 1000)
    p.set_container_quota(quota_count=2)  # a backup is at least 3 objects
    err = p.cli("backup", check=6).stderr
    assert "0 objects used + up to 3 objects = 3 objects > quota 2 objects" in err
    assert f"cfbackup -c {p.config} quota set qg --count 3" in err


def test_guard_warns_above_threshold_and_backs_up(quota_profile):
    p = quota_profile(plugin={"warn_percent": 50})
    random_files(p.source, 10, 20_000)
    estimate = p.next_backup()["upload_bytes"]
    p.set_container_quota(quota_bytes=int(estimate / 0.9))  # 90% after the backup
    done = p.cli("backup", check=0)
    assert "warning" in done.stderr.lower() or "quota guard: after this backup" in done.stderr
    assert "quota guard: after this backup container" in done.stderr
    assert "(warn_percent 50)" in done.stderr
    assert "backup of qg done" in done.stdout
    assert p.uploaded_bytes() <= estimate


def test_ignore_quota_overrides_the_guard(quota_profile):
    p = quota_profile(volsize=200)
    random_files(p.source, 1, 1_500_000)
    estimate = p.next_backup()["upload_bytes"]
    p.set_container_quota(quota_bytes=estimate - 2_000)  # the bound is a little above reality
    p.cli("backup", check=6)
    done = p.cli("backup", "--ignore-quota", check=0)
    assert "going on because of --ignore-quota" in done.stderr
    assert 1_500_000 < p.uploaded_bytes() <= estimate - 2_000


def test_duplicity_uploads_carry_a_content_length_so_swift_refuses(quota_profile):
    """The real duplicity's over-quota upload gets the 413 (it would not, chunked)."""
    p = quota_profile()
    random_files(p.source, 1, 600_000)
    p.set_container_quota(quota_bytes=100_000)
    done = p.cli("--debug", "backup", "--ignore-quota", check=6)
    assert "container quota exceeded: Swift refused an upload (413)" in done.stderr
    assert f"container {p.container}: 0 bytes in 0 objects, quota 100000 bytes" in done.stderr
    assert int(p.head()["x-container-bytes-used"]) == 0


def test_swift_enforces_the_quota_with_the_plugin_off_too(quota_profile):
    """Content-Length is core's: with quota_guard disabled, duplicity's uploads (also from its
    upload pool's worker processes, --concurrency, which start for a backup with a second
    volume) are still sized, so Swift refuses with 413."""
    for extra in ([], ["--concurrency=1"]):
        p = quota_profile(
            profile_lines=['disable_plugins = ["quota_guard"]', f"extra_options = {extra}"]
        )
        random_files(p.source, 1, 1_500_000)  # two volumes of 1 MB
        p.set_container_quota(quota_bytes=100_000)
        done = p.cli("backup", check=6)
        assert "container quota exceeded: Swift refused an upload (413)" in done.stderr, extra
        assert f"container {p.container}: 0 bytes in 0 objects, quota 100000 bytes" in (done.stderr)
        assert int(p.head()["x-container-bytes-used"]) == 0


def test_a_chunked_upload_is_what_swift_lets_through(quota_profile):
    """The control: with the patch switched off for one run (CFBACKUP_NO_SIZED_UPLOADS=1) and
    the plugin off, duplicity sends the volume chunked and Swift accepts it over the quota; an
    old config's sized_uploads = false is only a warning now."""
    p = quota_profile(
        plugin={"enabled": False, "sized_uploads": False},
    )
    random_files(p.source, 1, 600_000)
    p.set_container_quota(quota_bytes=100_000)
    done = p.cli("backup", env={**p.env, "CFBACKUP_NO_SIZED_UPLOADS": "1"}, check=0)
    assert "quota_guard.sized_uploads = false has no effect any more" in done.stderr
    assert int(p.head()["x-container-bytes-used"]) > 100_000


def test_quota_show_and_set_container(quota_profile):
    p = quota_profile(prefix="host/a")
    p.cli("quota", "set", "qg", "--bytes", "5M", "--count", "100", check=0)
    head = p.head()
    assert head["x-container-meta-quota-bytes"] == "5000000"
    assert head["x-container-meta-quota-count"] == "100"
    shown = json.loads(p.cli("quota", "show", "qg", "--json", check=0).stdout)[0]
    assert shown["container"]["quota_bytes"] == 5_000_000
    assert shown["container"]["prefix"] == "host/a"
    assert shown["middlewares"] == {"container_quotas": True, "account_quotas": True}
    assert shown["account"]["bytes_used_current"] >= shown["account"]["bytes_used_reported"]
    table = p.cli("quota", "show", check=0).stdout
    assert f"container {p.container}: 0 bytes in 0 objects; quota 4.8 MiB (0%), 100 objects" in (
        table
    )
    assert "middlewares: container_quotas on, account_quotas on" in table
    rows = {r["what"]: r for r in json.loads(p.cli("check", "--json").stdout)["checks"]}
    assert rows["quota"]["ok"] is True
    assert rows["quota"]["detail"] == (
        f"container {p.container}: 0 bytes used <= quota 4.8 MiB (0%); "
        f"container {p.container}: 0 objects used <= quota 100 objects (0%)"
    )
    p.cli("quota", "set", "qg", "--bytes", "none", check=0)
    assert "x-container-meta-quota-bytes" not in p.head()
    bad = p.cli("quota", "set", "qg", "--count", "12k", check=2)
    assert "is not a count" in bad.stderr


def test_account_quota_needs_a_reseller_admin(quota_profile, local_swift):
    """Set with the reseller admin (on the profile's account), refused for a normal user, and
    then the guard refuses a backup that would pass the account quota."""
    p = quota_profile(who="other")  # account AUTH_test2: no other test sets quotas there
    random_files(p.source, 5, 40_000)
    admin_user, admin_key = local_swift.users["admin"]
    env = dict(p.env, QG_ADMIN_KEY=admin_key)
    try:
        denied = p.cli("quota", "set", "qg", "--account", "--bytes", "1G", check=10)
        assert "only a reseller admin may" in denied.stderr
        assert "test2:tester3" in denied.stderr
        assert "--admin-user" in denied.stderr
        head = p.conn().head_account()
        assert "x-account-quota-bytes" not in head

        current = json.loads(p.cli("quota", "show", "--json", check=0).stdout)[0]["account"]
        limit = current["bytes_used_current"] + 50_000
        done = p.cli(
            "quota", "set", "qg", "--account", "--bytes", str(limit),
            "--admin-user", admin_user, "--admin-password-env", "QG_ADMIN_KEY",
            env=env, check=0,
        )  # fmt: skip
        assert "AUTH_test2" in done.stdout
        head = p.conn().head_account()  # both header generations, on the profile's account
        assert head["x-account-quota-bytes"] == str(limit)
        assert head["x-account-meta-quota-bytes"] == str(limit)
        assert "x-account-quota-bytes" not in p.conn("user").head_account()

        err = p.cli("backup", check=6).stderr
        assert "account http" in err and "/AUTH_test2" in err
        assert f"cfbackup -c {p.config} quota set qg --account --bytes" in err
        assert p.objects() == []
    finally:
        _clear_account_quota(local_swift)
    assert "x-account-quota-bytes" not in p.conn().head_account()


def _clear_account_quota(swift):
    from swiftclient import client

    user, key = swift.users["admin"]
    admin = client.Connection(
        authurl=swift.auth_url, user=user, key=key, auth_version="1", retries=0,
        os_options={"object_storage_url": swift.storage_url("test2")},
    )  # fmt: skip
    admin.post_account(
        {"X-Account-Quota-Bytes": "", "X-Account-Meta-Quota-Bytes": "", "X-Account-Quota-Count": ""}
    )
