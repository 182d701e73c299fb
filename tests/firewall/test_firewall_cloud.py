"""``cfbackup firewall -s NAMES`` with the servers listed by the cloud's compute API.

The OpenStack emulator runs inside the admin's namespace (``ctl`` of the session's ``fleet``,
:mod:`sshfleet`) and lists servers whose addresses are the fleet's namespaces, where real sshd
and nftables run; listeners on ports 80 and 81 in the web and db namespaces show with real
packets which hosts' rules changed. What the cloud says:

    web1          ACTIVE   fixed 10.231.1.1 (the web namespace)
    web1-stopped  SHUTOFF  fixed 10.231.1.1: would work, must be skipped
    web-badkey    ACTIVE   fixed 10.231.2.1 (the db namespace), whose key known_hosts lacks
    web-down      ACTIVE   access IPv4 10.231.1.9: no host there (no route to it)
    db1           ACTIVE   access IPv4 10.231.1.9, but the inventory's db1 wins: 127.0.0.1 in
                           the db namespace, through the jump host 10.231.2.1
    mail1         ACTIVE   fixed 10.231.2.1 (never selected)
"""

from __future__ import annotations

import subprocess
import types

import pytest
from fwlab import CFBACKUP, Listeners, _probe, cfbackup_env
from support.openstack_emulator import OpenStackEmulator

pytestmark = pytest.mark.firewall

WEB, DB = "10.231.1.1", "10.231.2.1"
FROM_WEB_SIDE, FROM_DB_SIDE = "10.231.1.2", "10.231.2.2"  # the admin's addresses
DOWN = "10.231.1.9"


@pytest.fixture(scope="module")
def cloud(fleet, tmp_path_factory):
    ctl, servers, base = fleet
    web_ns, db_ns = servers["web1"][0], servers["db1"][0]
    web_key, db_key = (" ".join(servers[name][3]) for name in ("web1", "db1"))
    here = tmp_path_factory.mktemp("cloud")
    emu = OpenStackEmulator()
    emu.add_server("web1", fixed={"private": [WEB]})
    emu.add_server("web1-stopped", status="SHUTOFF", fixed={"private": [WEB]})
    emu.add_server("web-badkey", fixed={"private": [DB]})
    emu.add_server("web-down", access_ipv4=DOWN)
    emu.add_server("db1", access_ipv4=DOWN)
    emu.add_server("mail1", fixed={"private": [DB]})
    # the cloud's servers are reached with the inventory's defaults, whose known_hosts has
    # web1's key for the db namespace's address: web-badkey must be refused
    (here / "known_hosts").write_text(f"[{WEB}]:2222 {web_key}\n[{DB}]:2222 {web_key}\n")
    (here / "db_known_hosts").write_text(f"[{DB}]:2222 {db_key}\n[127.0.0.1]:2222 {db_key}\n")
    (here / "inventory.toml").write_text(f"""
[defaults]
port = 2222
identity = "{base}/admin_key"
known_hosts = "{here}/known_hosts"
command = "{CFBACKUP} firewall"
connect_timeout = 5

[servers.db1]
address = "127.0.0.1"
jump = "root@{DB}:2222"
known_hosts = "{here}/db_known_hosts"
""")
    (here / "admin.toml").write_text(f"""state_dir = "{here}/state"
[profiles.ops]
source = "{here}"
target = "file://{here}/backup"
[profiles.ops.server_image]
cloud = "emulator"
""")
    listeners = []
    ctl.pool().submit(emu.start).result()  # its socket lives in ctl, where cfbackup runs
    try:
        (here / "clouds.yaml").write_text(
            emu.clouds_yaml("emulator")
            + emu.clouds_yaml("wrongpass").replace("clouds:\n", "").replace(
                f"password: {emu.password}", "password: not-the-password")
            + emu.clouds_yaml("gone").replace("clouds:\n", "").replace(emu.url,
                                                                       "http://127.0.0.1:9"))
        ctl.run("ip", "route", "add", "unreachable", f"{DOWN}/32")
        listeners = [Listeners(ns, (80, 81)) for ns in (web_ns, db_ns)]
        yield types.SimpleNamespace(emu=emu, ctl=ctl, web=web_ns, db=db_ns, here=here,
                                    web_config=servers["web1"][2] / "config.toml")
    finally:
        for listener in listeners:
            listener.close()
        ctl.run("ip", "route", "del", "unreachable", f"{DOWN}/32", check=False)
        emu.stop()


