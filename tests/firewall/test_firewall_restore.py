"""The lock-down around a real restore from Swift, and the dead-man's promises.

The restore runs in the server namespace and downloads from the session's Swift through the
relay of :mod:`cloudlink` (a remote cloud, as far as the server can tell): duplicity and gpg
really run under the lock-down, and the relay holds the download in the middle for as long as
the test acts. Then SIGTERM, SIGINT or SIGKILL goes to the whole process group (cfbackup,
duplicity, gpg), as a terminal's Ctrl-C or a service manager does.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import textwrap
import time
import uuid

import pytest
from cfbackup_firewall_lockdown import render
from cfbackup_firewall_lockdown.backends import comment_for
from cfbackup_firewall_lockdown.record import process_alive
from cfbackup_firewall_lockdown.settings import settings_from_section
from cloudlink import CLOUD4, Relay
from fwlab import CFBACKUP, OTHER4, SERVER4, SERVICE_PORT, cfbackup_env, wait_for, write_config
from support.cli import PASSPHRASE, stop_gpg_agent
from support.trees import assert_same_tree

pytestmark = [pytest.mark.firewall, pytest.mark.swift]

HELD_AFTER = 2_500_000  # bytes of the download: the third of six 1 MB volumes
STOP_BOUND = 5  # seconds from SIGTERM or SIGINT to cfbackup's exit, the lock-down lifted


@pytest.fixture(scope="module")
def cloud(lab, local_swift):
    lab.client.run("ip", "addr", "add", f"{CLOUD4}/24", "dev", "eth0")
    port = int(local_swift.proxy_url.rsplit(":", 1)[1])
    relay = Relay(lab.client, ("127.0.0.1", port))
    yield relay
    relay.close()
    lab.client.run("ip", "addr", "del", f"{CLOUD4}/24", "dev", "eth0", check=False)


@pytest.fixture(scope="module")
def stored(tmp_path_factory, local_swift):
    """Six MB of random data (six volumes) and a few small files, backed up from the host
    to a container of the session's Swift, encrypted."""
    base = tmp_path_factory.mktemp("stored")
    source = base / "src"
    (source / "etc").mkdir(parents=True)
    (source / "etc" / "app.conf").write_text("listen = 8080\n")
    (source / "data.bin").write_bytes(random.Random(7).randbytes(6 << 20))
    container = f"fw-{uuid.uuid4().hex[:10]}"
    config = _config(base, local_swift, container, local_swift.auth_url, source=source)
    done = subprocess.run([CFBACKUP, "-c", str(config), "backup"], env=_env(local_swift, base),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    yield {"source": source, "container": container}
    stop_gpg_agent(base / "gnupg")


def _env(local_swift, base) -> dict:
    home = base / "gnupg"
    home.mkdir(mode=0o700, exist_ok=True)
    return cfbackup_env({"T_PASSPHRASE": PASSPHRASE, "GNUPGHOME": str(home),
                         "T_SWIFT_KEY": local_swift.users["admin"][1]})


def _config(base, local_swift, container, auth_url, *, source, deadman_timeout=600):
    config = write_config(base / "config.toml", deadman_timeout=deadman_timeout, data=base)
    text = config.read_text()
    text = text.replace(f'target = "file://{base}/backup"', f'target = "swift://{container}"')
    text = text.replace(f'source = "{base}/src"', f'source = "{source}"')
    text = text.replace('[profiles.site.encryption]\nmode = "none"\n', textwrap.dedent(f"""\
        volsize = 1
        [profiles.site.retention]
        after_backup = false
        [profiles.site.swift]
        auth_url = "{auth_url}"
        username = "{local_swift.users["admin"][0]}"
        password_env = "T_SWIFT_KEY"
        [profiles.site.encryption]
        passphrase_env = "T_PASSPHRASE"
        """))
    config.write_text(text)
    config.chmod(0o600)
    return config


def _start_restore(site, cloud, stored, local_swift, tmp_path, *, deadman_timeout=600):
    """``cfbackup restore`` in the server namespace, its own process group; returns once the
    relay holds the download in the middle (duplicity is then restoring, locked down)."""
    config = _config(tmp_path, local_swift, stored["container"], cloud.url,
                     source=stored["source"], deadman_timeout=deadman_timeout)
    cloud.hold_after(HELD_AFTER)
    process = site.server.popen(
        CFBACKUP, "-c", str(config), "restore", "site", str(tmp_path / "restored"),
        env=_env(local_swift, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as at a terminal
    try:
        assert wait_for(lambda: cloud.holding() or process.poll() is not None, 180), \
            "the restore never got halfway through its download"
        assert process.poll() is None, process.communicate(timeout=5)
        # the prefetch may reach the hold before duplicity has started: it starts regardless
        assert wait_for(lambda: _running(site, "cfbackup-duplicity", " restore "), 30), \
            "no duplicity restore runs"
    except BaseException:
        cloud.release()
        process.kill()
        raise
    return process


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _running(site, *words: str) -> list[int]:
    return [p for p in site.server.pids() if all(w in _cmdline(p) for w in words)]


def _duplicity_or_gpg(site) -> list[str]:
    """duplicity and gpg processes left in the server namespace (gpg-agent is gpg's daemon,
    shared by every gpg of that GNUPGHOME: not a leftover of the restore)."""
    return [line for line in map(_cmdline, site.server.pids())
            if re.search(r"duplicity|(^|/)gpg ", line) and "gpg-agent" not in line]


def test_restore_from_the_cloud_runs_locked_down_and_completes(
        site, cloud, stored, local_swift, tmp_path):
    """Established traffic passes: the restore downloads through the lock-down it is in."""
    before = site.ruleset()
    process = _start_restore(site, cloud, stored, local_swift, tmp_path)
    with process:
        site.expect(service="blocked", ssh_mgmt="open", ssh_other="blocked")
        cloud.release()
        out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert_same_tree(stored["source"], tmp_path / "restored")
    assert site.ruleset() == before
    site.expect(service="open")
    assert "lifted before the run ended" not in err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL],
                         ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_signal_to_the_whole_group_mid_download(site, cloud, stored, local_swift, tmp_path,
                                                signum):
    before, before_iptables = site.ruleset(), site.iptables_save()
    process = _start_restore(site, cloud, stored, local_swift, tmp_path)
    with process:
        assert site.probe(OTHER4, SERVER4, SERVICE_PORT) == "blocked"
        signalled = time.monotonic()
        os.killpg(process.pid, signum)
        try:
            _, err = process.communicate(timeout=90)
        finally:
            cloud.release()
        took = time.monotonic() - signalled
    if signum == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
        # the dead-man (its own session, not in the group) lifts it within about a second
        assert wait_for(lambda: site.ruleset() == before, 10), site.ruleset()
        log = (tmp_path / "state" / "firewall" / "deadman.log").read_text()
        assert "ended without lifting it" in log
    else:
        assert process.returncode == 130, err
        errors = [line for line in err.splitlines() if "error" in line.lower()]
        assert len(errors) == 1 and "error: interrupted" in errors[0], err
        # the prefetch's downloads wait on the held relay, one of them for its headers: they
        # end at once (it used to sit until swiftclient's 30 s timeout, the lock-down with it)
        assert took < STOP_BOUND, f"cfbackup took {took:.1f} s to stop"
        assert site.ruleset() == before  # lifted by cfbackup itself, before it exited
    assert site.iptables_save() == before_iptables
    assert wait_for(lambda: not _duplicity_or_gpg(site), 10), _duplicity_or_gpg(site)
    site.expect(service="open")


def test_deadline_ends_the_lockdown_early_and_the_restore_says_so(
        site, cloud, stored, local_swift, tmp_path):
    before = site.ruleset()
    process = _start_restore(site, cloud, stored, local_swift, tmp_path, deadman_timeout=2)
    with process:
        # the dead-man lifts it at its deadline while the restore still runs
        assert wait_for(lambda: site.ruleset() == before, 15), site.ruleset()
        assert process.poll() is None
        cloud.release()
        out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "the firewall lock-down was lifted before the run ended" in err
    assert "raise deadman_timeout" in err
    assert site.ruleset() == before
    assert_same_tree(stored["source"], tmp_path / "restored")


# ---- the dead-man's promises (docs/plugins/firewall_lockdown.md, "The dead-man") ----------


def _record_path(tmp_path):
    return tmp_path / "state" / "firewall" / "lockdown.json"


def _rewrite_record(tmp_path, **changes) -> None:
    """Change the record the dead-man polls (atomically: it must never read half a file)."""
    path = _record_path(tmp_path)
    record = json.loads(path.read_text())
    record.update(changes)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record))
    temporary.chmod(0o600)
    os.replace(temporary, path)


