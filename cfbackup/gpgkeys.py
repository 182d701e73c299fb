"""Check GPG keys before anything runs, so a missing key fails before the first upload."""

from __future__ import annotations

import time

from cfbackup import execute
from cfbackup.config.model import Profile
from cfbackup.errors import CryptoError


def check_keys(profile: Profile, *, need_secret: bool = False) -> None:
    """Every encrypt key exists, is not expired or revoked, and can encrypt; the sign key (and
    with ``need_secret`` the decryption key) has its secret part."""
    enc = profile["encryption"]
    if enc["mode"] != "pubkey":
        return
    gpg = execute.gnupg_client(enc.get("gpg_home") or None)
    where = f"profiles.{profile.name}.encryption"
    public = gpg.list_keys()
    secret = gpg.list_keys(secret=True)
    for key_id in enc["encrypt_keys"]:
        key = _find(public, key_id)
        if key is None:
            raise CryptoError(
                f"{where}.encrypt_keys: key {key_id} is not in the keyring"
                f"{' at ' + enc['gpg_home'] if enc.get('gpg_home') else ''}: import it with "
                "gpg --import, or fix the key id."
            )
        _check_usable(key, key_id, where + ".encrypt_keys", capability="e")
        if need_secret and _find(secret, key_id) is None:
            raise CryptoError(
                f"{where}: the secret key for {key_id} is missing, so backups cannot be "
                "decrypted: import the secret key (e.g. from the recovery kit)."
            )
    if enc.get("sign_key"):
        key = _find(secret, enc["sign_key"])
        if key is None:
            raise CryptoError(
                f"{where}.sign_key: no secret key {enc['sign_key']} in the keyring: import it or "
                "remove sign_key."
            )
        _check_usable(key, enc["sign_key"], where + ".sign_key", capability="s")


def _find(keys, key_id: str):
    wanted = key_id.upper().removeprefix("0X")
    for key in keys:
        ids = [key.get("fingerprint", ""), key.get("keyid", "")]
        ids += [sub[0] for sub in key.get("subkeys", [])]
        ids += [fp for fp in key.get("subkey_info", {}) if fp]
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
        kind = "encrypt" if capability == "e" else "sign"
        raise CryptoError(f"{where}: key {key_id} cannot {kind} (capabilities {caps!r}).")
