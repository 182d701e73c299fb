"""Application-credential profiles: every duplicity command gets the application-credential
patch through the launcher."""

from __future__ import annotations

import os
import time

import pytest
from keystone_helpers import appcred_swift, run_logs
from support.trees import assert_same_tree

pytestmark = pytest.mark.keystone


def test_application_credential_backup_incremental_verify_restore_list_status(
    tmp_path, tier, write_config, source, cfbackup
):
    cred_id, secret = tier.application_credential()
    config = write_config(appcred_swift(tier, cred_id))
    env = {"T_KS_APPCRED": secret}

    check = cfbackup("-c", config, "check", env=env)
    assert check.returncode == 0, check
    row = next(line for line in check.stdout.splitlines() if "keystone:" in line)
    assert "user backup (domain BackupDomain) with application credential cfbackup-test" in row
    assert f"({cred_id})" in row and "project backups" in row

    assert cfbackup("-c", config, "backup", env=env).returncode == 0
    time.sleep(1.1)
    (source / "etc" / "app.conf").write_text("setting = 3\n")
    incremental = cfbackup("-c", config, "backup", env=env)
    assert incremental.returncode == 0, incremental
    verify = cfbackup("-c", config, "verify", env=env)
    assert verify.returncode == 0, verify
    restored = tmp_path / "restored"
    restore = cfbackup("-c", config, "restore", "main", restored, env=env)
    assert restore.returncode == 0, restore
    assert_same_tree(source, restored)
    listing = cfbackup("-c", config, "list", "main", env=env)
    assert listing.returncode == 0 and "app.conf" in listing.stdout, listing
    status = cfbackup("-c", config, "status", "main", env=env)
    assert status.returncode == 0 and "error" not in status.stdout.lower(), status

    logs = run_logs(tmp_path)
    runs = [line for line in logs.splitlines() if "running:" in line]
    assert runs and all("/cfbackup-duplicity " in line for line in runs), runs
    patched = [line for line in logs.splitlines() if "duplicity patches:" in line]
    assert len(patched) == len(runs), patched
    core = {"application-credential", "upload-progress", "sized-uploads"}
    assert all(core <= set(line.split("patches: ")[1].split(", ")) for line in patched), patched
    # every duplicity (the two backups, list, restore, verify) starts with the token of
    # cfbackup's checks: one Keystone token per run
    assert len(patched) == 5 and all("handed-token" in line for line in patched), patched
    tier.assert_no_secret(logs)  # nor in argv: the run log records every command line


def test_application_credential_through_duplicitys_upload_pool(
    tmp_path, tier, write_config, source, cfbackup
):
    """duplicity's upload pool (--concurrency) uploads from processes of its own ("spawn"):
    they authenticate with the application credential too (the launcher patches them), and
    every volume they upload is restored."""
    (source / "big.bin").write_bytes(os.urandom(3 << 20))  # 1 MB volumes: several uploads
    cred_id, secret = tier.application_credential()
    extra = 'volsize = 1\nextra_options = ["--concurrency=1"]\n'
    config = write_config(appcred_swift(tier, cred_id), extra=extra)
    env = {"T_KS_APPCRED": secret}

    backup = cfbackup("-c", config, "backup", env=env)
    assert backup.returncode == 0, backup
    restored = tmp_path / "restored"
    assert cfbackup("-c", config, "restore", "main", restored, env=env).returncode == 0
    assert_same_tree(source, restored)
    logs = run_logs(tmp_path)
    assert " --concurrency=1 " in logs  # the pool did the uploads
    tier.assert_no_secret(logs)