def fw(cloud, *words: str, config: str | None = None) -> subprocess.CompletedProcess:
    env = cfbackup_env({"HOME": str(cloud.here),
                        "OS_CLIENT_CONFIG_FILE": str(cloud.here / "clouds.yaml"),
                        "CFBACKUP_LOAD_PLUGINS": "firewall_lockdown,server_image"})
    env.pop("OS_CLOUD", None)
    global_options = ["-c", config] if config else []
    return cloud.ctl.run(CFBACKUP, *global_options, "firewall", "--inventory",
                         str(cloud.here / "inventory.toml"), *words, env=env, check=False,
                         timeout=90)


def probes(cloud) -> dict[str, str]:
    """Ports 80 and 81 of the web and db namespaces, from the admin's machine, all at once."""
    wanted = {f"{name}:{port}": (src, dst, port) for name, src, dst in
              (("web", FROM_WEB_SIDE, WEB), ("db", FROM_DB_SIDE, DB)) for port in (80, 81)}
    futures = {key: cloud.ctl.pool().submit(_probe, *args, 0.6) for key, args in wanted.items()}
    return {key: future.result() for key, future in futures.items()}


def seed_table(ns) -> bool:
    return ns.run("nft", "list", "table", "inet", "cfbackup_seed", check=False).returncode == 0


ALL_OPEN = {"web:80": "open", "web:81": "open", "db:80": "open", "db:81": "open"}


def test_web_changes_the_rules_of_the_matching_cloud_servers_only(cloud):
    emu, web_ns, db_ns, here = cloud.emu, cloud.web, cloud.db, cloud.here
    plan = [
        "  web-badkey: root@10.231.2.1:2222 (cloud: first fixed address, network private)",
        "  web-down: root@10.231.1.9:2222 (cloud: access IPv4)",
        "  web1: root@10.231.1.1:2222 (cloud: first fixed address, network private)",
        "  web1-stopped: skipped: SHUTOFF, not ACTIVE (cloud)",
    ]
    header = f"-s 'web' selects from cloud emulator and inventory {here}/inventory.toml:"
    try:
        dry = fw(cloud, "--cloud", "emulator", "-s", "web", "--dry-run", "enable")
        assert dry.returncode == 0, dry
        assert dry.stdout.splitlines() == [header, *plan, "dry run: nothing was changed"]
        assert ("GET", "/compute/v2.1/servers/detail") in {r[:2] for r in emu.requests}
        assert not seed_table(web_ns) and probes(cloud) == ALL_OPEN

        enabled = fw(cloud, "--cloud", "emulator", "-s", "web", "enable")
        assert enabled.returncode == 10, enabled  # web-badkey and web-down failed
        assert enabled.stderr.splitlines() == [header, *plan]  # the plan, before acting
        lines = enabled.stdout.splitlines()
        assert lines[0].startswith("web-badkey: failed: host key not trusted (")
        assert lines[0].endswith(f"): check {here}/known_hosts")
        assert lines[1:] == [
            "web-down: failed: cannot connect to 10.231.1.9:2222 (No route to host)",
            "web1: ok: seed firewall enabled",
            "web1-stopped: skipped: SHUTOFF, not ACTIVE",
        ]
        assert seed_table(web_ns) and not seed_table(db_ns)
        assert probes(cloud) == {**ALL_OPEN, "web:80": "blocked", "web:81": "blocked"}

        allowed = fw(cloud, "--cloud", "emulator", "-s", "web", "allow", "port", "80")
        assert allowed.returncode == 10
        assert "web1: ok: port 80/tcp allowed" in allowed.stdout.splitlines()
        assert probes(cloud) == {**ALL_OPEN, "web:81": "blocked"}
    finally:
        for words in (("disallow", "port", "80"), ("disable",)):
            web_ns.run(CFBACKUP, "-c", str(cloud.web_config), "firewall", *words,
                       env=cfbackup_env(), check=False)


