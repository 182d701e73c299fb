"""The seed firewall (fw-control.py's enable/disable/allow/deny) with real packets."""

from __future__ import annotations

import json

import pytest
from fwlab import (
    MGMT4,
    MGMT6,
    OTHER4,
    OTHER6,
    SERVER4,
    SERVER6,
    SERVICE_PORT,
    SSH_PORT,
    write_config,
)

pytestmark = pytest.mark.firewall


@pytest.mark.parametrize("backend", ["nft", "iptables"])
def test_seed_operations_are_idempotent_and_filter_traffic(site, tmp_path, backend):
    config = str(write_config(tmp_path / "config.toml", backend=backend))
    before, before_iptables = site.ruleset(), site.iptables_save()

    def fw(*words: str) -> str:
        result = site.cfbackup("-c", config, "firewall", *words)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert fw("enable") == "seed firewall enabled"
    enabled = site.ruleset()
    assert fw("enable") == "seed firewall enabled (it already was)"
    assert site.ruleset() == enabled
    # default deny inbound; SSH only from the management addresses
    site.expect(service="blocked", ssh_mgmt="open", ssh_other="blocked")

    assert fw("allow", "port", "8080") == "port 8080/tcp allowed"
    with_port = site.ruleset()
    assert fw("allow", "port", "8080/tcp") == "port 8080/tcp already allowed"
    assert site.ruleset() == with_port
    site.expect(service="open", ssh_mgmt="open", ssh_other="blocked")

    assert fw("allow", "network", "10.231.0.3") == "network 10.231.0.3/32 allowed"
    assert fw("allow", "network", OTHER6) == "network fd31:231::3/128 allowed"
    site.probes({(OTHER4, SERVER4, SSH_PORT): "open", (OTHER6, SERVER6, SSH_PORT): "open"})
    assert fw("disallow", "network", "10.231.0.3/32") == "network 10.231.0.3/32 no longer allowed"
    assert fw("deny", "network", "10.231.0.3/32") == "network 10.231.0.3/32 was not allowed"
    site.probes({(OTHER4, SERVER4, SSH_PORT): "blocked", (OTHER6, SERVER6, SSH_PORT): "open"})
    assert fw("deny", "network", OTHER6) == "network fd31:231::3/128 no longer allowed"

    assert fw("deny", "port", "8080") == "port 8080/tcp no longer allowed"
    assert fw("disallow", "port", "8080") == "port 8080/tcp was not allowed"
    assert site.ruleset() == enabled
    site.expect(service="blocked", ssh_mgmt="open", ssh_other="blocked")

    status = json.loads(fw("status", "--json"))
    assert status["seed"] == {"enabled": True, "active": True, "ports": [], "networks": [],
                              "ssh": "22/tcp from 10.231.0.2/32, fd31:231::2/128"}

    assert fw("disable") == "seed firewall disabled"
    assert fw("disable") == "seed firewall disabled (it already was)"
    site.expect(service="open")
    assert site.ruleset() == before
    assert site.iptables_save() == before_iptables


def test_lists_can_be_prepared_while_the_seed_is_disabled(site, tmp_path):
    config = str(write_config(tmp_path / "config.toml"))
    before = site.ruleset()
    result = site.cfbackup("-c", config, "firewall", "allow", "port", "8080")
    assert result.stdout.strip() == \
        "port 8080/tcp allowed (applies once the seed firewall is enabled)"
    assert site.ruleset() == before
    site.cfbackup("-c", config, "firewall", "enable", check=True)
    site.expect(service="open", ssh_mgmt="open", ssh_other="blocked")


def test_lockdown_over_the_seed_firewall_restores_it_exactly(site, tmp_path):
    config = str(write_config(tmp_path / "config.toml"))
    site.cfbackup("-c", config, "firewall", "enable", check=True)
    site.cfbackup("-c", config, "firewall", "allow", "port", "8080", check=True)
    before = site.ruleset()
    site.expect(service="open", ssh_mgmt="open", ssh_other="blocked")
    site.cfbackup("-c", config, "firewall", "lock", check=True)
    site.probes({(MGMT4, SERVER4, SERVICE_PORT): "blocked", (MGMT4, SERVER4, SSH_PORT): "open",
                 (MGMT6, SERVER6, SSH_PORT): "open"})
    site.cfbackup("-c", config, "firewall", "unlock", check=True)
    assert site.ruleset() == before
    site.expect(service="open", ssh_mgmt="open", ssh_other="blocked")


def test_bad_seed_values_are_usage_errors(site, tmp_path):
    config = str(write_config(tmp_path / "config.toml"))
    result = site.cfbackup("-c", config, "firewall", "allow", "port", "http")
    assert result.returncode != 0
    assert "'http' is not a port such as 80, 53/udp or 60000-61000/udp" in result.stderr
    result = site.cfbackup("-c", config, "firewall", "allow", "network", "10.0.0.0/33")
    assert result.returncode != 0
    assert "'10.0.0.0/33' is not a network" in result.stderr
