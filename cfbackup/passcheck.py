"""Prove the passphrase itself: before a backup, and in ``cfbackup check``.

duplicity happily starts a new full chain with a mistyped passphrase when a full is due, and
that chain can only be restored with the typo. Decrypting the newest remote manifest (a few KB)
first turns that into a clear error before anything is uploaded.

The decryption runs in a throw-away copy of the keyring with its own gpg-agent (measured with
gpg 2.2: while the user's agent holds a secret key unlocked, gpg decrypts with it whatever
passphrase it is given, so a wrong passphrase file passes until the cache is cold, e.g. on the
new machine at 3 a.m.). A symmetric passphrase is never answered from the cache, but gets the
same empty keyring: one path for both.

Before an incremental duplicity downloads and decrypts that same manifest again (it compares it
with its local copy): the backup hands it what the check decrypted (:class:`Manifest`,
``environment.manifest_slot``, ``duplicity/patches/handed_manifest.py``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from cfbackup import execute, gpgkeys
from cfbackup.config.model import Profile
from cfbackup.duplicity import names
from cfbackup.duplicity.target import swift_target
from cfbackup.errors import CfbackupError, CryptoError
from cfbackup.volume_keys import Keys, Undecryptable, passphrase_source

KEYRING_PREFIX = "cfbackup-gpg-"  # + pid + "-": a dead run's copy is swept at the next use


class Manifest(NamedTuple):
    """A manifest at the target: its name as duplicity names it (the object's name without the
    target's prefix, or the file's name), and its bytes (encrypted, or as the check decrypted
    them)."""

    name: str
    data: bytes


def newest_manifest(profile: Profile, view=None) -> Manifest | None:
    """The newest encrypted manifest at the target, or None when there is none (or the scheme
    is not one cfbackup can read itself). ``view``: the run's ``swift.TargetView``, whose
    connection and listing the quota guard uses too."""
    target = swift_target(profile.target)
    if target is not None:
        from cfbackup import swift

        with swift.swift_errors(profile):
            conn, objects = swift.target_listing(profile, view)
            name = _newest(profile, (o["name"] for o in objects))
            if name is None:
                return None
            return Manifest(name, conn.get_object(target.container, target.object_prefix + name)[1])
    parsed = urllib.parse.urlsplit(profile.target)
    if parsed.scheme == "file":
        folder = Path(urllib.parse.unquote(parsed.path))
        if not folder.is_dir():
            return None
        name = _newest(profile, os.listdir(folder))
        if name is None:
            return None
        return Manifest(name, (folder / name).read_bytes())
    return None


def _newest(profile: Profile, found) -> str | None:
    """The newest of the encrypted manifests among ``found`` (names, read with the profile's
    file prefixes), None when there is none."""
    manifests = [
        (parsed.time or parsed.end_time, name)
        for name, parsed in names.of(profile).parsed(found)
        if parsed.manifest and not parsed.partial and name.endswith(".gpg") and "/" not in name
    ]
    return max(manifests)[1] if manifests else None


def fresh_keyring(profile: Profile, *, with_keys: bool):
    """A throw-away copy of the profile's keyring (``with_keys``), else an empty one: see
    :func:`empty_keyring`."""
    source = gpgkeys.gpg_home(profile) or os.path.expanduser("~/.gnupg")
    return empty_keyring(source if with_keys else None)


@contextlib.contextmanager
def empty_keyring(copy_of: str | None = None) -> Iterator:
    """A python-gnupg handle on a throw-away keyring (empty, or a copy of ``copy_of``) served by
    its own gpg-agent, which is stopped and removed after: nothing an agent has cached can
    stand in for a passphrase, and nothing is left in the user's keyring or agent."""
    _sweep_dead_keyrings()
    scratch = Path(tempfile.mkdtemp(prefix=f"{KEYRING_PREFIX}{os.getpid()}-"))
    try:
        home = scratch / "gnupg"  # short: gpg-agent's socket lives in it
        if copy_of and os.path.isdir(copy_of):
            shutil.copytree(copy_of, home, ignore=_not_keyring)
        else:
            home.mkdir()
        home.chmod(0o700)
        try:
            yield execute.gnupg_client(str(home))
        finally:
            gpgkeys.stop_agent(home)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _sweep_dead_keyrings() -> None:
    """Remove the keyring copies of runs that died before their cleanup (kill -9, power
    loss): a copy of a secret keyring must not stay in TMPDIR. Only this user's folders named
    after a pid that no longer runs; the agent a dead run left serving one is stopped first."""
    from cfbackup.lock import pid_alive

    for old in Path(tempfile.gettempdir()).glob(f"{KEYRING_PREFIX}*"):
        pid = old.name.removeprefix(KEYRING_PREFIX).split("-", 1)[0]
        with contextlib.suppress(OSError):
            mine = old.lstat().st_uid == os.getuid() and old.is_dir() and not old.is_symlink()
            if not (mine and pid.isdigit() and not pid_alive(int(pid))):
                continue
            if (old / "gnupg").is_dir():
                with contextlib.suppress(CfbackupError):  # no gpgconf: no agent ran either
                    gpgkeys.stop_agent(old / "gnupg")
            shutil.rmtree(old, ignore_errors=True)


