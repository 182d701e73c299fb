"""A backup's duplicity uses the manifest cfbackup's passphrase check decrypted instead of
downloading and decrypting it again (a core patch).

Before a backup cfbackup proves the passphrase by downloading and decrypting the newest manifest
at the target (``passcheck.check_passphrase``). An incremental's duplicity then does the same
for its last set (``dup_main.check_last_manifest``, ``BackupSet.check_manifests`` ->
``get_remote_manifest``) to compare it with its local copy: one more request and one more gpg
key derivation (0.2-0.3 s of CPU) on every incremental, a no-change one included. The backup
action writes what the check decrypted into a 0600 file of a private temporary directory,
removed when duplicity has ended, and names it in duplicity's environment
(``CFBACKUP_HANDED_MANIFEST``, the manifest's name in ``CFBACKUP_HANDED_MANIFEST_NAME``;
``environment.manifest_handover``, only for the chain whose manifest the check opened).

``get_remote_manifest`` returns those bytes, parsed as duplicity parses what it downloads, when
the set's remote manifest has exactly that name (duplicity's name of it: the object name
without the target's prefix, or the file name); any other set, or no readable file, gets
duplicity's own download. The variables leave duplicity's environment when the patch is
applied: gpg, a restarted duplicity and upload-pool workers never see them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

FILE = "CFBACKUP_HANDED_MANIFEST"
NAME = "CFBACKUP_HANDED_MANIFEST_NAME"


def applies(env: Mapping[str, str]) -> bool:
    return bool(env.get(FILE) and env.get(NAME))


def apply(env: Mapping[str, str]) -> None:
    path, name = env.get(FILE), env.get(NAME)
    for variable in (FILE, NAME):
        os.environ.pop(variable, None)
    if not (path and name):  # a pool worker (spawned after the pop) finds none
        return
    try:
        with open(path, "rb") as handed:
            plaintext = handed.read()
    except OSError:  # gone: duplicity downloads it, as it would have
        return
    install(name, plaintext)


def install(name: str, plaintext: bytes) -> None:
    """``BackupSet.get_remote_manifest`` answers ``plaintext`` for the manifest ``name``."""
    from duplicity import config, dup_collections, log, manifest

    genuine = dup_collections.BackupSet.get_remote_manifest

    def get_remote_manifest(self):
        remote = self.remote_manifest_name
        if not (config.check_remote and remote and os.fsdecode(remote) == name):
            return genuine(self)
        log.Info(f"Using remote manifest {name} ({len(plaintext)}) as cfbackup's check read it")
        return manifest.Manifest().from_string(plaintext)

    dup_collections.BackupSet.get_remote_manifest = get_remote_manifest
