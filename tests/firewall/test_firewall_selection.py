"""Which servers ``firewall -s`` selects and at which address: the inventory file, Nova's
address lists as openstacksdk returns them, the precedence of the inventory, jump hosts. Pure:
the cloud and SSH themselves are in test_firewall_cloud.py."""

from __future__ import annotations

import pytest
from cfbackup_firewall_lockdown import inventory, remote, selection
from cfbackup_firewall_lockdown.compute import CloudServer, address_of

from cfbackup.errors import ConfigError, ExitCode

pytestmark = pytest.mark.firewall


def nova(addr: str, version: int = 4, kind: str = "fixed") -> dict:
    """One entry of a server's ``addresses`` as Nova answers it."""
    return {"addr": addr, "version": version, "OS-EXT-IPS:type": kind,
            "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:4b:19:0c"}


def cloud_server(name: str, status: str = "ACTIVE", access: str = "", **networks) -> CloudServer:
    return CloudServer(id=f"{name}-0c1f8e2a-uuid", name=name, status=status, access_ipv4=access,
                       addresses=networks)


# a dual-stack server with a floating address, networks in the order Nova lists them
WEB = cloud_server("web1", private=[nova("fd00:10::5", 6), nova("10.0.0.5"),
                                    nova("203.0.113.5", kind="floating")],
                   storage=[nova("192.168.50.5")])


def test_inventory_problems_are_reported_at_once(tmp_path):
    path = tmp_path / "inventory.toml"
    path.write_text('[defaults]\nport = "22"\naddress = "10.0.0.1"\n[servers.web1]\nuser = "root"'
                    '\n[servers.db1]\naddress = "db1"\nshell = "x"\njump = "bastion:ssh"\n')
    with pytest.raises(ConfigError) as caught:
        inventory.load_inventory(path)
    assert "5 problem(s)" in caught.value.message
    assert "defaults.port: expected an integer" in caught.value.message
    assert "defaults.address: an address is each server's own" in caught.value.message
    assert "servers.web1.address: required" in caught.value.message
    assert "servers.db1.shell: unknown key" in caught.value.message
    assert "servers.db1.jump: 'bastion:ssh' is not [user@]host[:port]" in caught.value.message


def test_inventory_selection_matches_words_case_insensitively(tmp_path):
    path = tmp_path / "inventory.json"
    path.write_text('{"defaults": {"user": "admin", "command": "sudo cfbackup firewall"},'
                    ' "servers": {"web1": {"address": "192.0.2.1"},'
                    ' "web2": {"address": "192.0.2.2", "port": 2222},'
                    ' "db1": {"address": "192.0.2.3"}, "mail": {"address": "192.0.2.4"}}}')
    chosen = selection.select(inventory.load_inventory(path), None, "WEB db", where=str(path))
    servers = chosen.reachable()
    assert [s.name for s in servers] == ["db1", "web1", "web2"]
    assert servers[2].port == 2222 and servers[0].user == "admin"
    assert servers[0].command == "sudo cfbackup firewall"
    assert chosen.unmatched == [] and chosen.outcomes() == []


def test_an_absent_default_inventory_is_fine_only_beside_a_cloud(tmp_path, monkeypatch):
    monkeypatch.setattr(inventory, "DEFAULT_INVENTORY", tmp_path / "absent.toml")
    monkeypatch.delenv("CFBACKUP_INVENTORY", raising=False)
    empty = inventory.read(None, required=False)
    assert not empty.found and empty.servers == [] and empty.defaults["port"] == 22
    with pytest.raises(ConfigError, match="no such inventory"):
        inventory.read(None, required=True)
    with pytest.raises(ConfigError, match="no such inventory"):  # one named must exist
        inventory.read(str(tmp_path / "named.toml"), required=False)


@pytest.mark.parametrize("network, address, how", [
    (None, "10.0.0.5", "first fixed address, network private"),  # IPv4 before the IPv6 one
    ("private", "203.0.113.5", "network private"),  # on a named network: floating first
    ("storage", "192.168.50.5", "network storage"),
])
def test_the_address_of_a_cloud_server(network, address, how):
    assert address_of(WEB, network) == (address, how)


