"""Real sshd servers in network namespaces, for ``cfbackup firewall -s`` (one fleet a session).

    ctl ns (the admin's machine, 10.231.1.2 / 10.231.2.2)
      |-- veth --> web ns 10.231.1.1, sshd on 2222 (throwaway host key)
      '-- veth --> db  ns 10.231.2.1, sshd on 2222 (another host key)

Each sshd also listens on its namespace's 127.0.0.1 (reachable only through it, as a jump host)
and starts its sessions with ``CFBACKUP_CONFIG`` set to that server's own config (so a plain
``cfbackup firewall`` works there, as for servers found in a cloud). Each server's ``cfbackup
firewall`` uses its own config and state dir, keeps SSH (2222) open from 10.231.0.0/16 and runs
inside its namespace (sshd's sessions are there). ``inventory.toml`` lists web1, db1, db-badkey
(db1's address, web1's host key expected) and web-down (a port nobody listens on).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from fwlab import CFBACKUP, Netns, link, sh

SSHD_CONFIG = """Port 2222
ListenAddress {address}
ListenAddress 127.0.0.1
HostKey {dir}/host_key
PidFile {dir}/sshd.pid
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv CFBACKUP_CONFIG={dir}/config.toml CFBACKUP_LOAD_PLUGINS=command_hooks,firewall_lockdown
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


@contextlib.contextmanager
def ssh_fleet(base: Path) -> Iterator[tuple[Netns, dict, Path]]:
    """The namespaces, host keys, sshd and the static inventory of the module docstring, in
    ``base``; yields ``(ctl, servers, base)``, ``servers[name] = (ns, address, home, key)``."""
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


