"""The lock-down with real packets: by hand, around a real restore, and when cfbackup dies.
A firewall reloaded or changed under the lock-down is in ``test_firewall_drift.py``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time

import pytest
from fwlab import (
    CFBACKUP,
    OTHER4,
    SERVER4,
    SERVICE_PORT,
    cfbackup_env,
    start_restore,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.firewall


def _without_nft(tmp_path) -> dict:
    """A tool search path holding iptables and ip6tables but no nft: a host without nftables."""
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    for tool in ("iptables", "ip6tables"):
        for suffix in ("", "-save", "-restore"):
            os.symlink(shutil.which(tool + suffix), sbin / (tool + suffix))
    return {"CFBACKUP_FIREWALL_PATH": str(sbin)}


@pytest.mark.parametrize("backend, nft_installed, used", [
    ("nft", True, "nft"),
    ("auto", False, "iptables"),  # the fallback: auto picks iptables where nft is absent
])
def test_lock_and_unlock_by_hand(site, tmp_path, backend, nft_installed, used):
    config = str(write_config(tmp_path / "config.toml", backend=backend))
    env = {} if nft_installed else _without_nft(tmp_path)
    before, before_iptables = site.ruleset(), site.iptables_save()
    site.expect(service="open")

    locked = site.cfbackup("-c", config, "firewall", "lock", env=env)
    assert locked.returncode == 0, locked.stderr
    assert f"firewall locked down ({used})" in locked.stdout
    site.expect(service="blocked", ssh_mgmt="open", ssh_other="blocked")
    during = site.ruleset()

    status = site.cfbackup("-c", config, "firewall", "status", env=env)
    assert "lock-down: in force since" in status.stdout, status.stderr
    assert "dead-man: pid" in status.stdout and "(running)" in status.stdout

    again = site.cfbackup("-c", config, "firewall", "lock", env=env)
    assert again.returncode == 0 and "already in force" in again.stdout
    assert site.ruleset() == during

    unlocked = site.cfbackup("-c", config, "firewall", "unlock", env=env)
    assert unlocked.returncode == 0, unlocked.stderr
    assert "lock-down lifted" in unlocked.stdout
    assert "differs" not in unlocked.stderr
    site.expect(service="open")
    assert site.ruleset() == before
    assert site.iptables_save() == before_iptables

    again = site.cfbackup("-c", config, "firewall", "unlock", env=env)
    assert again.returncode == 0 and "no firewall lock-down was in force" in again.stdout
    assert "not in force" in site.cfbackup("-c", config, "firewall", "status", env=env).stdout
    # the dead-man of the manual lock went away with the unlock
    assert wait_for(lambda: not site.server.pids(), 10)


def test_changes_made_during_the_lockdown_are_reported_and_reload_saved_undoes_them(
        site, tmp_path):
    config = str(write_config(tmp_path / "config.toml"))
    before = site.ruleset()
    site.cfbackup("-c", config, "firewall", "lock", check=True)
    # something else (a restored service, an admin) changes the firewall meanwhile
    site.server.run("nft", "add", "table", "inet", "meanwhile")
    unlocked = site.cfbackup("-c", config, "firewall", "unlock")
    assert unlocked.returncode == 0
    assert "differs from the copy saved before the lock-down" in unlocked.stderr
    assert "table inet meanwhile" in site.ruleset()  # other changes are not clobbered...

    site.cfbackup("-c", config, "firewall", "lock", check=True)
    site.server.run("nft", "add", "table", "inet", "later")
    unlocked = site.cfbackup("-c", config, "firewall", "unlock", "--reload-saved")
    assert unlocked.returncode == 0, unlocked.stderr
    assert "saved ruleset reloaded" in unlocked.stdout
    assert "table inet later" not in site.ruleset()  # ...unless asked to
    assert "table inet meanwhile" in site.ruleset()  # (saved by the second lock)
    site.server.run("nft", "delete", "table", "inet", "meanwhile")
    assert site.ruleset() == before


def test_manual_lock_is_lifted_by_the_dead_man_at_its_timeout(site, tmp_path):
    config = str(write_config(tmp_path / "config.toml"))
    before = site.ruleset()
    started = time.monotonic()
    locked = site.cfbackup("-c", config, "firewall", "lock", "--timeout", "2")
    assert locked.returncode == 0, locked.stderr
    assert site.probe(OTHER4, SERVER4, SERVICE_PORT) == "blocked"
    assert wait_for(lambda: site.ruleset() == before, 8, interval=0.2)
    assert time.monotonic() - started >= 1.5
    site.expect(service="open")
    log = tmp_path / "state" / "firewall" / "deadman.log"
    assert wait_for(lambda: log.read_text().endswith("lifted\n"), 5), log.read_text()
    assert "timeout of 2 s passed" in log.read_text()


def test_restore_runs_locked_down_and_the_ruleset_comes_back_exactly(site, tmp_path, backed_up):
    before = site.ruleset()
    site.expect(service="open")
    process, config = start_restore(site, tmp_path, backed_up)
    with process:
        site.expect(service="blocked", ssh_mgmt="open", ssh_other="blocked")
        status = site.cfbackup("-c", config, "firewall", "status")
        assert "held by: cfbackup restore of profile site" in status.stdout
        (tmp_path / "flags" / "go").write_text("0")
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert (tmp_path / "restored" / "data.txt").read_text() == "restored bytes\n"
    site.expect(service="open")
    assert site.ruleset() == before
    assert not (tmp_path / "state" / "firewall" / "lockdown.json").exists()
    assert wait_for(lambda: not site.server.pids(), 10)  # the dead-man was called off


def test_failed_restore_restores_the_ruleset(site, tmp_path, backed_up):
    before = site.ruleset()
    process, _ = start_restore(site, tmp_path, backed_up)
    with process:
        assert site.probe(OTHER4, SERVER4, SERVICE_PORT) == "blocked"
        (tmp_path / "flags" / "go").write_text("1")  # the hook fails: the restore is vetoed
        out, err = process.communicate(timeout=60)
    assert process.returncode == 5, err
    assert "before_restore command" in err
    assert site.ruleset() == before
    site.expect(service="open")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_restore_restores_the_ruleset(site, tmp_path, backed_up, signum):
    before = site.ruleset()
    process, _ = start_restore(site, tmp_path, backed_up)
    with process:
        assert site.probe(OTHER4, SERVER4, SERVICE_PORT) == "blocked"
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert site.ruleset() == before
    site.expect(service="open")


@pytest.mark.parametrize("backend", ["nft", "iptables"])
def test_kill_9_during_restore_the_dead_man_restores_it(site, tmp_path, backed_up, backend):
    before, before_iptables = site.ruleset(), site.iptables_save()
    process, _ = start_restore(site, tmp_path, backed_up, backend=backend,
                                  deadman_timeout=600)
    with process:
        assert site.probe(OTHER4, SERVER4, SERVICE_PORT) == "blocked"
        process.kill()
        process.wait(10)
        killed = time.monotonic()
        # the dead-man polls twice a second: at once, not at its timeout (600 s)
        assert wait_for(lambda: site.ruleset() == before, 10), site.ruleset()
        assert time.monotonic() - killed < 10
    assert site.iptables_save() == before_iptables
    site.expect(service="open")
    log = tmp_path / "state" / "firewall" / "deadman.log"
    assert wait_for(lambda: log.read_text().endswith("lifted\n"), 5), log.read_text()
    assert "ended without lifting it" in log.read_text()


def test_invalid_allow_rule_changes_nothing(site, tmp_path):
    config = write_config(tmp_path / "config.toml")
    config.write_text(config.read_text().replace('"tcp/8443 from 10.231.9.0/24"',
                                                 '"tcp/99999", "ssh from nowhere"'))
    before = site.ruleset()
    result = site.cfbackup("-c", str(config), "firewall", "lock")
    assert result.returncode == 3
    assert "profiles.site.firewall_lockdown.allow: '99999' is not a port number" in result.stderr
    assert "'ssh from nowhere' is not a rule" in result.stderr
    assert site.ruleset() == before


def test_not_root_is_refused_with_a_clear_message(site, tmp_path):
    before = site.ruleset()
    result = site.server.run(
        "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
        CFBACKUP, "firewall", "lock", env=cfbackup_env({"HOME": "/nonexistent"}), check=False,
        cwd="/")
    assert result.returncode == 5, result.stderr
    assert result.stderr.strip() == (
        "cfbackup: error: cfbackup firewall lock changes the firewall, which needs root "
        "(CAP_NET_ADMIN): run it as root, e.g. with sudo.")
    assert site.ruleset() == before
    result = site.server.run(
        "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
        CFBACKUP, "firewall", "status", env=cfbackup_env({"HOME": "/nonexistent"}), check=False,
        cwd="/")
    assert result.returncode == 5
    assert "cfbackup firewall status reads the firewall, which needs root" in result.stderr


@pytest.mark.parametrize("backend, message", [
    ("auto", "neither nft nor iptables was found (looked in /nonexistent): install nftables"),
    ("nft", "nft was not found (looked in /nonexistent): install nftables"),
    ("iptables", "iptables, iptables-save and iptables-restore were not all found"),
])
def test_missing_firewall_tools_are_a_clear_error(site, tmp_path, backend, message):
    config = str(write_config(tmp_path / "config.toml", backend=backend))
    result = site.cfbackup("-c", config, "firewall", "lock",
                           env={"CFBACKUP_FIREWALL_PATH": "/nonexistent"})
    assert result.returncode == 5
    assert message in result.stderr
    assert not (tmp_path / "state" / "firewall" / "lockdown.json").exists()


def test_status_works_without_a_config_file(site, tmp_path):
    """No config anywhere: defaults (SSH from anywhere), state in /var/lib/cfbackup."""
    env = {"HOME": str(tmp_path)}  # so ~/.config/cfbackup and ~/.dt-cf-backup.conf are absent
    status = site.cfbackup("firewall", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert "lock-down: not in force" in status.stdout
    assert "SSH 22/tcp from anywhere" in status.stdout


def test_check_reports_the_lockdown_settings_tool_and_privileges(tmp_path):
    (tmp_path / "src").mkdir()
    config = str(write_config(tmp_path / "config.toml", management=()))
    result = subprocess.run([CFBACKUP, "-c", config, "check"], env=cfbackup_env(),
                            capture_output=True, text=True, timeout=60)
    assert "[ok] firewall lock-down settings: SSH 22/tcp from anywhere (set " \
           "management_networks to narrow it); 2 more allow rule(s); dead-man after 60 s" \
        in result.stdout, result.stdout + result.stderr
    assert "[ok] firewall tool: nft: nftables v" in result.stdout
    assert "[ok] firewall privileges: root (CAP_NET_ADMIN)" in result.stdout


def _kill_restore_and_deadman(site, tmp_path, process) -> int:
    """kill -9 cfbackup and its dead-man together (a unit killed with KillMode=control-group,
    the OOM killer): the lock-down stays with nobody to lift it. Returns cfbackup's PID."""
    record = json.loads((tmp_path / "state" / "firewall" / "lockdown.json").read_text())
    os.kill(record["deadman_pid"], signal.SIGKILL)
    process.kill()
    process.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.kill(record["owner_pid"], signal.SIGKILL)
    gone = [record["owner_pid"], record["deadman_pid"]]
    assert wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in gone), 10)
    return record["owner_pid"]


