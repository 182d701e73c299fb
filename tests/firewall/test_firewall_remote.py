"""``cfbackup firewall -s "web db" OPERATION`` against real sshd servers in namespaces.

    ctl ns (the admin's machine, 10.231.1.2 / 10.231.2.2)
      |-- veth --> web ns 10.231.1.1, sshd on 2222 (throwaway host key)
      '-- veth --> db  ns 10.231.2.1, sshd on 2222 (another host key)

Each server's ``cfbackup firewall`` uses its own config and state dir, keeps SSH (2222) open
from 10.231.0.0/16 and runs inside its namespace (sshd's sessions are there).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest
from fwlab import CFBACKUP, Netns, cfbackup_env, link, sh

pytestmark = pytest.mark.firewall

SSHD_CONFIG = """Port 2222
ListenAddress {address}
HostKey {dir}/host_key
PidFile {dir}/sshd.pid
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
"""

SERVER_CONFIG = """state_dir = "{dir}/state"
[profiles.site]
source = "{dir}"
target = "file://{dir}/backup"
[profiles.site.firewall_lockdown]
management_networks = ["10.231.0.0/16"]
ssh_port = 2222
backend = "nft"
"""


def _connectable(ns: Netns, address: str, port: int) -> bool:
    def attempt() -> bool:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return True
        except OSError:
            return False

    return ns.pool().submit(attempt).result()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    base = tmp_path_factory.mktemp("fleet")
    ctl, web, db = Netns("ctl"), Netns("web"), Netns("db")
    sshds: list[subprocess.Popen] = []
    try:
        for ns in (ctl, web, db):
            ns.create()
        link(web, ctl, ["10.231.1.1/24"], ["10.231.1.2/24"], ifname="eth1")
        link(db, ctl, ["10.231.2.1/24"], ["10.231.2.2/24"], ifname="eth2")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "admin_key"))
        shutil.copy(base / "admin_key.pub", base / "authorized_keys")
        known, wrong = [], []
        servers = {}
        for name, ns, address in (("web1", web, "10.231.1.1"), ("db1", db, "10.231.2.1")):
            home = base / name
            home.mkdir()
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / "host_key"))
            (home / "sshd_config").write_text(SSHD_CONFIG.format(
                address=address, dir=home, authorized_keys=base / "authorized_keys"))
            (home / "config.toml").write_text(SERVER_CONFIG.format(dir=home))
            key = (home / "host_key.pub").read_text().split()[:2]
            known.append(f"[{address}]:2222 {' '.join(key)}")
            servers[name] = (ns, address, home, key)
            sshds.append(ns.popen("/usr/sbin/sshd", "-D", "-e", "-f", str(home / "sshd_config"),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # db-badkey is db1's address with web1's host key: it must be refused
        wrong.append(f"[10.231.2.1]:2222 {' '.join(servers['web1'][3])}")
        (base / "known_hosts").write_text("\n".join(known) + "\n")
        (base / "wrong_known_hosts").write_text("\n".join(wrong) + "\n")
        command = ("env CFBACKUP_LOAD_PLUGINS=command_hooks,firewall_lockdown "
                   f"{CFBACKUP} -c {{config}} firewall")
        (base / "inventory.toml").write_text(f"""
[defaults]
user = "root"
port = 2222
identity = "{base}/admin_key"
known_hosts = "{base}/known_hosts"
connect_timeout = 5

[servers.web1]
address = "10.231.1.1"
command = "{command.format(config=base / 'web1' / 'config.toml')}"

[servers.db1]
address = "10.231.2.1"
command = "{command.format(config=base / 'db1' / 'config.toml')}"

[servers.db-badkey]
address = "10.231.2.1"
known_hosts = "{base}/wrong_known_hosts"

[servers.web-down]
address = "10.231.1.1"
port = 2299
""")
        deadline = time.monotonic() + 10
        for _, address in (("web1", "10.231.1.1"), ("db1", "10.231.2.1")):
            while not _connectable(ctl, address, 2222):
                assert time.monotonic() < deadline, "sshd did not start"
                time.sleep(0.05)
        yield ctl, servers, base
    finally:
        for process in sshds:
            process.kill()
            process.wait(5)
        for ns in (ctl, web, db):
            ns.delete()


def fw(fleet, *words: str) -> subprocess.CompletedProcess:
    ctl, _, base = fleet
    return ctl.run(CFBACKUP, "firewall", "--inventory", str(base / "inventory.toml"), *words,
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


def test_no_matching_server_is_a_usage_error(fleet):
    result = fw(fleet, "-s", "mail", "status")
    assert result.returncode == 2
    assert "no server in" in result.stderr and "matches 'mail'" in result.stderr
    assert "servers: db-badkey, db1, web-down, web1" in result.stderr
