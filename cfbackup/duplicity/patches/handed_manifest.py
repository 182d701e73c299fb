"""A backup's duplicity uses the manifest cfbackup's passphrase check decrypted instead of
downloading and decrypting it again (a core patch).

Before a backup cfbackup proves the passphrase by downloading and decrypting the newest manifest
at the target (``passcheck.check_passphrase``). An incremental's duplicity then does the same
for its last set (``dup_main.check_last_manifest``, ``BackupSet.check_manifests`` ->
``get_remote_manifest``) to compare it with its local copy: one more request and one more gpg
key derivation (0.2-0.3 s of CPU) on every incremental, a no-change one included. The backup
names a file of a private folder of the run in duplicity's environment
(``CFBACKUP_HANDED_MANIFEST``; ``environment.manifest_slot``, only for the chain whose
manifest the check opened) and writes into it, mode 0600, the manifest's name on a first line
and what the check decrypted. duplicity removes the file once it has read it, and the run's
folder is removed when duplicity has ended (or by the next run, after a kill -9). The name is
in the environment before the check has run (a duplicity started warm gets it then), so the
file is read when duplicity first asks for a remote manifest, not before.

``get_remote_manifest`` returns those bytes, parsed as duplicity parses what it downloads, when
the set's remote manifest has exactly that name (duplicity's name of it: the object name
without the target's prefix, or the file name); any other set, or no readable file, gets
duplicity's own download. The variable leaves duplicity's environment when the patch is
applied: gpg, a restarted duplicity and upload-pool workers never see it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping

FILE = "CFBACKUP_HANDED_MANIFEST"


def applies(env: Mapping[str, str]) -> bool:
    return bool(env.get(FILE))


def apply(env: Mapping[str, str]) -> None:
    path = env.get(FILE)
    os.environ.pop(FILE, None)
    if path:  # a pool worker (spawned after the pop) finds none
        install(path)


def read(path: str) -> tuple[str, bytes] | None:
    """(name, plaintext) handed over in ``path``; None when nothing was (or it is gone)."""
    try:
        with open(path, "rb") as handed:
            name, _, plaintext = handed.read().partition(b"\n")
    except OSError:  # nothing handed over, or gone: duplicity downloads it, as it would have
        return None
    return (os.fsdecode(name), plaintext) if name else None


def install(path: str) -> None:
    """``BackupSet.get_remote_manifest`` answers what ``path`` holds for the manifest named
    there."""
    from duplicity import config, dup_collections, log, manifest

    genuine = dup_collections.BackupSet.get_remote_manifest
    handed: list = []  # read once, when first asked

    def get_remote_manifest(self):
        if not handed:
            handed.append(read(path))
            with contextlib.suppress(OSError):  # read once: the plaintext goes at once
                os.unlink(path)
        remote = self.remote_manifest_name
        if not (handed[0] and config.check_remote and remote):
            return genuine(self)
        name, plaintext = handed[0]
        if os.fsdecode(remote) != name:
            return genuine(self)
        log.Info(f"Using remote manifest {name} ({len(plaintext)}) as cfbackup's check read it")
        return manifest.Manifest().from_string(plaintext)

    dup_collections.BackupSet.get_remote_manifest = get_remote_manifest
