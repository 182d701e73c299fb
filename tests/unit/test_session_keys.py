"""The session key cfbackup derives for an object gpg encrypted with a passphrase is the one gpg
derives: checked against real gpg 2.2 for each cipher, S2K hash and mode gpg offers, with
non-ASCII passphrases; a wrong passphrase and forms cfbackup does not read give no key, and
gpg then does what it always did. ``Keys`` hands gpg the key on a pipe, never the passphrase
when it has the key, and never lets gpg's debug line with the key into a message."""

from __future__ import annotations

import os
import subprocess

import gnupg
import pytest
from support.cli import KEY_PASSPHRASE

from cfbackup import execute, passcheck, redact, session_keys
from cfbackup.config.model import Profile
from cfbackup.duplicity import launcher
from cfbackup.errors import CryptoError
from cfbackup.volume_keys import Keys, Undecryptable

CLEAR = os.urandom(3000) + b"text " * 2000
PASSPHRASES = ["correct horse", "pässwörd ü ñ", "x"]


@pytest.fixture
def home(tmp_path):
    folder = tmp_path / "gnupg"
    folder.mkdir(mode=0o700)
    yield str(folder)
    subprocess.run(["gpgconf", "--homedir", str(folder), "--kill", "gpg-agent"], check=False)


def _symmetric(home: str, tmp_path, passphrase: str, *options: str) -> bytes:
    """``CLEAR`` as gpg encrypts it with ``passphrase`` (UTF-8 on a pipe, as duplicity does)."""
    source, target = tmp_path / "clear", tmp_path / "clear.gpg"
    source.write_bytes(CLEAR)
    target.unlink(missing_ok=True)
    subprocess.run(
        ["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase-fd",
         "0", *options, "--symmetric", "-o", str(target), str(source)],
        input=f"{passphrase}\n".encode(), check=True, capture_output=True,
    )  # fmt: skip
    return target.read_bytes()


def _gpg_with_key(home: str, data: bytes, key: str) -> subprocess.CompletedProcess:
    readable, writable = os.pipe()
    os.write(writable, f"{key}\n".encode())
    os.close(writable)
    try:
        return subprocess.run(
            ["gpg", "--homedir", home, "--batch", "--override-session-key-fd", str(readable),
             "--decrypt"],
            input=data, pass_fds=(readable,), capture_output=True,
        )  # fmt: skip
    finally:
        os.close(readable)


@pytest.mark.parametrize(
    "options",
    [
        (),  # gpg's defaults: AES-256, SHA-1, iterated and salted, the agent's count
        ("--s2k-cipher-algo", "AES128"),
        ("--s2k-cipher-algo", "AES192", "--s2k-digest-algo", "SHA512"),
        ("--s2k-digest-algo", "SHA256", "--s2k-count", "1024"),
        ("--s2k-digest-algo", "SHA224"),
        ("--s2k-digest-algo", "SHA384", "--s2k-count", "65536"),
        ("--s2k-mode", "1"),
        ("--s2k-mode", "0"),
        ("--compress-level", "0"),
        ("--compress-algo", "bzip2"),
    ],
)
def test_the_key_derived_here_is_the_one_gpg_derives(home, tmp_path, options):
    for passphrase in PASSPHRASES:
        data = _symmetric(home, tmp_path, passphrase, *options)
        key = session_keys.session_key(data[: session_keys.HEAD], passphrase.encode())
        assert key is not None, (options, passphrase)
        done = _gpg_with_key(home, data, key)
        assert done.returncode == 0 and done.stdout == CLEAR, (options, passphrase)
        assert session_keys.session_key(data[: session_keys.HEAD], b"not it") is None


def test_forms_it_does_not_read_give_no_key(home, tmp_path, gpg_keys):
    data = _symmetric(home, tmp_path, "correct horse")
    assert session_keys.session_key(data[:20], b"correct horse") is None  # too short a head
    damaged = bytearray(data)
    damaged[0] = 0x40  # not a packet
    assert session_keys.session_key(bytes(damaged), b"correct horse") is None
    public = gnupg.GPG(gnupghome=gpg_keys["home"]).encrypt(
        CLEAR, gpg_keys["fingerprint"], armor=False, always_trust=True
    )
    assert public.ok
    assert session_keys.read_head(public.data) is None  # a public-key packet comes first
    assert session_keys.read_head(b"") is None


@pytest.fixture
def started(monkeypatch):
    """The argv of every gpg ``Keys`` starts to decrypt."""
    seen: list[list[str]] = []
    genuine = execute.fed

    def fed(argv, **kwargs):
        seen.append(list(argv))
        return genuine(argv, **kwargs)

    monkeypatch.setattr(execute, "fed", fed)
    return seen


def test_keys_hand_gpg_the_key_and_not_the_passphrase(home, tmp_path, started):
    data = _symmetric(home, tmp_path, "pässwörd ü ñ")
    keys = Keys("symmetric", "pässwörd ü ñ", home)
    assert keys.decrypt_bytes(data, "duplicity-full.X.manifest.gpg") == CLEAR
    (argv,) = started
    assert "--override-session-key-fd" in argv and "--passphrase-fd" not in argv
    assert not any("pässwörd" in part for part in argv)