def test_exact_names_a_jump_host_and_the_inventory_winning(cloud):
    here = cloud.here
    result = fw(cloud, "--cloud", "emulator", "-s", "web1 db1 mail", "--exact", "status")
    assert result.returncode == 2, result  # a name matching nothing
    assert result.stderr.splitlines() == [
        f"-s 'web1 db1 mail' --exact selects from cloud emulator and inventory "
        f"{here}/inventory.toml:",
        "  db1: root@127.0.0.1:2222 via root@10.231.2.1:2222 (inventory: its entry, also in "
        "the cloud)",
        "  web1: root@10.231.1.1:2222 (cloud: first fixed address, network private)",
        "  mail: failed: no server is named 'mail': check the names given with -s",
    ]
    lines = result.stdout.splitlines()
    # db1 answers only through its jump host: the cloud's address for it is down
    assert lines[0].startswith("db1: ok: lock-down: not in force; seed firewall: disabled")
    assert lines[1] == "mail: failed: no server is named 'mail': check the names given with -s"
    assert lines[2].startswith("web1: ok: lock-down: not in force")
    assert len(lines) == 3

    nothing = fw(cloud, "--cloud", "emulator", "-s", "nosuch", "status")
    assert nothing.returncode == 2 and nothing.stdout == ""
    assert nothing.stderr == (
        f"cfbackup: error: no server in cloud emulator and inventory {here}/inventory.toml "
        "matches 'nosuch' (servers: db1, mail1, web-badkey, web-down, web1, web1-stopped): check "
        "the names given with -s.\n")


def test_the_profile_names_the_cloud_and_no_cloud_leaves_it_out(cloud):
    here = cloud.here
    admin = str(here / "admin.toml")
    from_profile = fw(cloud, "-s", "db", "--dry-run", "status", config=admin)
    assert from_profile.returncode == 0, from_profile
    assert from_profile.stdout.splitlines()[:2] == [
        f"-s 'db' selects from the cloud of profile ops and inventory {here}/inventory.toml:",
        "  db1: root@127.0.0.1:2222 via root@10.231.2.1:2222 (inventory: its entry, also in "
        "the cloud)"]
    inventory_only = fw(cloud, "--no-cloud", "-s", "web", "status", config=admin)
    assert inventory_only.returncode == 2
    assert "no server in inventory" in inventory_only.stderr


@pytest.mark.parametrize("name, code, message", [
    ("nosuch", 3, "connecting to cloud nosuch: the cloud settings are unusable (Cloud nosuch "
     "was not found): check clouds.yaml and OS_CLOUD."),
    ("wrongpass", 10, "listing the servers of cloud wrongpass: Keystone rejected the "
     "credentials (401): check the user name, password and project."),
    ("gone", 10, "listing the servers of cloud gone: cannot reach the cloud at "
     "http://127.0.0.1:9/identity/v3 (Connection refused): check the auth URL and the network."),
])
def test_cloud_errors_are_one_sentence(cloud, name, code, message):
    result = fw(cloud, "--cloud", name, "-s", "web", "enable")
    assert (result.returncode, result.stdout) == (code, ""), result
    assert result.stderr == f"cfbackup: error: {message}\n"


def test_network_chooses_the_address_and_a_server_without_one_fails(cloud):
    words = ("--cloud", "emulator", "-s", "web1", "--exact", "--dry-run")
    on = fw(cloud, *words, "--network", "private", "status")
    assert on.returncode == 0, on
    assert on.stdout.splitlines()[1] == "  web1: root@10.231.1.1:2222 (cloud: network private)"
    off = fw(cloud, *words, "--network", "public", "status")
    assert off.returncode == 2, off
    assert off.stdout.splitlines()[1:] == [
        "  web1: failed: no address on network public (its networks: private) (cloud)",
        "dry run: nothing was changed"]
