"""``cfbackup status`` of a swift:// target reads object names and the archive dir's plain
manifests, never decrypting: it runs without the encryption passphrase or keys (a new machine
before its passphrase file is back), and still needs the Swift credentials."""

from __future__ import annotations

import pytest

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift


def test_status_needs_no_passphrase_nor_key_but_the_swift_password(
    tmp_path, make_config, cfbackup, empty_gnupghome, gpg_keys
):
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("status-pw\n")
    passphrase.chmod(0o600)
    config = make_config(encryption=f'passphrase_file = "{passphrase}"')
    assert cfbackup("-c", config, "backup", "main", "--full").returncode == 0

    passphrase.unlink()  # it exited 3: "the secret file ... does not exist on this machine"
    result = cfbackup("-c", config, "status", "main")
    assert result.returncode == 0, result
    assert "last full:        20" in result.stdout, result
    assert "passphrase" not in result.output, result

    keys = make_config(  # public keys, none of them in the keyring (GNUPGHOME empty)
        encryption=f'mode = "pubkey"\nencrypt_keys = ["{gpg_keys["fingerprint"]}"]\n'
        f'sign_key = "{gpg_keys["fingerprint"]}"',
        name="keys.toml",
    )
    result = cfbackup("-c", keys, "status", "main", env={"GNUPGHOME": str(empty_gnupghome)})
    assert result.returncode == 0, result
    assert "last full:        20" in result.stdout, result

    result = cfbackup("-c", config, "status", "main", env={"T_SWIFT_KEY": ""})
    assert result.returncode == ExitCode.CONFIG, result
    assert "profiles.main.swift" in result.stderr and "T_SWIFT_KEY" in result.stderr, result