def _start_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[19])


def test_a_reused_pid_is_not_the_owner(site, tmp_path):
    """The record names an owner by PID and start time: a live process with that PID but
    another start time is not cfbackup (the PID was reused), and the lock-down is lifted."""
    config = str(write_config(tmp_path / "config.toml"))
    before = site.ruleset()
    locked = site.cfbackup("-c", config, "firewall", "lock", "--timeout", "600")
    assert locked.returncode == 0, locked.stderr
    stranger = site.server.popen("sleep", "600")
    try:
        _rewrite_record(tmp_path, owner_pid=stranger.pid, owner_start=_start_ticks(stranger.pid))
        time.sleep(1.5)  # three polls of the dead-man: the owner is alive, nothing happens
        assert site.ruleset() != before
        _rewrite_record(tmp_path, owner_start=_start_ticks(stranger.pid) - 100)
        assert wait_for(lambda: site.ruleset() == before, 10), site.ruleset()
        assert stranger.poll() is None  # the stranger was left alone
    finally:
        stranger.kill()
        stranger.wait()
    log = (tmp_path / "state" / "firewall" / "deadman.log").read_text()
    assert f"cfbackup (pid {stranger.pid}) ended without lifting it" in log


def test_a_newer_lockdown_is_left_alone(site, tmp_path):
    """A dead-man lifts only the lock-down it was started for. Here its lock-down is replaced,
    in one transaction, by one with another token; at its deadline the dead-man removes
    nothing (and, the lock-down being there, re-applies nothing)."""
    config = str(write_config(tmp_path / "config.toml"))
    before = site.ruleset()
    assert site.cfbackup("-c", config, "firewall", "lock", "--timeout", "3").returncode == 0
    first = json.loads(_record_path(tmp_path).read_text())
    newer = render.nft_lockdown(settings_from_section(None).lockdown_rules,
                                comment_for("0123456789ab", time.time(), None))
    site.server.run("nft", "-f", "-",
                    input=f"delete table inet {render.LOCKDOWN_TABLE}\n{newer}")
    during = site.ruleset()
    log = tmp_path / "state" / "firewall" / "deadman.log"
    assert wait_for(lambda: "was already gone\n" in log.read_text(), 15), log.read_text()
    text = log.read_text()
    assert f"lifting lock-down {first['token']}: its timeout of 3 s passed" in text
    assert f"lock-down {first['token']} was already gone\n" in text
    assert "re-applied" not in text
    # its saved copy predates the newer lock-down: it says the ruleset differs, and changes nothing
    assert "differs from the copy saved before the lock-down" in text
    assert site.ruleset() == during and "0123456789ab" in during  # the newer one stays
    assert site.cfbackup("-c", config, "firewall", "unlock").returncode == 0
    assert site.ruleset() == before