def test_access_ipv4_comes_before_the_fixed_addresses_but_not_before_network():
    server = cloud_server("web2", access="198.51.100.7", private=[nova("10.0.0.7")])
    assert address_of(server, None) == ("198.51.100.7", "access IPv4")
    assert address_of(server, "private") == ("10.0.0.7", "network private")
    v6_only = cloud_server("web3", private=[nova("fd00:10::9", 6)])
    assert address_of(v6_only, None) == ("fd00:10::9", "first fixed address, network private")
    with pytest.raises(LookupError, match=r"no address on network public \(its networks: "
                                          r"private\)"):
        address_of(v6_only, "public")
    with pytest.raises(LookupError, match="no access IPv4 and no fixed address"):
        address_of(cloud_server("web4", public=[nova("203.0.113.9", kind="floating")]), None)


def test_the_inventory_wins_the_cloud_status_counts_and_words_matching_nothing_fail(tmp_path):
    path = tmp_path / "inventory.toml"
    path.write_text('[defaults]\nuser = "ops"\nport = 2200\njump = "ops@bastion.example:22"\n'
                    '[servers.web1]\naddress = "10.9.0.1"\nuser = "root"\njump = "gw"\n'
                    '[servers.web-old]\naddress = "10.9.0.2"\n'
                    '[servers.db9]\naddress = "10.9.0.3"\n')
    cloud = [WEB,
             cloud_server("web-old", "SHUTOFF", private=[nova("10.0.0.6")]),
             cloud_server("webcache", "ERROR"),
             cloud_server("web-noaddr"),
             cloud_server("db1", private=[nova("10.0.0.8")]),
             cloud_server("db1", private=[nova("10.0.0.9")])]
    chosen = selection.select(inventory.load_inventory(path), cloud, "web DB1 mail",
                              where="test")
    lines = [t.plan_line() for t in chosen.targets]
    assert lines == [
        "db1 (db1-0c1f): ops@10.0.0.8:2200 via ops@bastion.example:22 (cloud: first fixed "
        "address, network private)",
        "db1 (db1-0c1f): ops@10.0.0.9:2200 via ops@bastion.example:22 (cloud: first fixed "
        "address, network private)",
        "web-noaddr: failed: no access IPv4 and no fixed address: name the network to use with "
        "--network, or list the server in the inventory (cloud)",
        "web-old: skipped: SHUTOFF in the cloud, not ACTIVE (inventory)",
        "web1: root@10.9.0.1:2200 via gw (inventory: its entry, also in the cloud)",
        "webcache: skipped: ERROR, not ACTIVE (cloud)",
    ]
    assert [s.address for s in chosen.reachable()] == ["10.0.0.8", "10.0.0.9", "10.9.0.1"]
    assert chosen.unmatched == ["mail"]
    outcomes = chosen.outcomes()
    assert [(o.name, o.state) for o in outcomes] == [
        ("web-noaddr", "failed"), ("web-old", "skipped"), ("webcache", "skipped"),
        ("mail", "failed")]
    assert outcomes[-1].line() == ("mail: failed: no server name contains 'mail': check the "
                                   "names given with -s")
    assert remote.exit_code(outcomes) == ExitCode.USAGE
    assert remote.exit_code([o for o in outcomes if o.state == "skipped"]) == ExitCode.OK


def test_exact_names_and_a_pattern_matching_nothing(tmp_path):
    empty = inventory.Inventory(tmp_path / "absent.toml", [], dict(inventory.DEFAULTS), False)
    cloud = [WEB, cloud_server("web10", private=[nova("10.0.0.10")])]
    chosen = selection.select(empty, cloud, "web1", exact=True, where="cloud x")
    assert [t.name for t in chosen.targets] == ["web1"]
    assert [t.name for t in selection.select(empty, cloud, "web1", where="x").targets] == \
        ["web1", "web10"]
    with pytest.raises(ConfigError) as caught:
        selection.select(empty, cloud, "Web1 mail", exact=True, where="cloud x")
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.message == ("no server in cloud x matches 'Web1 mail' exactly (servers: "
                                    "web1, web10): check the names given with -s.")


@pytest.mark.parametrize("text, parsed", [
    ("bastion", (None, "bastion", 22)),
    ("ops@bastion.example:2222", ("ops", "bastion.example", 2222)),
    ("[2001:db8::1]:22", (None, "2001:db8::1", 22)),
    ("root@[2001:db8::1]", ("root", "2001:db8::1", 22)),
])
def test_jump_hosts_parse(text, parsed):
    assert remote.parse_jump(text) == parsed