def test_switched_off_gpg_derives_as_before(home, tmp_path, started, monkeypatch):
    monkeypatch.setenv(session_keys.OFF, "1")
    data = _symmetric(home, tmp_path, "correct horse")
    assert Keys("symmetric", "correct horse", home).decrypt_bytes(data, "m.gpg") == CLEAR
    (argv,) = started
    assert "--passphrase-fd" in argv and "--override-session-key-fd" not in argv


def test_a_wrong_passphrase_is_gpgs_own_verdict(home, tmp_path, started):
    data = _symmetric(home, tmp_path, "correct horse")
    with pytest.raises(Undecryptable) as raised:
        Keys("symmetric", "wrong horse", home).decrypt_bytes(data, "m.gpg")
    assert raised.value.keys  # "Bad session key": the passphrase, not the object
    (argv,) = started
    assert "--passphrase-fd" in argv  # no key was derived here: gpg was given the passphrase


def test_a_damaged_volume_given_a_key_says_so_without_the_key(home, tmp_path):
    data = bytearray(_symmetric(home, tmp_path, "correct horse"))
    data[len(data) // 2] ^= 0xFF  # past the head: the key is found, the data is damaged
    with pytest.raises(Undecryptable) as raised:
        Keys("symmetric", "correct horse", home).decrypt_bytes(bytes(data), "m.gpg")
    key = session_keys.session_key(bytes(data[: session_keys.HEAD]), b"correct horse")
    assert key is not None
    assert key.split(":")[1] not in str(raised.value) and "DBG" not in str(raised.value)
    assert not raised.value.keys


def test_pubkey_objects_still_decrypt_with_the_secret_keys_passphrase(gpg_keys, tmp_path):
    public = gnupg.GPG(gnupghome=gpg_keys["home"]).encrypt(
        CLEAR, gpg_keys["fingerprint"], armor=False, always_trust=True
    )
    keys = Keys("pubkey", KEY_PASSPHRASE, gpg_keys["home"])
    assert keys.decrypt_bytes(public.data, "m.gpg") == CLEAR
    source, output = tmp_path / "v.gpg", tmp_path / "v"
    source.write_bytes(public.data)
    keys.decrypt_file(source, "v.gpg", output)
    assert output.read_bytes() == CLEAR


def test_a_signed_object_decrypts_without_the_signers_public_key(gpg_keys, home, tmp_path):
    """A symmetric profile with sign_key: its manifests are signed. The passphrase check opens
    them in an empty keyring, where gpg cannot check the signature: that is not its question
    (python-gnupg counted it ok; duplicity checks signatures where they matter)."""
    signer = gnupg.GPG(gnupghome=gpg_keys["home"])
    signed = signer.encrypt(
        CLEAR, None, symmetric=True, sign=gpg_keys["fingerprint"], passphrase=KEY_PASSPHRASE,
        armor=False, extra_args=["--pinentry-mode", "loopback"],
    )  # fmt: skip
    assert signed.ok, signed.stderr
    assert Keys("symmetric", KEY_PASSPHRASE, home).decrypt_bytes(signed.data, "m.gpg") == CLEAR
    target = tmp_path / "target"
    target.mkdir()
    (target / "duplicity-full.20261206T010203Z.manifest.gpg").write_bytes(signed.data)
    profile = Profile(
        "main",
        {"target": f"file://{target}", "encryption": {"mode": "symmetric",
         "sign_key": gpg_keys["fingerprint"], "gpg_home": gpg_keys["home"]}},
    )  # fmt: skip
    opened = passcheck.check_passphrase(profile, {"PASSPHRASE": KEY_PASSPHRASE})
    assert opened is not None and opened.data == CLEAR
    with pytest.raises(CryptoError):
        passcheck.check_passphrase(profile, {"PASSPHRASE": "not it"})


def test_gpgs_line_with_the_key_is_masked_wherever_it_would_surface():
    line = "gpg: DBG: seskey: 9:61C9C6AE7454E6DBFFB518C764035F6D42BCF68928EF5070CCEA3C3274BBB63E"
    assert "61C9C6AE" not in redact.redact_output(line)
    shown = "gpg: session key: '9:29FCEBAA056053FF72F7A185E0D85BD1672D6735958C05301E6179A491A7'"
    assert "29FCEBAA" not in redact.redact_output(shown)


def test_the_off_switch_reaches_duplicity(monkeypatch):
    monkeypatch.setenv(session_keys.OFF, "1")
    env, chosen = launcher.environment(execute.child_environment())
    assert env.get(session_keys.OFF) == "1"
    assert "gpg-session-keys" not in [patch.name for patch in chosen]
    monkeypatch.delenv(session_keys.OFF)
    _, chosen = launcher.environment({**execute.child_environment(), "PASSPHRASE": "x"})
    assert "gpg-session-keys" in [patch.name for patch in chosen]
