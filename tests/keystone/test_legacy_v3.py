"""A duplicity-backup.sh config on Keystone v3 asking for the internal endpoint
(RACKSPACE_SERVICENET=True, as its users set it): duplicity uses the catalog's internal
object-store endpoint (SWIFT_ENDPOINT_TYPE), shown by a relay that only that endpoint names."""

from __future__ import annotations

import subprocess
import textwrap

import pytest
from support.cli import BIN, PASSPHRASE, CliResult
from support.relay import Relay
from support.trees import assert_same_tree

pytestmark = pytest.mark.keystone


def test_servicenet_in_a_legacy_v3_config_uses_the_internal_endpoint(
    tmp_path, tier, cli_env, container, source
):
    proxy_port = int(tier.swift.proxy_url.rsplit(":", 1)[1])
    conf = tmp_path / "duplicity-backup.conf"
    conf.write_text(
        textwrap.dedent(f"""\
        ROOT="{source}"
        DEST="swift://{container}/box"
        SWIFT_USERNAME="backup"
        SWIFT_PASSWORD="{tier.keystone.user("backup")["password"]}"
        SWIFT_AUTHURL="{tier.keystone.url}"
        SWIFT_AUTHVERSION="3"
        SWIFT_USER_DOMAIN_NAME="BackupDomain"
        SWIFT_PROJECT_NAME="backups"
        SWIFT_PROJECT_DOMAIN_NAME="BackupDomain"
        SWIFT_REGIONNAME="RegionOne"
        export RACKSPACE_SERVICENET=True
        INCLIST=()
        EXCLIST=()
        PASSPHRASE="{PASSPHRASE}"
        CLEAN_UP_TYPE="none"
        """)
    )
    conf.chmod(0o600)

    def dt(*args) -> CliResult:
        completed = subprocess.run(
            [str(BIN / "dt-cf-backup"), "-c", str(conf), *map(str, args)],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        result = CliResult(completed)
        assert "Traceback" not in result.output, result
        tier.assert_no_secret(result.output)
        return result

    internal = "http://127.0.0.1:{port}/v1/AUTH_%(project_id)s"  # as start_with_swift sets it
    with Relay(("127.0.0.1", 0), ("127.0.0.1", proxy_port)) as relay:
        tier.keystone.set_endpoint(
            "object-store", internal.format(port=relay.address[1]), interface="internal"
        )
        try:
            backup = dt("-b")
            assert backup.returncode == 0, backup
            restored = tmp_path / "restored"
            restore = dt("--restore", restored)
            assert restore.returncode == 0, restore
        finally:
            tier.keystone.set_endpoint(
                "object-store", internal.format(port=proxy_port), interface="internal"
            )
    assert_same_tree(source, restored)
    sent = [r for r in relay.requests() if f"/{container}" in r[1]]
    assert any(r[0] == "PUT" and "duplicity-full" in r[1] for r in sent), relay.requests()
    assert any(r[0] == "GET" and "duplicity-full" in r[1] for r in sent), relay.requests()
    assert all(r[2] == f"127.0.0.1:{relay.address[1]}" for r in sent)
