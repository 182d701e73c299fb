"""``cfbackup status`` of a swift:// target reads object names and the archive dir's plain
manifests, never decrypting: it runs without the encryption passphrase or keys (a new machine
before its passphrase file is back), and still needs the Swift credentials. What a backup would
be refused for (a missing passphrase, a key not in the keyring, no secret sign key) it shows as
a ``REFUSED:`` line (``backup_refused`` in ``--json``), exiting 0."""

from __future__ import annotations

import json

import gnupg
import pytest

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift

REFUSED = "REFUSED: the next backup will be refused: "


def _refused(cfbackup, config, env=None) -> list[str]:
    """status's human lines saying the next backup is refused, checked against --json's."""
    result = cfbackup("-c", config, "status", "main", env=env)
    assert result.returncode == 0, result
    assert "last full:        20" in result.stdout, result
    lines = [line.strip() for line in result.stdout.splitlines() if REFUSED in line]
    data = cfbackup("-c", config, "status", "main", "--json", env=env)
    assert data.returncode == 0, data
    assert [REFUSED + why for why in json.loads(data.stdout)["backup_refused"]] == lines
    return lines


def test_status_needs_no_passphrase_nor_key_but_the_swift_password(
    tmp_path, make_config, cfbackup, empty_gnupghome, gpg_keys
):
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("status-pw\n")
    passphrase.chmod(0o600)
    config = make_config(encryption=f'passphrase_file = "{passphrase}"')
    assert cfbackup("-c", config, "backup", "main", "--full").returncode == 0
    assert _refused(cfbackup, config) == []  # nothing wrong: no such line

    passphrase.unlink()  # it exited 3: "the secret file ... does not exist on this machine"
    (line,) = _refused(cfbackup, config)
    assert "passphrase_file" in line and "does not exist" in line, line
    assert "status-pw" not in line
    legacy = cfbackup("-c", config, "-s", program="dt-cf-backup")  # duplicity's own text on stdout
    assert legacy.returncode == 0, legacy
    assert "the next backup will be refused: " in legacy.stderr, legacy
    assert "passphrase_file" in legacy.stderr and "status-pw" not in legacy.output, legacy

    fpr = gpg_keys["fingerprint"]
    keys = make_config(  # public keys, none of them in the keyring (GNUPGHOME empty)
        encryption=f'mode = "pubkey"\nencrypt_keys = ["{fpr}"]\nsign_key = "{fpr}"',
        name="keys.toml",
    )
    env = {"GNUPGHOME": str(empty_gnupghome)}
    (line,) = _refused(cfbackup, keys, env)
    assert f"encrypt_keys: key {fpr} is not in the keyring" in line, line

    public = gnupg.GPG(gnupghome=gpg_keys["home"]).export_keys(fpr)
    assert gnupg.GPG(gnupghome=str(empty_gnupghome)).import_keys(public).count == 1
    (line,) = _refused(cfbackup, keys, env)  # the public key only: nothing signs the volumes
    assert f"sign_key: no secret key {fpr}" in line, line

    result = cfbackup("-c", config, "status", "main", env={"T_SWIFT_KEY": ""})
    assert result.returncode == ExitCode.CONFIG, result
    assert "profiles.main.swift" in result.stderr and "T_SWIFT_KEY" in result.stderr, result


def test_status_never_runs_the_passphrase_command(tmp_path, make_config, cfbackup):
    """status ran ``encryption.passphrase_command`` on every call, to see whether the next
    backup could read its passphrase: a monitoring check calling status every few minutes made
    ``pass show``, a vault read (audited) or a command that prompts run each time, hanging on
    a prompt for up to its 60 s timeout. status needs no passphrase: it now only checks that
    the command's program is there, as the backup would first."""
    ran = tmp_path / "ran"
    command = tmp_path / "passphrase-command"
    command.write_text(f"#!/bin/sh\necho run >> {ran}\necho status-pw\n")
    command.chmod(0o700)
    config = make_config(encryption=f'passphrase_command = "{command}"')
    assert cfbackup("-c", config, "backup", "main", "--full").returncode == 0
    assert ran.read_text() == "run\n"  # the backup needs it
    ran.unlink()
    assert _refused(cfbackup, config) == []
    assert not ran.exists(), ran.read_text()

    gone = make_config(
        encryption=f'passphrase_command = "{tmp_path}/no-such-command --quiet"', name="gone.toml"
    )
    (line,) = _refused(cfbackup, gone)
    assert line == (
        f"{REFUSED}profiles.main.encryption.passphrase_command: {tmp_path}/no-such-command was "
        "not found: install it or check PATH."
    ), line
    backup = cfbackup("-c", gone, "backup", "main")  # the backup's own sentence
    assert backup.returncode == ExitCode.CONFIG, backup
    assert line.removeprefix(REFUSED) in backup.stderr, backup
