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
from cfbackup.duplicity import options

# duplicity-full.20261126T054842Z.manifest, duplicity-full-signatures.<T>.sigtar.gz, and their
# .part / .gpg variants
FULL = re.compile(r"^duplicity-full(?:-signatures)?\.(\d{8}T\d{6}Z)\.")


def full_pattern(profile: Profile) -> re.Pattern:
    """:data:`FULL` with the file prefixes the profile's ``extra_options`` give duplicity
    (``file_naming.prepare_regex``: ``--file-prefix`` first, then the one of the file's kind)."""
    words = list(profile["extra_options"])

    def prefix(name: str) -> str:
        return re.escape(options.last_value(words, name) or "")

    common = prefix("--file-prefix")
    kinds = {
        prefix("--file-prefix-archive") + "duplicity-full",
        prefix("--file-prefix-manifest") + "duplicity-full",
        prefix("--file-prefix-signature") + "duplicity-full-signatures",
    }
    if kinds == {"duplicity-full", "duplicity-full-signatures"} and not common:
        return FULL
    return re.compile(f"^{common}(?:{'|'.join(sorted(kinds))})\\.(\\d{{8}}T\\d{{6}}Z)\\.")


def full_backups(profile: Profile) -> set[str] | None:
    """The times of the full backups in the local archive; None when it cannot be read."""
    folder = profile.archive_dir / profile.backup_name
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    pattern = full_pattern(profile)
    return {m.group(1) for m in map(pattern.match, names) if m}


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
