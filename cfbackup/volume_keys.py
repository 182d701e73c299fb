"""Decrypting a backup's objects as duplicity wrote them: gpg with the profile's passphrase
or keys (python-gnupg, the passphrase on gpg's standard input, never its command line), gzip
for an unencrypted profile, nothing for a plain one. What ``volumes.py`` reads manifests and
checks volumes with, and restore prefetch decrypts ahead with.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os
import shutil
from pathlib import Path
from typing import Any

from cfbackup import execute
from cfbackup.config.model import Profile
from cfbackup.errors import CryptoError
from cfbackup.stores import CHUNK


def keys_error(what: str) -> CryptoError:
    """gpg could not decrypt ``what`` because of the passphrase or the keys."""
    return CryptoError(
        f"gpg could not decrypt {what}: wrong passphrase, or the secret key is missing from the "
        "keyring: check encryption.passphrase and the keys (cfbackup check tests them)."
    )


class Undecryptable(Exception):
    """gpg (or gzip) could not decrypt an object; ``keys``: because of the keys or passphrase
    (gpg's own words), not the object's bytes."""

    KEY_REASONS = ("Bad session key", "No secret key", "bad passphrase", "Bad passphrase")

    def __init__(self, reason: str):
        super().__init__(reason)
        self.keys = any(words in reason for words in self.KEY_REASONS)


@dataclasses.dataclass
class Keys:
    """What it takes to decrypt a profile's objects: gpg with its passphrase, or nothing."""

    mode: str
    passphrase: str | None = None
    gnupghome: str | None = None

    @classmethod
    def for_profile(cls, profile: Profile, env: dict[str, str]) -> Keys:
        enc = profile["encryption"]
        return cls(
            mode=enc["mode"],
            passphrase=env.get("PASSPHRASE"),
            gnupghome=env.get("GNUPGHOME") or os.environ.get("GNUPGHOME") or None,
        )

    @functools.cached_property
    def _gpg(self):
        return execute.gnupg_client(self.gnupghome)

    def _gpg_args(self) -> dict[str, Any]:
        return {
            "passphrase": self.passphrase,
            "extra_args": ["--pinentry-mode", "loopback"],
            "always_trust": True,
        }

    def decrypt_bytes(self, data: bytes, name: str) -> bytes:
        """A small object (a manifest) in clear."""
        if name.endswith(".gpg"):
            result = self._gpg.decrypt(data, **self._gpg_args())
            if not result.ok:
                raise Undecryptable(_gpg_reason(result))
            return result.data
        if name.endswith(".gz"):
            return gzip.decompress(data)
        return data

    def decrypt_file(self, source: Path, name: str, output: Path) -> None:
        """Object ``name`` downloaded to ``source``, in clear into ``output``."""
        if name.endswith(".gpg"):
            with open(source, "rb") as handle:
                result = self._gpg.decrypt_file(handle, output=str(output), **self._gpg_args())
            if not result.ok:
                output.unlink(missing_ok=True)
                raise Undecryptable(_gpg_reason(result))
        elif name.endswith(".gz"):
            try:
                with gzip.open(source, "rb") as plain, open(output, "wb") as out:
                    shutil.copyfileobj(plain, out, CHUNK)
            except (OSError, EOFError) as error:
                raise Undecryptable(f"gzip: {error}") from None
        else:
            shutil.copyfile(source, output)


def _gpg_reason(result) -> str:
    """gpg's own words for a failed decryption: its last ``gpg:`` line."""
    lines = [line for line in (result.stderr or "").splitlines() if line.startswith("gpg:")]
    return lines[-1] if lines else getattr(result, "status", None) or "gpg failed"
