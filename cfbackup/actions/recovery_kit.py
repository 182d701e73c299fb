"""``cfbackup recovery-kit export DIR``: what it takes to restore from nothing, in one file.

The successor of dt-cf-backup.sh's ``--backup-script``: the config (and, for public-key
encryption, the public and secret keys) in a tar archive encrypted with the profile's
passphrase, plus a plain README saying how to use it. Keep it off the server it protects.
"""

from __future__ import annotations

import io
import os
import socket
import tarfile
import time
from pathlib import Path

from cfbackup import gpgkeys
from cfbackup.actions.recovery_import import DEFAULT_PLACES, LEGACY, NATIVE
from cfbackup.config import legacy_vars
from cfbackup.config.model import Config, Profile
from cfbackup.config.secrets import resolve_secret
from cfbackup.errors import ConfigError, CryptoError

KIT_ACTION = "recovery-kit"  # its name in the run history (check looks for it)


def export_command(config: Config, profile: str) -> str:
    """The command that makes a (new) kit of ``profile``, as messages suggest it."""
    from cfbackup import suggest

    return suggest.command(
        "recovery-kit", "export", config.state_dir / "recovery-kit", "--profile", profile
    )


README = """\
cfbackup recovery kit for {host}, made {when}

{kit} is a tar archive encrypted with the passphrase of profile {profile}
(the backup passphrase): keep a copy of that passphrase away from the server too.
On a new machine, with cfbackup installed (docs/runbook-restore.md):

    cfbackup recovery-kit import {kit}   # asks for the passphrase
    cfbackup check {profile} --for-restore
    cfbackup restore {profile} /srv/restore

recovery-kit import installs the config at {installed}.
By hand, in an empty folder: gpg --decrypt {kit} | tar -x gives
{member} and README.txt (and keys.asc: gpg --import keys.asc), then
cfbackup -c {member} check {profile} --for-restore.

Secrets the config reads from the environment, files or commands are NOT in the kit:
recovery-kit import lists the ones to set or re-create.
"""


def export_kit(config: Config, profile: Profile, directory: Path) -> Path:
    enc = profile["encryption"]
    passphrase = resolve_secret(enc, "passphrase", f"profiles.{profile.name}.encryption")
    if not passphrase and config.kind == "legacy":  # its fix is in the old file's words
        raise ConfigError(  # a failed $(...) named with its line; never the value or output
            legacy_vars.left_empty(
                Path(config.path),
                "PASSPHRASE",
                needed_for="the recovery kit is encrypted with the backup passphrase",
                not_set=f'set PASSPHRASE="..." in {config.path}',
            )
        )
    if not passphrase:
        raise ConfigError(
            f"profiles.{profile.name}.encryption: the recovery kit is encrypted with the profile's "
            "passphrase, and none is set: set passphrase_file (or _env, _command)."
        )
    gpg = gpgkeys.keyring(profile)
    member = NATIVE if config.kind == "native" else LEGACY
    members: dict[str, bytes] = {member: Path(config.path).read_bytes()}
    if enc["mode"] == "pubkey":
        keys = list(enc["encrypt_keys"]) + ([enc["sign_key"]] if enc.get("sign_key") else [])
        public = gpg.export_keys(keys)
        secret = gpg.export_keys(keys, secret=True, passphrase=passphrase, expect_passphrase=True)
        if not public:
            raise CryptoError(f"cannot export the keys {', '.join(keys)}: are they in the keyring?")
        members["keys.asc"] = (public + (secret or "")).encode()
    host = socket.gethostname()
    when = time.strftime("%Y%m%dT%H%M%S")
    kit = f"cfbackup-recovery-kit-{host}-{profile.name}-{when}.tar.gpg"
    members["README.txt"] = README.format(
        host=host,
        when=when,
        kit=kit,
        profile=profile.name,
        member=member,
        installed=f"~/{DEFAULT_PLACES[member]}",
    ).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    encrypted = gpg.encrypt(
        buffer.getvalue(),
        recipients=None,
        symmetric="AES256",
        passphrase=passphrase,
        armor=False,
        extra_args=["--pinentry-mode", "loopback"],
    )
    if not encrypted.ok:
        raise CryptoError(f"gpg could not encrypt the recovery kit: {encrypted.status}.")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / kit
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(encrypted.data)
    (directory / f"{kit}.README.txt").write_text(members["README.txt"].decode())
    return path
