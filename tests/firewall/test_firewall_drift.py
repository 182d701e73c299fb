"""The lock-down when the firewall changes under it, with real packets: a reload during a restore
(the dead-man puts the lock-down back), a foreign table of the same name, the lock-down removed
by hand, counters and tables that are no change, and the saved copy ``reload-saved`` puts back."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest
from fwlab import (
    OTHER4,
    SERVER4,
    SERVICE_PORT,
    SITE_RULESET,
    start_restore,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.firewall


def _reload_firewall(site, backend: str) -> None:
    """What ``systemctl reload nftables`` (or netfilter-persistent for iptables) does: the
    whole ruleset replaced by the site's own, without cfbackup's lock-down."""
    if backend == "nft":
        site.server.run("nft", "-f", "-", input="flush ruleset\n" + SITE_RULESET)
    else:
        site.server.run("iptables-restore", input="*filter\n:INPUT ACCEPT [0:0]\n"
                        "-A INPUT -p tcp --dport 9999 -j ACCEPT\nCOMMIT\n")


@pytest.mark.parametrize("backend", ["nft", "iptables"])
def test_firewall_reload_during_restore_the_dead_man_reapplies_the_lockdown(
        site, tmp_path, backed_up, backend):
    process, _ = start_restore(site, tmp_path, backed_up, backend=backend, deadman_timeout=600)
    with process:
        assert site.probe(OTHER4, SERVER4, SERVICE_PORT) == "blocked"
        _reload_firewall(site, backend)
        # the dead-man polls twice a second: locked down again at once, the owner still runs
        assert wait_for(lambda: site.probe(OTHER4, SERVER4, SERVICE_PORT, timeout=0.3)
                        == "blocked", 5)
        site.expect(service="blocked", ssh_mgmt="open", ssh_other="blocked")
        (tmp_path / "flags" / "go").write_text("0")
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "was removed by something else 1 time(s) during the run" in err
    assert "re-applied it" in err
    assert "raise deadman_timeout" not in err
    # the reloaded ruleset stays, nothing of ours left; with nft the reload dropped the
    # iptables-nft tables, which the usual warning names
    assert "cfbackup_lockdown" not in site.ruleset()
    assert "CFBACKUP_LOCKDOWN" not in site.iptables_save()
    assert ("differs from the copy saved before the lock-down" in err) == (backend == "nft")
    site.expect(service="open")
    log = (tmp_path / "state" / "firewall" / "deadman.log").read_text()
    assert "was removed by something else while it was held" in log


@pytest.mark.parametrize("backend", ["nft", "iptables"])
def test_a_foreign_table_of_the_same_name_is_refused_never_adopted_nor_deleted(
        site, tmp_path, backed_up, backend):
    if backend == "nft":
        site.server.run("nft", "add", "table", "inet", "cfbackup_lockdown")
        where = "nft table inet cfbackup_lockdown"
    else:
        site.server.run("iptables", "-N", "CFBACKUP_LOCKDOWN")
        where = "iptables chain CFBACKUP_LOCKDOWN"
    before, before_iptables = site.ruleset(), site.iptables_save()
    config = str(write_config(tmp_path / "config.toml", backend=backend, data=backed_up))
    message = f"{where} exists but was not made by cfbackup"

    locked = site.cfbackup("-c", config, "firewall", "lock")
    assert locked.returncode == 5 and message in locked.stderr, locked.stderr
    restore = site.cfbackup("-c", config, "restore", "site", str(tmp_path / "restored"))
    assert restore.returncode == 5 and message in restore.stderr, restore.stderr
    assert not (tmp_path / "restored").exists()
    status = site.cfbackup("-c", config, "firewall", "status")
    assert message in status.stderr and "in force since" not in status.stdout
    state = json.loads(site.cfbackup("-c", config, "firewall", "status", "--json").stdout)
    assert state["locked"] is False and state["foreign"] is True and message in state["advice"]
    unlocked = site.cfbackup("-c", config, "firewall", "unlock")
    assert unlocked.returncode == 5 and message in unlocked.stderr, unlocked.stderr
    check = site.cfbackup("-c", config, "check", "site")
    assert check.returncode == 5 and message in check.stdout
    assert site.ruleset() == before and site.iptables_save() == before_iptables
    site.expect(service="open")
    if backend == "iptables":
        site.server.run("iptables", "-X", "CFBACKUP_LOCKDOWN")




def test_lockdown_removed_by_hand_during_restore_is_not_blamed_on_the_timeout(
        site, tmp_path, backed_up):
    process, config = start_restore(site, tmp_path, backed_up, deadman_timeout=600)
    with process:
        site.cfbackup("-c", config, "firewall", "unlock", check=True)
        (tmp_path / "flags" / "go").write_text("0")
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "lifted before the run ended (by cfbackup -c" in err
    assert "raise deadman_timeout" not in err


def test_named_counters_and_quotas_are_not_reported_as_changes(site, tmp_path):
    site.server.run("nft", "-f", "-", input="""table inet counted {
\tcounter ssh { }
\tquota q { over 100 mbytes }
\tchain input {
\t\ttype filter hook input priority filter + 5; policy accept;
\t\ttcp dport 22 counter name "ssh" quota name "q" quota 50 mbytes
\t}
}
""")
    config = str(write_config(tmp_path / "config.toml"))
    site.cfbackup("-c", config, "firewall", "lock", check=True)
    site.expect(service="blocked", ssh_mgmt="open", ssh_other="blocked")  # counts SSH packets
    counted = site.ruleset()
    assert re.search(r"counter ssh \{\s*packets [1-9]", counted), counted
    assert re.search(r"quota q \{\s*over 100 mbytes used [1-9]", counted), counted
    unlocked = site.cfbackup("-c", config, "firewall", "unlock")
    assert unlocked.returncode == 0, unlocked.stderr
    assert "differs" not in unlocked.stderr


def test_the_empty_ip6_filter_table_our_chain_created_is_not_a_change(site, tmp_path):
    site.server.run("nft", "delete", "table", "ip6", "filter")  # a host without ip6 filter
    config = str(write_config(tmp_path / "config.toml", backend="iptables"))
    site.cfbackup("-c", config, "firewall", "lock", check=True)
    unlocked = site.cfbackup("-c", config, "firewall", "unlock")
    assert unlocked.returncode == 0, unlocked.stderr
    assert "differs" not in unlocked.stderr


def test_the_printed_reload_saved_command_runs_as_printed(site, tmp_path):
    config = str(write_config(tmp_path / "config.toml"))
    before = site.ruleset()
    site.cfbackup("-c", config, "firewall", "lock", check=True)
    site.server.run("nft", "add", "table", "inet", "meanwhile")
    unlocked = site.cfbackup("-c", config, "firewall", "unlock")
    kept = tmp_path / "state" / "firewall" / "kept-ruleset.nft"
    assert f"the saved copy is kept in {kept}" in unlocked.stderr, unlocked.stderr
    printed = unlocked.stderr.rsplit(" (", 1)[1].split(" loads it back)")[0]
    assert printed == f"cfbackup -c {config} firewall unlock --reload-saved"
    # a later lock-down does not overwrite the copy the user was told about
    site.cfbackup("-c", config, "firewall", "lock", check=True)
    site.cfbackup("-c", config, "firewall", "unlock", check=True)
    assert "table inet meanwhile" not in kept.read_text()
    reloaded = site.cfbackup("-c", config, *printed.split()[3:])
    assert reloaded.returncode == 0, reloaded.stderr
    assert f"saved ruleset reloaded from {kept}" in reloaded.stdout
    assert site.ruleset() == before


def test_iptables_without_ip6tables_on_an_ipv6_host_warns_and_check_fails(site, tmp_path):
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    for suffix in ("", "-save", "-restore"):
        os.symlink(shutil.which("iptables" + suffix), sbin / ("iptables" + suffix))
    env = {"CFBACKUP_FIREWALL_PATH": str(sbin)}
    (tmp_path / "src").mkdir()
    config = str(write_config(tmp_path / "config.toml", backend="iptables"))
    assert site.server.run("cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6").stdout.strip() == "0"
    locked = site.cfbackup("-c", config, "firewall", "lock", env=env)
    assert locked.returncode == 0, locked.stderr
    assert ("IPv6 is enabled in this kernel but ip6tables, ip6tables-save or ip6tables-restore "
            "is missing, so the lock-down leaves IPv6 traffic unfiltered: install ip6tables "
            "(apt install iptables) or use the nft backend (apt install nftables).") \
        in locked.stderr
    site.cfbackup("-c", config, "firewall", "unlock", env=env, check=True)
    checked = site.cfbackup("-c", config, "check", env=env)
    assert "firewall tool: IPv6 is enabled in this kernel but ip6tables" in checked.stdout, \
        checked.stdout + checked.stderr
    assert "[ok] firewall tool" not in checked.stdout
    assert checked.returncode != 0
