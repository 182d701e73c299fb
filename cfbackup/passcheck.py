"""Prove the passphrase opens the existing backups before a backup starts.

duplicity happily starts a new full chain with a mistyped passphrase when a full is due, and
that chain can only be restored with the typo. Decrypting the newest remote manifest (a few KB)
first turns that into a clear error before anything is uploaded.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from pathlib import Path

from cfbackup import execute
from cfbackup.config.model import Profile
from cfbackup.duplicity.target import swift_target
from cfbackup.errors import CryptoError

MANIFEST = re.compile(r"^duplicity-(?:full|inc)\.[^/]*\.manifest\.gpg$")


def newest_manifest(profile: Profile) -> bytes | None:
    """The newest encrypted manifest at the target, or None when there is none (or the scheme
    is not one cfbackup can read itself)."""
    target = swift_target(profile.target)
    if target is not None:
        from cfbackup import swift

        with swift.swift_errors(profile):
            conn = swift.connect(profile)
            from swiftclient.exceptions import ClientException

            try:
                listing = conn.get_container(
                    target.container, prefix=target.object_prefix, full_listing=True
                )[1]
            except ClientException as error:
                if error.http_status == 404:
                    return None
                raise
            names = [
                o["name"] for o in listing if MANIFEST.match(o["name"][len(target.object_prefix) :])
            ]
            if not names:
                return None
            return conn.get_object(target.container, max(names, key=_manifest_time))[1]
    parsed = urllib.parse.urlsplit(profile.target)
    if parsed.scheme == "file":
        folder = Path(urllib.parse.unquote(parsed.path))
        if not folder.is_dir():
            return None
        names = [n for n in os.listdir(folder) if MANIFEST.match(n)]
        if not names:
            return None
        return (folder / max(names, key=_manifest_time)).read_bytes()
    return None


def _manifest_time(name: str) -> str:
    # duplicity-full.20261126T022930Z.manifest.gpg / duplicity-inc.A.to.B.manifest.gpg
    stamps = re.findall(r"\d{8}T\d{6}Z", name)
    return stamps[-1] if stamps else ""


def check_passphrase(profile: Profile, env: dict[str, str]) -> bool:
    """Raise CryptoError when the passphrase does not open the newest backup at the target;
    True when it was checked, False when there was nothing to check it against."""
    enc = profile["encryption"]
    if enc["mode"] != "symmetric" or not env.get("PASSPHRASE"):
        return False
    data = newest_manifest(profile)
    if data is None:
        return False
    gpg = execute.gnupg_client(enc.get("gpg_home") or os.environ.get("GNUPGHOME") or None)
    result = gpg.decrypt(
        data, passphrase=env["PASSPHRASE"], extra_args=["--pinentry-mode", "loopback"]
    )
    if not result.ok:
        raise CryptoError(
            f"the passphrase of profile {profile.name} does not decrypt the backups already at "
            f"{profile.target}: check encryption.passphrase (a backup with another passphrase "
            "would start a chain only that passphrase can restore)."
        )
    return True
