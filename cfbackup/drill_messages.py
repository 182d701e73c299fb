"""What a drill says when it cannot drill, or cannot check a file: no backup at that time, a
chain whose manifests or signatures are lost or unreadable, an interrupted backup, too little
room, a file this machine cannot restore. One sentence each, naming the cause and the command
that fixes it (``suggest.command``: ``-c FILE`` and the options that chose the backup kept).
Kept apart from ``drill.py``, which does the drill's work.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cfbackup import suggest, volumes
from cfbackup.config.model import Profile
from cfbackup.errors import (
    CfbackupError,
    ExitCode,
    NoBackupFound,
    RunRefused,
    VerifyDifferences,
)
from cfbackup.progress import human_bytes
from cfbackup.stores import Store
from cfbackup.units import printable_name


def _full_backup(name: str) -> str:
    return f"start a sound chain with {suggest.command('backup', name, '--full')}."


def no_backup(profile: Profile, when: float | None) -> NoBackupFound:
    """No chain of the profile has a backup at ``when``."""
    return NoBackupFound(
        f"no backup of profile {profile.name} at {profile.target}"
        + (" at that time" if when else "")
        + ": run a backup first, or check the profile's target and --time."
    )


def lost_manifests(lost: list[volumes.BackupSet], store: Store, name: str) -> VerifyDifferences:
    """Sets of the chain drilled lost their manifest: duplicity's restore dies there, and
    drilling an older state would hide it."""
    return VerifyDifferences(
        f"{volumes.lost_manifest_problem(lost[0], store)}: restore from before it "
        f"(--time) if you must, and {_full_backup(name)}",
        stats={"bad_volumes": [volumes.lost_manifest_problem(s, store) for s in lost]},
    )


def unreadable_manifest(backup_set: volumes.BackupSet, name: str) -> VerifyDifferences:
    return VerifyDifferences(
        f"the manifest {backup_set.manifest} of the {backup_set.label} cannot be "
        f"read: {backup_set.problem}: the backup is damaged; restore from an earlier "
        f"chain (--time) if there is one, and {_full_backup(name)}"
    )


def no_signatures(backup_set: volumes.BackupSet, store: Store, name: str) -> VerifyDifferences:
    return VerifyDifferences(
        f"the {backup_set.label} has no signatures at {store.label}: the drill has "
        f"nothing to compare with; {_full_backup(name)}"
    )


def interrupted(
    backup_set: volumes.BackupSet, store: Store, name: str, when: float | None
) -> NoBackupFound:
    """The newest set at ``when`` has neither manifest nor signatures: a backup interrupted
    before its end, which the next backup resumes."""
    return NoBackupFound(
        f"no complete backup of profile {name} at {store.label}"
        + (" at that time" if when else "")
        + f": the {backup_set.label} there was interrupted before its end (its manifest is "
        f"not there); run {suggest.command('backup', name)}, which resumes "
        "it, and drill again."
    )


def manifest_lost(backup_set: volumes.BackupSet, store: Store, profile: Profile) -> CfbackupError:
    """The newest set at --time has volumes and signatures but no manifest: it was lost (the
    damage ``verify`` reports), and no complete backup precedes it. Exit 8: what a drill was
    asked to find."""
    from cfbackup.duplicity.failures import damaged

    error = damaged(
        f"the {backup_set.label} has {len(backup_set.volumes)} volume(s) and its signatures but "
        f"no manifest at {store.label} (its manifest was lost; "
        f"{suggest.command('verify', profile.name)} checks it), and no complete backup "
        "precedes it for the drill",
        profile,
    )
    error.exit_code = ExitCode.VERIFY_DIFFERENCES
    return error


def no_room(
    folder: Path, volumes_needed: int, wanted: int, free: int, name: str, same: Sequence[str]
) -> RunRefused:
    """Too little free space for the volumes and the largest restore: the fix names the
    smallest drill, of the same backup (``same``)."""
    return RunRefused(
        f"the drill needs about {human_bytes(wanted)} of free space under {folder} for "
        f"{volumes_needed} volume(s) and the restored files, and {human_bytes(free)} is free: "
        "free some space there, or drill a smaller sample, down to one file: "
        f"{suggest.command('drill', name, '--sample', '1', *same)}."
    )


def not_restorable_here(path: str, reason: str) -> tuple[str, CfbackupError]:
    """duplicity could not write ``path`` here and went on (a device file without
    CAP_MKNOD): this machine's limit, not the backup's damage. The file's reason (not
    checked), and the drill's error (exit 9, as a restore's)."""
    return (
        f"not checked: duplicity could not restore it here ({reason})",
        CfbackupError(
            f"duplicity could not restore {printable_name(path)} here ({printable_name(reason)})",
            exit_code=ExitCode.PARTIAL,
        ),
    )
