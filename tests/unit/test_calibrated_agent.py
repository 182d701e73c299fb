"""``gpgkeys.calibrated_agent``: before a passphrase backup, gpg-agent is started for the
profile's keyring and asked for its s2k count (the calibration gpg's first encryption would
wait for), with the minimal environment; keys-only and unencrypted profiles start nothing, and
a keyring directory that does not exist is left to the checks. Real gpg-agent, throw-away
keyrings."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support.cli import PASSPHRASE

from cfbackup import gpgkeys
from cfbackup.config.load import load_config


def _profile(tmp_path, home: Path, mode: str):
    encryption = {
        "symmetric": 'passphrase_env = "T_PASSPHRASE"\n',
        "pubkey": 'mode = "pubkey"\nencrypt_keys = ["0x0123456789ABCDEF"]\n',
        "none": 'mode = "none"\n',
    }[mode]
    config = tmp_path / "c.toml"
    config.write_text(
        f'[profiles.p]\nsource = "{tmp_path}"\ntarget = "swift://c/p"\n'
        '[profiles.p.swift]\nauth_url = "http://k/auth/v1.0"\nusername = "u"\n'
        f'password_env = "T_KEY"\n[profiles.p.encryption]\ngpg_home = "{home}"\n{encryption}'
    )
    return load_config(config).profile("p")


def _agents(home: Path) -> list[int]:
    """The gpg-agents serving keyring ``home``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"gpg-agent") and os.fsencode(str(home)) in argv:
            found.append(int(pid))
    return found


def _running(home: Path) -> bool:
    asked = subprocess.run(
        ["gpg-connect-agent", "--no-autostart", "--homedir", str(home), "/bye"],
        capture_output=True,
        text=True,
        check=False,
    )
    return asked.returncode == 0 and "no gpg-agent running" not in asked.stderr


@pytest.fixture
def home(empty_gnupghome):
    return empty_gnupghome


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_passphrase_profile_gets_its_agent_calibrated_before_the_backup(
    tmp_path, home, monkeypatch
):
    monkeypatch.setenv("PASSPHRASE", PASSPHRASE)  # as a legacy shell might export it
    assert not _running(home)
    with gpgkeys.calibrated_agent(_profile(tmp_path, home, "symmetric")):
        pass  # the backup; on the way out the question has been answered
    assert _running(home)
    agents = _agents(home)
    assert len(agents) == 1, agents
    # the calibration times the s2k hash for at least a tenth of a second; an agent that
    # only started has used a few milliseconds
    assert _cpu_seconds(agents[0]) >= 0.05, _cpu_seconds(agents[0])
    environ = Path(f"/proc/{agents[0]}/environ").read_bytes().split(b"\0")
    assert not [v for v in environ if v.startswith(b"PASSPHRASE=")], environ


@pytest.mark.parametrize("mode", ["pubkey", "none"])
def test_keys_and_no_encryption_start_no_agent(tmp_path, home, mode):
    with gpgkeys.calibrated_agent(_profile(tmp_path, home, mode)):
        pass
    assert not _running(home) and _agents(home) == []


def test_a_missing_keyring_is_left_to_the_checks(tmp_path):
    # gpg_home() would raise its ConfigError here: the checks say it, not this warm-up
    missing = tmp_path / "not-here"
    with gpgkeys.calibrated_agent(_profile(tmp_path, missing, "symmetric")):
        pass
    assert not missing.exists()
