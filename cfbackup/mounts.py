"""Folders a backup reads that were mount points at the last backup and are empty now: a disk
that is not mounted (a failed fsck at boot, an NFS server down, a detached volume).

duplicity backs such a folder up as it finds it, empty, with exit 0 and no warning: every file
on the disk reads as deleted, and retention would in time remove the only backups that hold
them. An unmounted disk leaves its mount point behind as an empty folder, so "missing" (what
``chains.missing_root`` catches) does not cover it. Each backup records which of the folders it
reads were mount points (the run history's ``mount_points``); the next one compares.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

STAT = "mount_points"  # the run history's statistic: the folders that were mount points


def mount_points(paths: Iterable[str]) -> list[str]:
    """Those of ``paths`` that are mount points now."""
    return [path for path in dict.fromkeys(paths) if _is_mount(path)]


def unmounted(previous: Iterable[str], paths: Iterable[str]) -> dict[str, str]:
    """Of ``paths``, those that were mount points (``previous``) and are now an empty folder
    (or gone) on the disk below: path -> the sentence a run reports."""
    watched = set(paths)
    return {
        path: (
            f"{path} was a mount point at the last backup and is now an empty folder (its disk "
            "is not mounted): mount it and run the backup again; if it is meant to be empty "
            "now, remove it from the profile's include"
        )
        for path in previous
        if path in watched and not _is_mount(path) and _empty(path)
    }


def _is_mount(path: str) -> bool:
    try:
        return os.path.ismount(path)
    except OSError:
        return False


def _empty(path: str) -> bool:
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except FileNotFoundError:
        return True
    except OSError:  # not a folder, or not readable: not this check's to judge
        return False
