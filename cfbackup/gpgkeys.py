"""Check GPG keys before anything runs, so a missing key fails before the first upload."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from cfbackup import execute
from cfbackup.config.model import Profile
from cfbackup.errors import CfbackupError, ConfigError, CryptoError


def gpg_home(profile: Profile) -> str | None:
    """The keyring gpg uses for this profile: ``encryption.gpg_home``, else ``$GNUPGHOME``, else
    None (gpg's default, ``~/.gnupg``). One that is not a directory (a config carried over from
    another machine, e.g. in the recovery kit) is a one-line error with its fix."""
    configured = profile["encryption"].get("gpg_home")
    home = configured or os.environ.get("GNUPGHOME")
    if not home:
        return None
    path = Path(home).expanduser()
    if not path.is_dir():
        where = (
            f"profiles.{profile.name}.encryption.gpg_home" if configured else "$GNUPGHOME"
        )
        raise ConfigError(
            f"{where}: the keyring directory {path} does not exist on this machine: point "
            "gpg_home at the directory holding the keys (cfbackup recovery-kit import sets it), "
            f"or create it (mkdir -m 700 {path}) and import the keys into it (gpg --homedir "
            f"{path} --import keys.asc)."
        )
    return str(path)


def keyring(profile: Profile):
    """A python-gnupg handle on the profile's keyring (:func:`gpg_home`)."""
    return execute.gnupg_client(gpg_home(profile))


def check_keys(profile: Profile, *, need_secret: bool = False) -> None:
    """The keyring exists; every encrypt key exists, is not expired or revoked, and can encrypt;
    the sign key (and with ``need_secret`` the decryption key) has its secret part."""
    enc = profile["encryption"]
    if enc["mode"] == "none":
        return
    gpg_home(profile)
    if enc["mode"] != "pubkey":
        return
    gpg = keyring(profile)
    where = f"profiles.{profile.name}.encryption"
    public = gpg.list_keys()
    secret = gpg.list_keys(secret=True)
    for key_id in enc["encrypt_keys"]:
        key = find_key(public, key_id)
        if key is None:
            raise CryptoError(
                f"{where}.encrypt_keys: key {key_id} is not in the keyring"
                f"{' at ' + enc['gpg_home'] if enc.get('gpg_home') else ''}: import it with "
                "gpg --import, or fix the key id."
            )
        _check_usable(key, key_id, where + ".encrypt_keys", capability="e")
        if need_secret and find_key(secret, key_id) is None:
            raise CryptoError(
                f"{where}: the secret key for {key_id} is missing, so backups cannot be "
                "decrypted: import the secret key (e.g. from the recovery kit)."
            )
    if enc.get("sign_key"):
        key = find_key(secret, enc["sign_key"])
        if key is None:
            raise CryptoError(
                f"{where}.sign_key: no secret key {enc['sign_key']} in the keyring: import it or "
                "remove sign_key."
            )
        _check_usable(key, enc["sign_key"], where + ".sign_key", capability="s")
        _check_signing_subkey(key, enc["sign_key"], where + ".sign_key")


def _check_signing_subkey(key, sign_key: str, where: str) -> None:
    """gpg signs with a key's newest signing subkey when it has one, even when asked for the
    primary key; duplicity's restore then compares that subkey's ID with ``sign_key`` and
    refuses every volume ("Volume was signed by key SUBKEY, not PRIMARY"). So ``sign_key``
    must name the subkey that signs (``sign_key``: upper-case hex, as the config loader spells
    it)."""
    signing = [
        sub
        for sub in (key.get("subkey_info") or {}).values()
        if "s" in (sub.get("cap") or "").lower()
        and sub.get("trust") not in ("r", "e")
        and not (sub.get("expires") and int(sub["expires"]) < time.time())
    ]
    if not signing or any(
        (sub.get("fingerprint") or sub.get("keyid") or "").upper().endswith(sign_key)
        for sub in signing
    ):
        return
    newest = max(signing, key=lambda sub: int(sub.get("date") or 0))
    subkey = newest.get("fingerprint") or newest.get("keyid")
    raise CryptoError(
        f"{where}: {sign_key} is the primary key, but gpg signs with its subkey {subkey}, and "
        "duplicity's restore refuses volumes not signed by sign_key: set sign_key = "
        f'"{subkey}".'
    )


