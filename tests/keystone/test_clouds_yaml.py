"""clouds.yaml profiles (``swift.cloud`` or OS_CLOUD), read with openstacksdk's loader."""

from __future__ import annotations

import re
import time

import pytest
from keystone_helpers import run_logs
from support.trees import assert_same_tree

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.keystone


def _clouds(home, tier, cred_id: str, secret: str) -> None:
    folder = home / ".config" / "openstack"
    folder.mkdir(parents=True)
    user = tier.keystone.user("backup")
    (folder / "clouds.yaml").write_text(
        f"""\
clouds:
  ks-appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: {tier.keystone.url}
      application_credential_id: {cred_id}
    region_name: RegionOne
  ks-password:
    auth:
      auth_url: {tier.keystone.url}
      username: backup
      user_domain_name: BackupDomain
      project_name: backups
      project_domain_name: BackupDomain
    region_name: RegionOne
    interface: internal
"""
    )
    # secrets apart, as openstacksdk allows: secure.yaml is merged into clouds.yaml
    (folder / "secure.yaml").write_text(
        f"""\
clouds:
  ks-appcred:
    auth:
      application_credential_secret: {secret}
  ks-password:
    auth:
      password: {user["password"]}
"""
    )
    (folder / "secure.yaml").chmod(0o600)


def test_cloud_key_with_an_application_credential_and_os_cloud_with_a_password(
    tmp_path, tier, write_config, source, cfbackup
):
    cred_id, secret = tier.application_credential()
    _clouds(tmp_path / "home", tier, cred_id, secret)

    # server_image would also check the cloud's compute API, which this test cloud lacks
    no_compute = 'disable_plugins = ["server_image"]\n'
    by_key = write_config('cloud = "ks-appcred"\n', extra=no_compute)
    backup = cfbackup("-c", by_key, "backup")
    assert backup.returncode == 0, backup

    # no [swift] credentials at all: OS_CLOUD names the cloud; same project, same chain
    by_env = write_config("", name="os-cloud.toml", extra=no_compute)
    time.sleep(1.1)
    (source / "from-os-cloud.txt").write_text("incremental through OS_CLOUD\n")
    env = {"OS_CLOUD": "ks-password"}
    check = cfbackup("-c", by_env, "check", env=env)
    assert check.returncode == 0, check
    assert "user backup (domain BackupDomain) with password" in check.stdout
    assert "interface internal" in check.stdout
    incremental = cfbackup("-c", by_env, "backup", env=env)
    assert incremental.returncode == 0, incremental

    restored = tmp_path / "restored"
    restore = cfbackup("-c", by_key, "restore", "main", restored)
    assert restore.returncode == 0, restore
    assert_same_tree(source, restored)
    logs = run_logs(tmp_path)
    # the credential's runs (swift-timeout, a core patch, comes first)
    assert re.search(r"duplicity patches: [^\n]*\bapplication-credential\b", logs), logs[-3000:]
    tier.assert_no_secret(logs)


def test_unknown_cloud_is_a_config_error(tmp_path, tier, write_config, cfbackup):
    _clouds(tmp_path / "home", tier, "0" * 32, "not-used-secret")
    config = write_config('cloud = "no-such-cloud"\n')
    result = cfbackup("-c", config, "backup")
    assert result.returncode == ExitCode.CONFIG, result
    assert "Cloud no-such-cloud was not found" in result.stderr, result
    assert len(result.stderr.strip().splitlines()) == 1, result