def _not_keyring(folder: str, names: list[str]) -> list[str]:
    """What a keyring copy leaves out: sockets and locks of the running agent, and the agent's
    own settings (a plain agent, with loopback pinentry allowed, is what the test needs)."""
    return [
        n
        for n in names
        if n.startswith("S.")
        or n.endswith(".lock")
        or n == "gpg-agent.conf"
        or not (os.path.isfile(os.path.join(folder, n)) or os.path.isdir(os.path.join(folder, n)))
    ]


def _decrypted(gpg, data: bytes | str, passphrase: str | None) -> bytes | None:
    """The plaintext, or None when gpg could not decrypt ``data``."""
    result = gpg.decrypt(
        data,
        passphrase=execute.duplicity_passphrase(passphrase),
        always_trust=True,
        extra_args=["--pinentry-mode", "loopback"],
    )
    return result.data if result.ok else None


def _wrong(profile: Profile, what: str) -> CryptoError:
    return CryptoError(
        f"the passphrase of profile {profile.name} does not {what}: fix "
        f"{passphrase_source(profile)}, or the backups cannot be restored (a backup with another "
        "passphrase would start a chain only that passphrase can restore)."
    )


def check_passphrase(profile: Profile, env: dict[str, str], view=None) -> Manifest | None:
    """Raise CryptoError when the passphrase does not open the newest backup at the target;
    the manifest it opened (decrypted) when it was checked, None when there was nothing to
    check it against."""
    enc = profile["encryption"]
    if enc["mode"] != "symmetric" or not env.get("PASSPHRASE"):
        return None
    found = newest_manifest(profile, view)
    if found is None:
        return None
    with fresh_keyring(profile, with_keys=False) as gpg:
        keys = Keys(mode="symmetric", passphrase=env["PASSPHRASE"], gnupghome=gpg.gnupghome)
        try:  # the key derived by cfbackup (session_keys.py), else by gpg as duplicity's is
            plaintext = keys.decrypt_bytes(found.data, found.name)
        except Undecryptable:
            raise _wrong(profile, f"decrypt the backups already at {profile.target}") from None
    return Manifest(found.name, plaintext)


def verify_passphrase(profile: Profile, env: dict[str, str]) -> str:
    """``cfbackup check``'s test of the passphrase itself (never an agent's cache): what it
    proved, in a few words; CryptoError when the passphrase is wrong. Symmetric: it opens the
    newest backup. Public keys: it unlocks the secret key, on the newest backup or, before the
    first, on a message encrypted here; a machine without the secret key (backups only) has
    nothing to test."""
    enc = profile["encryption"]
    passphrase = env.get("PASSPHRASE")
    if enc["mode"] == "symmetric":
        if check_passphrase(profile, env) is not None:
            return f"opens the newest backup at {profile.target}"
        return "set (no backup at the target yet to test it against)"
    if enc["mode"] != "pubkey":
        return "not needed (encryption mode none)"
    secret = gpgkeys.keyring(profile).list_keys(secret=True)
    holders = [k for k in enc["encrypt_keys"] if gpgkeys.find_key(secret, k) is not None]
    if not holders:
        return (
            "not tested: no secret key for encrypt_keys here (this machine can back up, and "
            "restores need the secret key, e.g. from the recovery kit)"
        )
    found = newest_manifest(profile)
    with fresh_keyring(profile, with_keys=True) as gpg:
        if found is not None:
            if _decrypted(gpg, found.data, passphrase) is None:
                raise _wrong(profile, f"unlock the secret key that decrypts {profile.target}")
            return f"unlocks the secret key; opens the newest backup at {profile.target}"
        sealed = gpg.encrypt("cfbackup check", holders, always_trust=True, armor=True)
        if not sealed.ok:
            raise CryptoError(f"gpg could not encrypt a test message to {holders[0]}.")
        if _decrypted(gpg, str(sealed), passphrase) is None:
            raise _wrong(profile, f"unlock the secret key of {holders[0]}")
    return "unlocks the secret key (no backup at the target yet)"