@contextlib.contextmanager
def calibrated_agent(profile: Profile) -> Iterator[None]:
    """gpg-agent started, and its s2k count calibrated, while the checks before a backup run.

    gpg encrypting with a passphrase asks gpg-agent for the s2k count, and an agent calibrates
    it at the first such question after it starts: 0.7 s of CPU here (docs/performance.md),
    which a backup's first volume waited for whenever no agent ran for the keyring (the first
    backup after a boot, and every backup of a systemd unit, whose processes end with it). The
    question is asked now, in the background, with the minimal environment duplicity's gpg
    gets (no secret). Only for a passphrase (``symmetric``): keys need no count. A keyring
    directory that is missing is left to the checks to report; nothing here fails a backup."""
    process = None
    with contextlib.suppress(ConfigError):  # a keyring that is not there: the checks say so
        home = gpg_home(profile)
        where = ["--homedir", home] if home else []
        if profile["encryption"]["mode"] == "symmetric":
            with contextlib.suppress(CfbackupError, OSError):  # gpg calibrates later, as before
                process = execute.background(
                    ["gpg-connect-agent", *where, "GETINFO s2k_count", "/bye"]
                )
    try:
        yield
    finally:
        if process is not None:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def stop_agent(home: str | os.PathLike) -> None:
    """Stop the gpg daemons (gpg-agent) serving keyring ``home``: one that served a throw-away
    keyring would outlive it."""
    execute.capture(["gpgconf", "--homedir", str(home), "--kill", "all"], timeout=30)


def find_key(keys, key_id: str):
    wanted = key_id.upper().removeprefix("0X")
    for key in keys:
        ids = [key.get("fingerprint", ""), key.get("keyid", "")]
        ids += [sub[0] for sub in key.get("subkeys", [])]
        ids += [fp for fp in key.get("subkey_info", {}) if fp]
        ids += [i.get("fingerprint") or "" for i in key.get("subkey_info", {}).values()]
        if any(i and i.upper().endswith(wanted) for i in ids):
            return key
        if any(wanted.lower() in uid.lower() for uid in key.get("uids", [])):
            return key
    return None


def _check_usable(key, key_id: str, where: str, capability: str) -> None:
    if key.get("trust") == "r":
        raise CryptoError(f"{where}: key {key_id} is revoked: use another key.")
    expires = key.get("expires")
    if expires and int(expires) < time.time():
        raise CryptoError(
            f"{where}: key {key_id} expired: extend it (gpg --quick-set-expire) or use another key."
        )
    caps = key.get("cap", "")
    if capability.upper() not in caps and capability not in caps:
        fingerprint = key.get("fingerprint") or key_id
        if capability == "e":  # e.g. gpg --quick-gen-key NAME rsa3072: certify and sign only
            raise CryptoError(
                f"{where}: key {key_id} has no encryption subkey (it can only "
                f"{_abilities(caps)}): add one with gpg --quick-add-key {fingerprint} rsa3072 "
                "encr, or use a key that can encrypt."
            )
        raise CryptoError(
            f"{where}: key {key_id} cannot sign (it can only {_abilities(caps)}): add a signing "
            f"subkey with gpg --quick-add-key {fingerprint} rsa3072 sign, or remove sign_key."
        )


def _abilities(caps: str) -> str:
    names = {"c": "certify", "s": "sign", "e": "encrypt", "a": "authenticate"}
    found = [names[c] for c in dict.fromkeys(caps.lower()) if c in names]
    return " and ".join(found) or "nothing"
