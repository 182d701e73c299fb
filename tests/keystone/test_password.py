"""Keystone v3 password profiles through the CLI: the whole life of a backup, names and ids."""

from __future__ import annotations

import json
import re
import time

import pytest
from keystone_helpers import password_swift, run_logs
from support.trees import assert_same_tree

pytestmark = pytest.mark.keystone

TOKEN_FIELD = re.compile(r" /v1/\S+ HTTP/1\.\d \d{3} \S+ \S+ (\S+) ")  # after the user agent


def _tokens(tier, skip: int) -> set[str]:
    """The tokens (as the proxy logs them: their first 16 characters, each Keystone token's
    differ) of the requests to project ``backups``'s account logged after line ``skip``: one
    per authentication. Only that account's: the token-expiry backups run beside this test
    (their projects' accounts, in the same proxy log)."""
    found = set()
    account = f"/v1/{tier.account('backups')}"
    for line in tier.proxy_log()[skip:]:
        match = TOKEN_FIELD.search(line) if f" {account}" in line else None
        if match and match[1] != "-":
            found.add(match[1])
    return found


def test_password_profile_backup_incremental_verify_restore_list_status_quota(
    tmp_path, tier, write_config, source, cfbackup
):
    config = write_config(password_swift(tier))

    check = cfbackup("-c", config, "check")
    assert check.returncode == 0, check
    row = next(line for line in check.stdout.splitlines() if "keystone:" in line)
    assert "user backup (domain BackupDomain) with password" in row
    assert f"project backups (id {tier.keystone.project('backups')['id']}" in row
    assert "token expires 20" in row and "(in " in row
    assert f"{tier.swift.proxy_url}/v1/{tier.account('backups')}" in row
    assert "region RegionOne, interface public" in row

    # without the hand-over (one run's switch), duplicity's two connections (its backend's,
    # and its SwiftService's for the container's stat) each get their own token from Keystone
    # after the checks got one; with it, the checks' token serves all. (A third, for the size
    # query after each volume, went with that query: the sized-uploads patch.)
    skip = len(tier.proxy_log())
    full = cfbackup("-c", config, "backup", env={"CFBACKUP_NO_HANDED_TOKEN": "1"})
    assert full.returncode == 0, full
    assert len(_tokens(tier, skip)) == 3, _tokens(tier, skip)
    time.sleep(1.1)  # duplicity's times have one-second resolution
    (source / "etc" / "app.conf").write_text("setting = 2\n")
    (source / "new.txt").write_text("added later\n")
    skip = len(tier.proxy_log())
    incremental = cfbackup("-c", config, "backup")
    assert incremental.returncode == 0, incremental
    assert "2 new" in incremental.stdout or "1 changed" in incremental.stdout, incremental
    assert len(_tokens(tier, skip)) == 1, _tokens(tier, skip)

    # verify's and list's duplicity start with the token of their checks' login too (it got
    # two of its own from Keystone before)
    skip = len(tier.proxy_log())
    verify = cfbackup("-c", config, "verify")
    assert verify.returncode == 0, verify
    assert len(_tokens(tier, skip)) == 1, _tokens(tier, skip)
    restored = tmp_path / "restored"
    restore = cfbackup("-c", config, "restore", "main", restored)
    assert restore.returncode == 0, restore
    assert_same_tree(source, restored)
    skip = len(tier.proxy_log())
    listing = cfbackup("-c", config, "list", "main")
    assert listing.returncode == 0 and "new.txt" in listing.stdout, listing
    assert len(_tokens(tier, skip)) == 1, _tokens(tier, skip)

    status = cfbackup("-c", config, "status", "main", "--json")
    assert status.returncode == 0, status
    data = json.loads(status.stdout)
    data = data[0] if isinstance(data, list) else data
    assert "error" not in json.dumps(data.get("remote", {})), data
    assert data["remote"]["account"]["storage_url"].endswith(tier.account("backups"))
    quota = cfbackup("-c", config, "quota", "show", "main", "--json")
    assert quota.returncode == 0, quota

    # duplicity's own authentication for a password (the patch is for application credentials)
    logs = run_logs(tmp_path)
    assert "/cfbackup-duplicity backup" in logs
    assert (
        "duplicity patches: swift-timeout, handed-token, handed-manifest, upload-progress, " in logs
    )  # backups
    # the incremental, verify, restore (then gpg's, prefetch's) and list: the checks' token
    assert logs.count("duplicity patches: swift-timeout, handed-token, ") >= 4, logs
    assert "application-credential" not in logs
    tier.assert_no_secret(logs)


def test_domain_and_project_ids_and_the_internal_endpoint(tmp_path, tier, write_config, cfbackup):
    """Domains and the project by id, the catalog's internal endpoint."""
    backup_user = tier.keystone.user("backup")
    config = write_config(
        password_swift(
            tier,
            user_domain_name=None,
            user_domain_id=backup_user["domain_id"],
            project_name=None,
            project_domain_name=None,
            project_id=tier.keystone.project("backups")["id"],
            interface="internal",
        )
    )
    check = cfbackup("-c", config, "check")
    assert check.returncode == 0, check
    assert "interface internal" in check.stdout
    backup = cfbackup("-c", config, "backup")
    assert backup.returncode == 0, backup
    assert "backup of main done" in backup.stdout, backup
