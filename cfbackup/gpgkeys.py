"""Check GPG keys before anything runs, so a missing key fails before the first upload."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
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
        where = f"profiles.{profile.name}.encryption.gpg_home" if configured else "$GNUPGHOME"
        raise ConfigError(
            f"{where}: the keyring directory {path} does not exist on this machine: point "
            "gpg_home at the directory holding the keys (cfbackup recovery-kit import sets it), "
            f"or create it (mkdir -m 700 {shlex.quote(str(path))}) and import the keys into it "
            f"({import_command(path)})."
        )
    return str(path)


def gpg_command(home: str | os.PathLike | None) -> str:
    """``gpg`` on the keyring ``home`` (:func:`gpg_home`), as a fix command in a message starts:
    a plain ``gpg`` would change ``~/.gnupg`` while the profile reads another keyring, and the
    next run fail the same way."""
    return f"gpg --homedir {shlex.quote(str(home))}" if home else "gpg"


def import_command(home: str | os.PathLike | None) -> str:
    """The command that imports ``keys.asc`` (the recovery kit's keys, or an export) into
    the keyring ``home``."""
    return f"{gpg_command(home)} --import keys.asc"


def keyring(profile: Profile):
    """A python-gnupg handle on the profile's keyring (:func:`gpg_home`)."""
    return execute.gnupg_client(gpg_home(profile))


def check_keys(profile: Profile, *, need_secret: bool = False) -> list[str]:
    """The keys a run needs are in the keyring; what is worth a warning, one line each.

    A backup (encrypting) needs every ``encrypt_keys`` entry's public key, not expired or
    revoked and able to encrypt, and the secret part of ``sign_key``. With ``need_secret`` (a
    restore, list, verify: decrypting) it needs the secret key of one ``encrypt_keys`` entry,
    as gpg does (an escrow setup encrypts to two keys, a recovery kit may hold one), expired or
    revoked or not (gpg decrypts with those: they are a warning), and only the public part of
    ``sign_key``, which checks the volumes' signatures."""
    enc = profile["encryption"]
    if enc["mode"] == "none":
        return []
    home = gpg_home(profile)
    if enc["mode"] != "pubkey":
        return []
    gpg = keyring(profile)
    keys_at, sign_at = key_setting(profile, "encrypt_keys"), key_setting(profile, "sign_key")
    unsign = _unsign(profile)
    secret = gpg.list_keys(secret=True)
    public = gpg.list_keys()
    if need_secret:
        warnings = _decryption_keys(enc["encrypt_keys"], secret, public, keys_at, home)
    else:
        warnings = []
        for key_id in enc["encrypt_keys"]:
            key = find_key(public, key_id)
            if key is None:
                raise CryptoError(
                    f"{keys_at}: key {key_id} is not in the keyring "
                    f"{home or '~/.gnupg'}: import it ({import_command(home)}), or fix the key id."
                )
            _check_usable(key, key_id, keys_at, capability="e", home=home, unsign=unsign)
    sign_key = enc.get("sign_key")
    if sign_key and need_secret:  # checking signatures: the public key, valid (duplicity's rule)
        key = find_key(public, sign_key)
        if key is None:
            raise CryptoError(
                f"{sign_at}: key {sign_key} is not in the keyring {home or '~/.gnupg'}, "
                "and a restore checks each volume's signature with it: import its public key "
                f"({import_command(home)}), or {unsign}."
            )
        _check_verifies(key, sign_key, sign_at, unsign)
        _check_signing_subkey(key, sign_key, sign_at, profile)
    elif sign_key:
        key = find_key(secret, sign_key)
        if key is None:
            raise CryptoError(
                f"{sign_at}: no secret key {sign_key} in the keyring "
                f"{home or '~/.gnupg'}: import it ({import_command(home)}), or {unsign}."
            )
        _check_usable(key, sign_key, sign_at, capability="s", home=home, unsign=unsign)
        _check_signing_subkey(key, sign_key, sign_at, profile)
    return warnings


def key_setting(profile: Profile, key: str) -> str:
    """Where the profile's ``encrypt_keys`` or ``sign_key`` is set, as a message names it: a
    legacy file's variable (``GPG_KEY in /root/.dt-cf-backup.conf``), which has no native key
    to look for."""
    if not profile.legacy:
        return f"profiles.{profile.name}.encryption.{key}"
    from cfbackup.config.legacy_vars import key_origin

    where = f" in {profile.source_file}" if profile.source_file else ""
    return f"{key_origin(profile.source_file, f'encryption.{key}')}{where}"


def _unsign(profile: Profile) -> str:
    """The fix that stops signing: a legacy file's GPG_KEY (or GPG_ENC_KEY with GPG_SIGN_KEY)
    signs with the key it encrypts to, and removing it drops the keys, so it is the migrated
    config's ``sign_key`` to remove (or STATIC_OPTIONS' ``--sign-key``, where that alone signs)."""
    if not profile.legacy:
        return "remove sign_key"
    origin = key_setting(profile, "sign_key")
    if origin.startswith("--sign-key in STATIC_OPTIONS"):
        return f"remove {origin}"
    return "migrate the file (cfbackup config migrate) and remove sign_key from the new config"


def _decryption_keys(encrypt_keys, secret, public, where: str, home: str | None) -> list[str]:
    """gpg decrypts with any one recipient's secret key, expired or revoked (passcheck's "key
    holders" rule): refuse only when none is here; one whose backups are refused is a warning.
    ``where``: where the keys are set (:func:`key_setting`)."""
    holders = [(key_id, find_key(secret, key_id)) for key_id in encrypt_keys]
    holders = [(key_id, key) for key_id, key in holders if key is not None]
    if not holders:
        keys = " and ".join(encrypt_keys)
        what = (
            f"the secret key for {keys} is missing"
            if len(encrypt_keys) == 1
            else f"the secret keys for {keys} are all missing (one is enough)"
        )
        raise CryptoError(
            f"{where}: {what}, so backups cannot be decrypted: import "
            f"{'it' if len(encrypt_keys) == 1 else 'one'} from the recovery kit's keys.asc "
            f"({import_command(home)}), or run cfbackup recovery-kit import."
        )
    warnings = []
    for key_id, key in holders:
        listed = find_key(public, key_id) or key
        try:
            _check_usable(listed, key_id, where, capability="e", home=home)
        except CryptoError as error:
            warnings.append(
                f"{error.message.removesuffix('.')} (until then backups are refused; restores "
                "still decrypt with it)."
            )
    return warnings


def _check_verifies(key, sign_key: str, where: str, unsign: str = "remove sign_key") -> None:
    """duplicity's restore takes a volume's signer from gpg's ``GOODSIG`` line; by a revoked or
    expired key gpg writes ``REVKEYSIG`` / ``EXPKEYSIG`` instead, and every volume is refused
    ("Volume was signed by key None"). So that is refused here, in one line."""
    problem = _revoked_or_expired(key)
    if problem:
        renew = (
            ""
            if problem == "is revoked"
            else "extend it where its secret key is and import it here, or "
        )
        raise CryptoError(
            f"{where}: key {sign_key} {problem}, and duplicity's restore takes no signature by "
            f"such a key as good: {renew}{unsign} to restore without checking signatures."
        )


def _check_signing_subkey(key, sign_key: str, where: str, profile: Profile) -> None:
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
    fix, signer = f'set sign_key = "{subkey}"', "sign_key"
    if profile.legacy:  # GPG_KEY encrypts too: the migrated config's sign_key alone changes
        from cfbackup.config.legacy_vars import key_origin

        origin, signer = key_origin(profile.source_file, "encryption.sign_key"), "the signing key"
        fix = (
            f"set {origin} to {subkey}"
            if origin in ("GPG_SIGN_KEY", "--sign-key in STATIC_OPTIONS")
            else f"migrate the file (cfbackup config migrate) and {fix} in the new config"
        )
    raise CryptoError(
        f"{where}: {sign_key} is the primary key, but gpg signs with its subkey {subkey}, and "
        f"duplicity's restore refuses volumes not signed by {signer}: {fix}."
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


def agent_running(home: str | os.PathLike) -> bool:
    """Whether a gpg-agent serves keyring ``home``: an action that starts one stops it after,
    and leaves alone one that was already running. The agent is asked (without starting
    one) for its pid: a socket file alone may be stale (an agent killed with kill -9) or a
    systemd socket unit's, with no agent behind it."""
    result = execute.capture(["gpg-connect-agent", "--no-autostart", "--homedir", str(home),
                              "GETINFO pid", "/bye"], timeout=30)  # fmt: skip
    return result.returncode == 0 and any(
        re.fullmatch(r"D \d+", line.strip()) for line in result.stdout.splitlines()
    )


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


def _revoked_or_expired(key) -> str | None:
    if key.get("trust") == "r":
        return "is revoked"
    expires = key.get("expires")
    if expires and int(expires) < time.time():
        return f"expired on {time.strftime('%Y-%m-%d', time.gmtime(int(expires)))}"
    return None


def _check_usable(
    key, key_id: str, where: str, capability: str, home: str | None, unsign: str = "remove sign_key"
) -> None:
    """What encrypting to or signing with ``key`` needs: not revoked, not expired, a (sub)key
    that can do it. Each fix command names the profile's keyring (``home``)."""
    problem = _revoked_or_expired(key)
    if problem == "is revoked":
        raise CryptoError(f"{where}: key {key_id} is revoked: use another key.")
    if problem:
        raise CryptoError(
            f"{where}: key {key_id} {problem}: extend it (gpg --quick-set-expire) or use another "
            "key."
        )
    caps = key.get("cap", "")
    if capability.upper() not in caps and capability not in caps:
        add = f"{gpg_command(home)} --quick-add-key {key.get('fingerprint') or key_id} rsa3072"
        if capability == "s":
            raise CryptoError(
                f"{where}: key {key_id} cannot sign (it can only {_abilities(caps)}): add a "
                f"signing subkey with {add} sign, or {unsign}."
            )
        lapsed = [  # it had an encryption subkey, expired or revoked since
            sub
            for sub in (key.get("subkey_info") or {}).values()
            if "e" in (sub.get("cap") or "").lower() and sub.get("trust") in ("e", "r")
        ]
        if lapsed:
            state = "was revoked" if lapsed[-1].get("trust") == "r" else "expired"
            raise CryptoError(
                f"{where}: key {key_id} can no longer encrypt: its encryption subkey "
                f"{lapsed[-1].get('fingerprint') or ''} {state}: add a new one with {add} encr, "
                "or use another key."
            )
        raise CryptoError(  # e.g. gpg --quick-gen-key NAME rsa3072: certify and sign only
            f"{where}: key {key_id} has no encryption subkey (it can only {_abilities(caps)}): "
            f"add one with {add} encr, or use a key that can encrypt."
        )


def _abilities(caps: str) -> str:
    names = {"c": "certify", "s": "sign", "e": "encrypt", "a": "authenticate"}
    found = [names[c] for c in dict.fromkeys(caps.lower()) if c in names]
    return " and ".join(found) or "nothing"
