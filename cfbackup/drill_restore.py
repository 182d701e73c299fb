"""How a drill runs one of its duplicity restores: from the local copy of the volumes it
fetched (``file://``), into a private folder, each worker thread with its own archive dir
(duplicity locks it), and where in that folder each restored path lands.

Kept apart from ``drill.py``, which reads the chain, samples, fetches and compares: this is
only the duplicity run and its paths.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cfbackup import drillplan, execute, restore_target, signatures
from cfbackup.config.model import Profile
from cfbackup.duplicity import commands

# what a restore from the local copy needs of the drill's environment (HOME: a drill from nothing)
RESTORE_VARIABLES = ("PASSPHRASE", "SIGN_PASSPHRASE", "GNUPGHOME", "HOME")


class WorkerFolders:
    """One archive dir per worker thread (duplicity allows one process per archive dir)."""

    def __init__(self, root: Path):
        self.root = root
        self._local = threading.local()
        self._count = 0
        self._lock = threading.Lock()

    def mine(self) -> Path:
        folder = getattr(self._local, "folder", None)
        if folder is None:
            with self._lock:
                self._count += 1
                folder = self._local.folder = self.root / f"worker-{self._count}"
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return folder


def restore(
    profile: Profile,
    unit: drillplan.Unit,
    out: Path,
    env: dict[str, str],
    group: execute.ProcessGroup,
    workdir: Path,
) -> dict[str, str]:
    """Restore ``unit`` into ``out/tree``; returns the entries duplicity could not restore
    and went on without (it exits 0 then), by their path in the backup, with its reason."""
    from cfbackup.duplicity.run import run_duplicity

    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    owners = restore_target.can_chown()
    if unit.whole:
        listing = workdir / "lists" / f"{out.name}.list"
        listing.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        listing.write_bytes(b"".join(os.fsencode(e.path) + b"\0" for e in unit.files))
        build = lambda fd: commands.restore_argv(  # noqa: E731
            profile, str(out / "tree"), only=str(listing), log_fd=fd, owners=owners
        )
    else:
        build = lambda fd: commands.restore_argv(  # noqa: E731
            profile, str(out / "tree"), path=unit.path, log_fd=fd, owners=owners
        )
    result = run_duplicity(build, env, on_start=group.started, profile=profile)
    return result.not_processed_under(None if unit.whole else unit.path)


def restored_path(unit: drillplan.Unit, entry: signatures.Entry, out: Path) -> Path:
    tree = out / "tree"
    if unit.whole:
        return tree / entry.path
    if not unit.folder:
        return tree
    return tree / os.fsdecode(b"/".join(entry.index[len(unit.prefix) :]))
