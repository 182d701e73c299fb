"""``cfbackup firewall -s "web db" OPERATION`` against real sshd servers in namespaces (the
session's ``fleet``, :mod:`sshfleet`), the servers listed in its static inventory."""

from __future__ import annotations

import subprocess

import pytest
from fwlab import CFBACKUP, Netns, cfbackup_env

pytestmark = pytest.mark.firewall

def fw(fleet, *words: str, inventory: str = "inventory.toml") -> subprocess.CompletedProcess:
    ctl, _, base = fleet
    return ctl.run(CFBACKUP, "firewall", "--inventory", str(base / inventory), *words,
                   env=cfbackup_env({"HOME": str(base)}), check=False, timeout=60)


def seed_table(ns: Netns) -> bool:
    return ns.run("nft", "list", "table", "inet", "cfbackup_seed", check=False).returncode == 0


def test_operation_runs_on_every_selected_server(fleet):
    ctl, servers, _ = fleet
    web, db = servers["web1"][0], servers["db1"][0]
    status = fw(fleet, "-s", "web1 db1", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    lines = status.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["db1", "web1"]
    assert all(": ok: lock-down: not in force; seed firewall: disabled" in line for line in lines)

    enabled = fw(fleet, "--parallel", "1", "-s", "web1 DB1", "enable")
    assert enabled.returncode == 0, enabled.stdout
    assert enabled.stdout.splitlines() == ["db1: ok: seed firewall enabled",
                                           "web1: ok: seed firewall enabled"]
    assert seed_table(web) and seed_table(db)

    # SSH (2222) from the management network stays open under the seed firewall
    allowed = fw(fleet, "-s", "web1", "allow", "port", "8080")
    assert allowed.stdout.splitlines() == ["web1: ok: port 8080/tcp allowed"]
    assert "tcp dport 8080 accept" in web.run("nft", "list", "table", "inet",
                                              "cfbackup_seed").stdout
    assert "8080" not in db.run("nft", "list", "table", "inet", "cfbackup_seed").stdout

    disabled = fw(fleet, "-s", "1", "disable")
    assert disabled.returncode == 0
    assert disabled.stdout.splitlines() == ["db1: ok: seed firewall disabled",
                                            "web1: ok: seed firewall disabled"]
    assert not seed_table(web) and not seed_table(db)


def test_one_failing_server_does_not_stop_the_others(fleet):
    result = fw(fleet, "-s", "db", "status")
    assert result.returncode == 10
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("db-badkey: failed: host key not trusted")
    assert lines[1].startswith("db1: ok: lock-down: not in force")

    result = fw(fleet, "-s", "web", "status")
    assert result.returncode == 10
    lines = result.stdout.splitlines()
    assert lines[0] == "web-down: failed: cannot connect to 10.231.1.1:2299 (Connection refused)"
    assert lines[1].startswith("web1: ok: ")


def test_a_remote_cfbackup_error_is_reported_with_its_exit_code(fleet):
    result = fw(fleet, "-s", "web1", "allow", "port", "http")
    assert result.returncode == 2
    assert result.stdout.strip() == ("web1: failed: exit 2: cfbackup: error: 'http' is not a "
                                     "port such as 80, 53/udp or 60000-61000/udp.")


def test_what_a_server_prints_comes_back_masked(fleet):
    # a command wrapper printing more than cfbackup would (a debug line with a credential)
    _, _, base = fleet
    secret = "s3cret-from-the-wrapper"
    (base / "wrapper.toml").write_text(f"""
[servers.web-wrapper]
address = "10.231.1.1"
port = 2222
identity = "{base}/admin_key"
known_hosts = "{base}/known_hosts"
command = "sh -c 'echo \\"wrapper: password={secret}\\" >&2; exit 5' wrapper"
""")
    result = fw(fleet, "-s", "web-wrapper", "status", inventory="wrapper.toml")
    assert result.returncode == 5, result
    assert result.stdout == "web-wrapper: failed: exit 5: wrapper: password=***\n"
    assert secret not in result.stdout + result.stderr


def test_no_matching_server_is_a_usage_error(fleet):
    result = fw(fleet, "-s", "mail", "status")
    assert result.returncode == 2
    assert "no server in" in result.stderr and "matches 'mail'" in result.stderr
    assert "servers: db-badkey, db1, web-down, web1" in result.stderr
