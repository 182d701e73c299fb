"""With ``encryption.sign_key``, cfbackup's own decryptions (read-data, the drill, manifests)
require what duplicity's restore requires: a good signature by that key. Real gpg, the suite's
key pair, objects made here: unsigned (what anyone holding the public key can make), signed by
the key, and the reason gpg gives when it is not."""

from __future__ import annotations

import subprocess

import gnupg
import pytest
from support.cli import KEY_PASSPHRASE

from cfbackup.volume_keys import Keys, Unsigned

CLEAR = b"a manifest or a volume\n" * 1000


def _encrypted(gpg_keys, *, sign: bool) -> bytes:
    gpg = gnupg.GPG(gnupghome=gpg_keys["home"])
    result = gpg.encrypt(
        CLEAR, gpg_keys["fingerprint"], sign=gpg_keys["fingerprint"] if sign else None,
        passphrase=KEY_PASSPHRASE if sign else None, armor=False, always_trust=True,
        extra_args=["--pinentry-mode", "loopback"],
    )  # fmt: skip
    assert result.ok, result.stderr
    return result.data


def _keys(gpg_keys, sign_key: str | None) -> Keys:
    return Keys("pubkey", KEY_PASSPHRASE, gpg_keys["home"], sign_key=sign_key)


def test_signed_by_sign_key_decrypts(gpg_keys, tmp_path):
    data = _encrypted(gpg_keys, sign=True)
    for sign_key in (gpg_keys["fingerprint"], gpg_keys["fingerprint"][-16:]):
        assert _keys(gpg_keys, sign_key).decrypt_bytes(data, "m.manifest.gpg") == CLEAR
    (tmp_path / "v.gpg").write_bytes(data)
    keys = _keys(gpg_keys, gpg_keys["fingerprint"])
    keys.decrypt_file(tmp_path / "v.gpg", "v.gpg", tmp_path / "c")
    assert (tmp_path / "c").read_bytes() == CLEAR


def test_unsigned_or_signed_by_another_key_does_not_pass(gpg_keys, tmp_path):
    unsigned = _encrypted(gpg_keys, sign=False)  # encrypted to the public key, by anyone
    assert _keys(gpg_keys, None).decrypt_bytes(unsigned, "m.gpg") == CLEAR  # no sign_key: fine
    with pytest.raises(Unsigned, match=r"no good signature by sign_key \w+ \(not signed\)"):
        _keys(gpg_keys, gpg_keys["fingerprint"]).decrypt_bytes(unsigned, "m.gpg")
    (tmp_path / "v.gpg").write_bytes(unsigned)
    with pytest.raises(Unsigned):
        _keys(gpg_keys, gpg_keys["fingerprint"]).decrypt_file(
            tmp_path / "v.gpg", "v.gpg", tmp_path / "never"
        )
    assert not (tmp_path / "never").exists()  # no clear copy of what did not pass

    signed = _encrypted(gpg_keys, sign=True)
    other = "0123456789ABCDEF0123456789ABCDEF01234567"
    with pytest.raises(Unsigned) as refused:
        _keys(gpg_keys, other).decrypt_bytes(signed, "m.gpg")
    assert f"(signed by {gpg_keys['fingerprint'][-16:]})" in str(refused.value)
    assert not refused.value.keys  # not a passphrase or secret key problem


def test_a_signature_gpg_cannot_check_names_the_reason(gpg_keys, tmp_path):
    """Signed by sign_key, but its public key is not in this keyring (a new machine where only
    the decryption key was imported): gpg's reason and the key ID, and what to check."""
    elsewhere = tmp_path / "elsewhere"  # another machine: its signing key, our public key
    elsewhere.mkdir(mode=0o700)
    there = gnupg.GPG(gnupghome=str(elsewhere))
    try:
        made = there.gen_key(there.gen_key_input(
            key_type="EDDSA", key_curve="ed25519", key_usage="sign",
            name_email="elsewhere@cfbackup.invalid", no_protection=True,
        ))  # fmt: skip
        assert made.fingerprint, made.stderr
        ours = gnupg.GPG(gnupghome=gpg_keys["home"]).export_keys(gpg_keys["fingerprint"])
        assert there.import_keys(ours).count
        foreign = there.encrypt(
            CLEAR, gpg_keys["fingerprint"], sign=made.fingerprint, armor=False,
            always_trust=True, extra_args=["--pinentry-mode", "loopback"],
        )  # fmt: skip
        assert foreign.ok, foreign.stderr
    finally:
        subprocess.run(["gpgconf", "--homedir", str(elsewhere), "--kill", "gpg-agent"],
                       check=False)  # fmt: skip
    with pytest.raises(Unsigned) as refused:
        _keys(gpg_keys, made.fingerprint).decrypt_bytes(foreign.data, "m.gpg")
    said = str(refused.value)
    assert made.fingerprint[-16:] in said and "check that key in the keyring" in said, said
