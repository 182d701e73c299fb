"""What duplicity's local archive dir (its metadata cache) tells about the backup chains.

A backup starts by synchronising that cache with the target, so right after a backup it names
every full backup at the target without a request. The retention run after a backup is a
second duplicity process (0.7-1 s: start-up and a listing, bench/compare.py); with no more full
chains than the rules keep it can remove nothing, and is skipped. Counting errs high (a
partial or stray full counts too), so an unsure count runs retention, never skips it.

duplicity puts ``--file-prefix`` (and ``--file-prefix-manifest``, ``-signature``, ``-archive``)
before the names it writes, in the archive dir too: the names are read with the profile's.
"""

from __future__ import annotations

import os
import re

from cfbackup.config.model import Profile
from cfbackup.duplicity import names


def full_pattern(profile: Profile) -> re.Pattern:
    """The names of a full backup's files with the file prefixes the profile's
    ``extra_options`` give duplicity (``names.Naming.full_pattern``)."""
    return names.of(profile).full_pattern()


def full_backups(profile: Profile) -> set[str] | None:
    """The times of the full backups in the local archive; None when it cannot be read."""
    folder = profile.archive_dir / profile.backup_name
    try:
        found = os.listdir(folder)
    except OSError:
        return None
    pattern = full_pattern(profile)
    return {m.group(1) for m in map(pattern.match, found) if m}


def rule_can_remove(rule: tuple[str, str], fulls: set[str] | None) -> bool:
    """Whether a retention rule may remove anything, given the full backups there are.

    duplicity never removes the newest chain: ``remove-older-than`` needs a second chain,
    ``remove-all-but-n-full N`` and ``remove-all-inc-of-but-n-full N`` more than N.
    """
    if fulls is None:
        return True
    command, value = rule
    if command in ("remove-all-but-n-full", "remove-all-inc-of-but-n-full"):
        try:
            return len(fulls) > int(value)
        except ValueError:
            return True
    if command == "remove-older-than":
        return len(fulls) > 1
    return True
