"""Fixtures of the firewall_lockdown tests: the namespaces of :mod:`fwlab` and the sshd fleet
of :mod:`sshfleet`, created once per session, and a clean server namespace holding only the
site's own firewall for each test; a small tree backed up once per test module for the restore
tests."""

from __future__ import annotations

import subprocess

import pytest
from fwlab import (
    CFBACKUP,
    MGMT4,
    MGMT6,
    OTHER4,
    OTHER6,
    SERVER4,
    SERVER6,
    SERVICE_PORT,
    SITE_RULESET,
    SSH_PORT,
    Lab,
    Listeners,
    Netns,
    cfbackup_env,
    link,
    write_config,
)
from sshfleet import ssh_fleet


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "firewall: needs root and network namespaces (real nft/iptables traffic)")


@pytest.fixture(scope="session")
def lab():
    server, client = Netns("srv"), Netns("cli")
    listeners = None
    try:
        server.create()
        client.create()
        link(server, client, [f"{SERVER4}/24", f"{SERVER6}/64"],
             [f"{MGMT4}/24", f"{OTHER4}/24", f"{MGMT6}/64", f"{OTHER6}/64"])
        listeners = Listeners(server, (SSH_PORT, SERVICE_PORT))
        lab = Lab(server, client, listeners)
        # the first packets may go out before the veth pair has its carrier: warm up
        for src, dst in ((MGMT4, SERVER4), (OTHER4, SERVER4), (MGMT6, SERVER6), (OTHER6, SERVER6)):
            assert lab.probe(src, dst, SERVICE_PORT, timeout=5) == "open"
        yield lab
    finally:
        if listeners is not None:
            listeners.close()
        for ns in (client, server):
            ns.delete()


@pytest.fixture
def site(lab):
    """A clean server namespace holding only the site's own firewall (nft and iptables rules);
    afterwards every process left in it is killed and its ruleset flushed."""
    lab.server.kill_all()
    lab.server.run("nft", "flush", "ruleset")
    lab.server.run("nft", "-f", "-", input=SITE_RULESET)
    lab.server.run("iptables", "-A", "INPUT", "-p", "tcp", "--dport", "9999", "-j", "ACCEPT")
    lab.server.run("ip6tables", "-A", "INPUT", "-p", "udp", "--dport", "9998", "-j", "DROP")
    yield lab
    lab.server.kill_all()
    lab.server.run("nft", "flush", "ruleset")


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory):
    """A small tree backed up once (file:// target, duplicity) for the restore tests."""
    data = tmp_path_factory.mktemp("data")
    (data / "src").mkdir()
    (data / "src" / "data.txt").write_text("restored bytes\n")
    config = str(write_config(data / "config.toml", data=data))
    backup = subprocess.run([CFBACKUP, "-c", config, "backup"], env=cfbackup_env(),
                            capture_output=True, text=True, timeout=120)
    assert backup.returncode == 0, backup.stderr
    return data


@pytest.fixture(scope="session")
def fleet(tmp_path_factory):
    """Servers with real sshd in namespaces, for ``firewall -s`` (:mod:`sshfleet`)."""
    with ssh_fleet(tmp_path_factory.mktemp("fleet")) as found:
        yield found