def test_unlock_from_another_state_dir_calls_off_the_dead_man(site, tmp_path):
    """``firewall unlock`` with another config lifts the lock-down it finds in the kernel; the
    dead-man of that lock-down (another state dir) is stopped and its record dropped, so it
    neither re-applies it nor touches the newer lock-down taken afterwards."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first_config = str(write_config(tmp_path / "a" / "config.toml"))
    other_config = str(write_config(tmp_path / "b" / "config.toml"))
    before = site.ruleset()
    assert site.cfbackup("-c", first_config, "firewall", "lock", "--timeout", "60").returncode == 0
    first = json.loads(_record_path(tmp_path / "a").read_text())
    assert site.cfbackup("-c", other_config, "firewall", "unlock").returncode == 0
    assert wait_for(lambda: not process_alive(first["deadman_pid"], None), 1)
    assert not _record_path(tmp_path / "a").exists()
    time.sleep(1)  # the dead-man polls twice a second: it would have re-applied it by now
    assert site.ruleset() == before
    assert site.cfbackup("-c", other_config, "firewall", "lock", "--timeout", "0").returncode == 0
    during = site.ruleset()
    time.sleep(1)
    assert site.ruleset() == during
    assert site.cfbackup("-c", other_config, "firewall", "unlock").returncode == 0
    assert site.ruleset() == before


def test_a_lockdown_whose_dead_man_cannot_start_changes_nothing(site, tmp_path):
    config = str(write_config(tmp_path / "config.toml"))
    (tmp_path / "state" / "firewall" / "deadman.log").mkdir(parents=True)  # it cannot log
    before = site.ruleset()
    result = site.cfbackup("-c", config, "firewall", "lock", "--timeout", "60")
    assert result.returncode == 5, result.stderr
    assert "the firewall dead-man could not be started" in result.stderr
    assert "the firewall was not changed" in result.stderr
    assert site.ruleset() == before
    assert not _record_path(tmp_path).exists()
    site.expect(service="open")