@pytest.mark.parametrize("backend", ["nft", "iptables"])
def test_orphaned_lockdown_is_reported_failed_by_check_and_taken_over(site, tmp_path, backed_up,
                                                                      backend):
    before, before_iptables = site.ruleset(), site.iptables_save()
    process, config = start_restore(site, tmp_path, backed_up, backend=backend,
                                     deadman_timeout=600)
    with process:
        owner = _kill_restore_and_deadman(site, tmp_path, process)
    time.sleep(1)  # a dead-man would have lifted it by now: nobody does
    assert site.ruleset() != before
    unlock = f"cfbackup -c {config} firewall unlock"

    status = site.cfbackup("-c", config, "firewall", "status")
    assert status.returncode == 0, status.stderr
    assert f"(pid {owner}, NOT running)" in status.stdout
    assert "at the latest" not in status.stdout  # no deadline nobody keeps
    assert "is orphaned" in status.stderr and "nobody will lift it" in status.stderr
    assert unlock in status.stderr
    state = json.loads(site.cfbackup("-c", config, "firewall", "status", "--json").stdout)
    assert state["orphaned"] is True and state["owner_alive"] is False
    assert state["deadman_alive"] is False and unlock in state["advice"]

    overview = site.cfbackup("-c", config, "status", "site")
    assert overview.returncode == 0, overview.stderr
    assert "  WARNING: the firewall lock-down in force since" in overview.stdout
    assert "is orphaned" in overview.stdout and unlock in overview.stdout
    overview = json.loads(site.cfbackup("-c", config, "status", "site", "--json").stdout)
    assert len(overview["plugin_warnings"]) == 1 and unlock in overview["plugin_warnings"][0]

    check = site.cfbackup("-c", config, "check", "site")
    assert check.returncode == 5, check.stdout + check.stderr
    assert "firewall lock-down in force: the firewall lock-down in force since" in check.stdout
    assert unlock in check.stdout

    # the next restore takes it over: its own dead-man, this profile's rules, lifted at its end
    (tmp_path / "flags" / "locked").unlink()
    again = site.server.popen(CFBACKUP, "-c", config, "restore", "site", str(tmp_path / "again"),
                              env=cfbackup_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    with again:
        assert wait_for(lambda: (tmp_path / "flags" / "locked").exists(), 30)
        taken = json.loads(site.cfbackup("-c", config, "firewall", "status", "--json").stdout)
        assert taken["token"] != state["token"] and taken["owner_pid"] != owner
        assert taken["orphaned"] is False and taken["owner_alive"] and taken["deadman_alive"]
        site.expect(service="blocked", ssh_mgmt="open", ssh_other="blocked")
        (tmp_path / "flags" / "go").write_text("0")
        out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert "took over the orphaned firewall lock-down" in err
    assert "differs" not in err  # the orphan's saved ruleset (from before it) is kept
    assert site.ruleset() == before and site.iptables_save() == before_iptables
    site.expect(service="open")
    assert not (tmp_path / "state" / "firewall" / "lockdown.json").exists()


def _second_profile(config: str, data) -> None:
    """Add profile ``two`` (a copy of the same backup: two profiles may not share a target;
    lock-down with the defaults) to ``config``."""
    shutil.copytree(f"{data}/backup", f"{data}/backup-two", dirs_exist_ok=True)
    with open(config, "a", encoding="utf-8") as handle:
        handle.write(f"""
[profiles.two]
source = "{data}/src"
target = "file://{data}/backup-two"
archive_dir = "{data}/archive-two"
[profiles.two.encryption]
mode = "none"
[profiles.two.firewall_lockdown]
enabled = true
""")


def test_a_restore_is_refused_while_another_restore_holds_the_lockdown(site, tmp_path,
                                                                      backed_up):
    process, config = start_restore(site, tmp_path, backed_up)
    _second_profile(config, backed_up)
    with process:
        during = site.ruleset()
        second = site.cfbackup("-c", config, "restore", "two", str(tmp_path / "two"))
        assert second.returncode == 4, second.stderr
        assert "the firewall lock-down is held by cfbackup restore of profile site (pid " \
            in second.stderr
        assert "run this restore again once that run has ended" in second.stderr
        assert not (tmp_path / "two").exists()
        assert site.ruleset() == during  # the first run's lock-down is untouched
        (tmp_path / "flags" / "go").write_text("0")  # the first goes on (its hook waited 60 s)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
