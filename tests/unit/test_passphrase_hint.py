"""A passphrase gpg refused is named by where the profile reads it from (as a refused Swift
password is: ``the password in $T_SWIFT_KEY``), never by a key the profile does not have, and
never by its value: in a restore, the backup's passphrase check, and a decryption ahead."""

import pytest

from cfbackup.errors import CryptoError

SECRET = "FAKEpassphraseQ7-words"


def _native(tmp_path, source: str):
    path = tmp_path / "config.toml"
    path.write_text(
        f'state_dir = "{tmp_path}/state"\n'
        "[profiles.main]\n"
        f'source = "{tmp_path}/src"\n'
        f'target = "file://{tmp_path}/target"\n'
        "[profiles.main.encryption]\n"
        'mode = "symmetric"\n'
        f"{source}\n"
    )
    path.chmod(0o600)
    return path


def _legacy(tmp_path, _source: str):
    path = tmp_path / "dt-cf-backup.conf"
    path.write_text(f"ROOT={tmp_path}/src\nDEST=file://{tmp_path}/target\nPASSPHRASE={SECRET}\n")
    path.chmod(0o600)
    return path


SOURCES = {  # id: (config writer, its passphrase setting, the words that name its source)
    "env": (_native, 'passphrase_env = "T_PASSPHRASE"', "the passphrase in $T_PASSPHRASE"),
    "file": (_native, 'passphrase_file = "{tmp}/pp"', "the passphrase read from {tmp}/pp"),
    "command": (
        _native,
        'passphrase_command = "cat {tmp}/pp"',
        "the passphrase printed by encryption.passphrase_command",
    ),
    "inline": (_native, f'passphrase = "{SECRET}"', "encryption.passphrase in {config}"),
    "legacy": (_legacy, "", "the PASSPHRASE in {config}"),
}


@pytest.fixture(params=sorted(SOURCES))
def loaded(request, tmp_path):
    """(the profile, the words its hint must say)."""
    from cfbackup.config.load import load_config

    write, setting, words = SOURCES[request.param]
    (tmp_path / "src").mkdir()
    config = write(tmp_path, setting.format(tmp=tmp_path))
    config = load_config(config)
    profile = next(iter(config.profiles.values()))
    return profile, words.format(tmp=tmp_path, config=config.path)


def _checked(message: str, words: str) -> None:
    assert words in message, message
    assert SECRET not in message
    if not words.startswith("encryption.passphrase"):  # a key the profile does not have
        assert "encryption.passphrase " not in message and "encryption.passphrase." not in message


def test_a_restore_names_where_the_refused_passphrase_comes_from(loaded):
    from cfbackup.actions.restore import _passphrase_hint

    profile, words = loaded
    with pytest.raises(CryptoError) as raised, _passphrase_hint(profile):
        raise CryptoError("gpg could not decrypt: wrong passphrase")
    wanted = f"with the passphrase of profile {profile.name}: check {words}."
    assert raised.value.message.endswith(wanted)
    _checked(raised.value.message, words)


def test_the_backup_s_passphrase_check_names_it(loaded):
    from cfbackup.passcheck import _wrong

    profile, words = loaded
    message = _wrong(profile, "decrypt the backups already at X").message
    assert f"does not decrypt the backups already at X: fix {words}, or" in message
    _checked(message, words)


def test_a_decryption_ahead_names_it(loaded):
    from cfbackup.volume_keys import Keys, keys_error

    profile, words = loaded
    message = keys_error("the manifests at X", Keys.for_profile(profile, {})).message
    assert f"check {words} and the keys" in message
    _checked(message, words)


def test_a_decryption_ahead_suggests_a_check_that_runs_as_printed(loaded):
    """The check it suggests names the profile and the config the run was given."""
    from cfbackup import suggest
    from cfbackup.volume_keys import Keys, keys_error

    profile, _ = loaded
    suggest.use_config("/etc/cfb.toml")
    try:
        message = keys_error("the manifests at X", Keys.for_profile(profile, {})).message
    finally:
        suggest.use_config(None)
    assert message.endswith(
        f"; cfbackup -c /etc/cfb.toml check {profile.name} --for-restore tests them."
    ), message


KEY = "0123456789ABCDEF0123456789ABCDEF01234567"


@pytest.mark.parametrize("legacy", [False, True], ids=["native", "legacy"])
def test_a_public_key_profile_without_a_passphrase_names_both_causes(tmp_path, legacy):
    """gpg fails the same way when the secret key is not in the keyring and when it is there
    but protected by a passphrase cfbackup was not given (``check_keys`` passes then): the
    message said only "import the secret key". It names both, with each fix; for a legacy
    file by the file's own variables (GPG_KEY, PASSPHRASE), not native keys it does not
    have."""
    from cfbackup.config.load import load_config
    from cfbackup.duplicity.failures import cannot_decrypt

    (tmp_path / "src").mkdir()
    if legacy:
        path = tmp_path / "dt-cf-backup.conf"
        path.write_text(
            f"ROOT={tmp_path}/src\nDEST=file://{tmp_path}/target\nGPG_KEY={KEY}\nPASSPHRASE=\"\"\n"
        )
        path.chmod(0o600)
    else:
        path = _native(tmp_path, "").with_suffix(".toml")
        path.write_text(
            path.read_text().replace(
                'mode = "symmetric"', f'mode = "pubkey"\nencrypt_keys = ["{KEY}"]'
            )
        )
    config = load_config(path)
    profile = next(iter(config.profiles.values()))
    message = cannot_decrypt(profile).message
    at = f"gpg could not decrypt the backups at file://{tmp_path}/target"
    check = f"cfbackup check {profile.name} --for-restore tests both."
    if legacy:
        assert message == (
            f"{at} with the secret key of profile dt-cf-backup: either the secret key of GPG_KEY "
            f"in {path} is not in its keyring (import it), or the key is protected by a "
            f"passphrase cfbackup was not given (set PASSPHRASE in {path} to it); {check}"
        )
        assert "encryption." not in message
    else:
        assert message == (
            f"{at} with the secret key of profile main: either no secret key of "
            f"encryption.encrypt_keys in {path} is in its keyring (import one), or the key is "
            "protected by a passphrase cfbackup was not given (set encryption.passphrase_env, "
            f"passphrase_file or passphrase_command in {path} to read it); {check}"
        )
