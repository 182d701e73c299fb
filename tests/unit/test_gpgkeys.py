"""``gpgkeys.check_keys`` with real gpg and throw-away keys (no passphrase, so none is ever
typed or printed). A backup encrypts: every recipient's public key, usable. A restore decrypts
as gpg does: one recipient's secret key is enough, expired or revoked (a warning), and the
sign key's public part checks the signatures. Each fix command a message prints runs as
printed against the profile's keyring."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from support.cli import stop_gpg_agent

from cfbackup import gpgkeys
from cfbackup.config.load import load_config
from cfbackup.errors import CryptoError

THEN = "20200101T000000"  # keys made "in 2020" for a day have expired by now
SOON_AFTER = "20200101T060000"


def _gpg(home: Path, *args: str, data: bytes | None = None) -> bytes:
    done = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
         "--passphrase", "", *args],
        input=data, capture_output=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def _fingerprint(home: Path, name: str) -> str:
    listing = _gpg(home, "--with-colons", "--list-keys", f"<{name}@cfbackup.invalid>").decode()
    return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """A keyring with every kind of key the tests need, and for each problem key a message
    encrypted to it while it was still usable."""
    home = tmp_path_factory.mktemp("gnupg-all")
    home.chmod(0o700)
    for name in ("own", "offsite", "signer", "revoked"):
        _gpg(home, "--quick-gen-key", f"{name} <{name}@cfbackup.invalid>",
             "future-default", "default", "never")  # fmt: skip
    _gpg(home, "--faked-system-time", THEN, "--quick-gen-key",
         "expired <expired@cfbackup.invalid>", "future-default", "default", "1d")  # fmt: skip
    # a primary key that never expires, whose encryption subkey expired
    _gpg(home, "--faked-system-time", THEN, "--quick-gen-key",
         "lapsed <lapsed@cfbackup.invalid>", "ed25519", "sign", "never")  # fmt: skip
    found = {n: _fingerprint(home, n) for n in ("own", "offsite", "signer", "revoked", "expired")}
    found["lapsed"] = _fingerprint(home, "lapsed")
    _gpg(home, "--faked-system-time", THEN, "--quick-add-key", found["lapsed"],
         "cv25519", "encr", "1d")  # fmt: skip
    sealed = {}
    for name in ("expired", "lapsed", "revoked"):
        when = () if name == "revoked" else ("--faked-system-time", SOON_AFTER)
        sealed[name] = _gpg(home, *when, "--trust-model", "always", "--encrypt", "--recipient",
                            found[name], data=b"what a restore reads\n")  # fmt: skip
    certificate = (home / "openpgp-revocs.d" / f"{found['revoked']}.rev").read_text()
    _gpg(home, "--import", data=certificate.replace(":-----BEGIN", "-----BEGIN").encode())
    yield {"home": home, "fpr": found, "sealed": sealed}
    stop_gpg_agent(home)


@pytest.fixture
def make_keyring(tmp_path, keys):
    """``make_keyring(public=[...], secret=[...], name=...)``: a keyring holding those keys."""
    made = []

    def make(*, public=(), secret=(), name="keyring") -> Path:
        home = tmp_path / name
        home.mkdir(mode=0o700)
        made.append(home)
        for names, export in ((public, "--export"), (secret, "--export-secret-keys")):
            if names:
                exported = _gpg(keys["home"], export, *(keys["fpr"][n] for n in names))
                _gpg(home, "--import", data=exported)
        return home

    yield make
    for home in made:
        stop_gpg_agent(home)


@pytest.fixture
def profile(tmp_path, keys, monkeypatch):
    """``profile(home, encrypt=[...], sign=None)``: a pubkey profile on keyring ``home``."""
    monkeypatch.delenv("GNUPGHOME", raising=False)  # the profile's gpg_home, nothing else

    def make(home: Path, encrypt, sign=None):
        ids = ", ".join(f'"{keys["fpr"][n]}"' for n in encrypt)
        config = tmp_path / "c.toml"
        config.write_text(
            f'[profiles.p]\nsource = "{tmp_path}"\ntarget = "swift://c/p"\n'
            '[profiles.p.swift]\nauth_url = "http://k/auth/v1.0"\nusername = "u"\n'
            'password_env = "T_KEY"\n[profiles.p.encryption]\nmode = "pubkey"\n'
            f'gpg_home = "{home}"\nencrypt_keys = [{ids}]\n'
            + (f'sign_key = "{keys["fpr"][sign]}"\n' if sign else "")
        )
        return load_config(config).profile("p")

    return make


def _refusal(profile, *, need_secret: bool) -> str:
    with pytest.raises(CryptoError) as refused:
        gpgkeys.check_keys(profile, need_secret=need_secret)
    return refused.value.message


def test_a_restore_needs_the_secret_key_of_one_recipient_not_all(make_keyring, profile, keys):
    # escrow: backups encrypted to the own key and an offsite key; the kit holds only the latter
    kit = make_keyring(secret=["offsite"])
    escrow = profile(kit, encrypt=["own", "offsite"])
    assert gpgkeys.check_keys(escrow, need_secret=True) == []
    # a backup from this keyring would leave the own key out: still refused
    refused = _refusal(escrow, need_secret=False)
    assert f"key {keys['fpr']['own']} is not in the keyring {kit}" in refused


def test_a_restore_without_any_recipients_secret_key_is_refused(make_keyring, profile, keys):
    public_only = make_keyring(public=["own", "offsite"])
    refused = _refusal(profile(public_only, encrypt=["own", "offsite"]), need_secret=True)
    own, offsite = keys["fpr"]["own"], keys["fpr"]["offsite"]
    assert f"the secret keys for {own} and {offsite} are all missing (one is enough)" in refused
    refused = _refusal(profile(public_only, encrypt=["own"]), need_secret=True)
    assert f"the secret key for {own} is missing, so backups cannot be decrypted" in refused
    # the runbook's section 1 names the words a user sees, to be found with a search there
    runbook = (Path(__file__).parents[2] / "docs" / "runbook-restore.md").read_text()
    assert "`the secret key for KEY is missing`" in " ".join(runbook.split())


def test_a_restore_checks_signatures_with_the_public_sign_key(make_keyring, profile, keys):
    home = make_keyring(public=["signer"], secret=["own"])
    assert gpgkeys.check_keys(profile(home, encrypt=["own"], sign="signer"), need_secret=True) == []
    # signing a backup needs the secret part
    refused = _refusal(profile(home, encrypt=["own"], sign="signer"), need_secret=False)
    assert f"no secret key {keys['fpr']['signer']} in the keyring {home}" in refused
    # and a restore still needs the public one, to check each volume's signature
    refused = _refusal(profile(home, encrypt=["own"], sign="offsite"), need_secret=True)
    assert f"sign_key: key {keys['fpr']['offsite']} is not in the keyring {home}" in refused


@pytest.mark.parametrize(
    ("name", "backup_refusal"),
    [
        ("expired", "expired on 2020-01-02: extend it"),
        ("revoked", "is revoked: use another key"),
        ("lapsed", "can no longer encrypt: its encryption subkey"),
    ],
)
def test_a_key_backups_may_not_use_still_restores(
    make_keyring, profile, keys, name, backup_refusal
):
    home = make_keyring(secret=[name])
    # gpg decrypts with it: what was encrypted to it while it was usable
    assert _gpg(home, "--decrypt", data=keys["sealed"][name]) == b"what a restore reads\n"
    key = keys["fpr"][name]
    warnings = gpgkeys.check_keys(profile(home, [name]), need_secret=True)
    assert len(warnings) == 1 and f"key {key} {backup_refusal}" in warnings[0], warnings
    assert warnings[0].endswith("(until then backups are refused; restores still decrypt with it).")
    assert "\n" not in warnings[0]
    assert f"key {key} {backup_refusal}" in _refusal(profile(home, [name]), need_secret=False)


def test_a_lapsed_encryption_subkey_is_not_called_missing(make_keyring, profile, keys):
    home = make_keyring(secret=["lapsed"])
    refused = _refusal(profile(home, ["lapsed"]), need_secret=False)
    assert "has no encryption subkey" not in refused
    assert f"gpg --homedir {home} --quick-add-key {keys['fpr']['lapsed']} rsa3072 encr" in refused


@pytest.mark.parametrize(("name", "fix"), [("expired", "extend it"), ("revoked", "remove")])
def test_a_restore_refuses_a_sign_key_whose_signatures_duplicity_rejects(
    make_keyring, profile, keys, name, fix
):
    # gpg reports its signatures as EXPKEYSIG / REVKEYSIG, never the GOODSIG duplicity requires
    home = make_keyring(public=[name], secret=["own"])
    refused = _refusal(profile(home, ["own"], sign=name), need_secret=True)
    assert f"sign_key: key {keys['fpr'][name]} " in refused
    assert "duplicity's restore takes no signature by such a key as good" in refused
    assert fix in refused.split("as good: ", 1)[1]


def _printed_command(message: str) -> list[str]:
    found = re.search(r"\((gpg --homedir [^)]*)\)", message)
    assert found, message
    return shlex.split(found.group(1))


@pytest.mark.parametrize(
    ("need_secret", "export"), [(False, "--export"), (True, "--export-secret-keys")]
)
def test_the_import_command_printed_runs_as_printed(
    tmp_path, make_keyring, profile, keys, need_secret, export
):
    # a gpg_home with a space; no GNUPGHOME: a plain gpg --import would fill ~/.gnupg
    home = make_keyring(name="key ring")
    configured = profile(home, ["own"])
    command = _printed_command(_refusal(configured, need_secret=need_secret))
    assert command[:3] == ["gpg", "--homedir", str(home)], command
    kit = tmp_path / "kit"  # where the user unpacked the recovery kit
    kit.mkdir()
    (kit / "keys.asc").write_bytes(_gpg(keys["home"], "--armor", export, keys["fpr"]["own"]))
    subprocess.run(command, cwd=kit, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    assert gpgkeys.check_keys(configured, need_secret=need_secret) == []
    assert not (tmp_path / "home" / ".gnupg" / "pubring.kbx").exists()


def test_a_stale_agent_socket_is_not_a_running_agent():
    """A socket file no agent listens on (one killed with kill -9, a systemd socket unit's):
    not running, so the import that starts one stops it; a started agent is running."""
    import shutil
    import socket
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="cf-", dir="/tmp"))  # short: the socket lives in it
    try:
        listed = subprocess.run(["gpgconf", "--homedir", str(home), "--list-dirs", "agent-socket"],
                                capture_output=True, text=True, check=True)  # fmt: skip
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(listed.stdout.strip())
        stale.close()  # the file stays, nobody listens
        assert Path(listed.stdout.strip()).exists()
        assert not gpgkeys.agent_running(home)
        subprocess.run(["gpg-connect-agent", "--homedir", str(home), "/bye"],
                       capture_output=True, check=True)  # fmt: skip
        assert gpgkeys.agent_running(home)
    finally:
        stop_gpg_agent(home)
        shutil.rmtree(home, ignore_errors=True)


def test_a_legacy_files_key_problems_name_its_variables(tmp_path, make_keyring, keys, monkeypatch):
    """A ~/.dt-cf-backup.conf has no encryption.encrypt_keys nor sign_key: a key problem names
    the variable that set the key, in the file; a fix that drops signing says to migrate (the
    old file's GPG_KEY signs with the key it encrypts to, and its GPG_SIGN_KEY only counts
    beside GPG_ENC_KEY)."""
    home = make_keyring(public=["own", "signer"])
    monkeypatch.setenv("GNUPGHOME", str(home))
    own, signer, offsite = (keys["fpr"][n] for n in ("own", "signer", "offsite"))

    def legacy(lines: str):
        conf = tmp_path / "dt.conf"
        conf.write_text(f"ROOT={tmp_path}\nDEST=file://{tmp_path}/t\nPASSPHRASE=\n{lines}")
        conf.chmod(0o600)
        return conf, load_config(conf).profile("dt-cf-backup")

    conf, profile = legacy(f"GPG_KEY={offsite}\n")
    refused = _refusal(profile, need_secret=False)
    assert refused.startswith(f"GPG_KEY in {conf}: key {offsite} is not in the keyring"), refused
    refused = _refusal(profile, need_secret=True)
    assert refused.startswith(f"GPG_KEY in {conf}: the secret key for {offsite} is missing")

    conf, profile = legacy(f"GPG_KEY={own}\n")  # its public key only: it cannot sign
    refused = _refusal(profile, need_secret=False)
    assert refused.startswith(f"GPG_KEY in {conf}: no secret key {own} in the keyring"), refused
    assert refused.endswith(
        "or migrate the file (cfbackup config migrate) and remove sign_key from the new config."
    ), refused

    conf, profile = legacy(f"GPG_ENC_KEY={own}\nGPG_SIGN_KEY={signer}\n")
    refused = _refusal(profile, need_secret=False)
    assert refused.startswith(f"GPG_SIGN_KEY in {conf}: no secret key {signer}"), refused
    conf, profile = legacy(f"GPG_ENC_KEY={offsite}\nGPG_SIGN_KEY={signer}\n")
    refused = _refusal(profile, need_secret=True)
    assert refused.startswith(f"GPG_ENC_KEY in {conf}: the secret key for {offsite}"), refused
    assert "profiles." not in refused
