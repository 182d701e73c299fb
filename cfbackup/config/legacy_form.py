"""Which of the old scripts a legacy file was written for, and the defaults that leaves in force.

dt-cf-backup.sh set defaults above the line that sourced its config; zertrin's
duplicity-backup.sh set none, and read variables dt-cf-backup.sh never did, which is how its
files are told apart. The mapping (``legacy_map.py``), ``config migrate``'s notes and
docs/legacy.md all read the answer from here.
"""

from __future__ import annotations

import shlex
from typing import Any

# What dt-cf-backup.sh used when a variable was omitted: it set these above the line that
# sourced ~/.dt-cf-backup.conf. zertrin's duplicity-backup.sh set none of them: without
# CLEAN_UP_TYPE and CLEAN_UP_VARIABLE it removed nothing, without STATIC_OPTIONS it forced no
# full backup.
OLD_DEFAULTS: dict[str, str | list[str]] = {
    "STATIC_OPTIONS": "--full-if-older-than 14D",
    "CLEAN_UP_TYPE": "remove-all-but-n-full",
    "CLEAN_UP_VARIABLE": "2",
    "EXCLIST": [
        "/home/*/Trash",
        "/home/*/Projects/Completed",
        "/**.DS_Store",
        "/**Icon?",
        "/**.AppleDouble",
    ],
}
# Its VERBOSITY="-v3" is not one of them: it set what the script's output (its cron mail)
# showed, and in cfbackup the verbosity only trims the run log, where duplicity's notices (a
# resumed backup's "Restarting after volume N") are worth keeping.
# Variables only zertrin's duplicity-backup.sh read: a file setting one is in its form.
# (dt-cf-backup.sh and dt-s3-backup.sh read GPG_KEY, LOG_FILE_OWNER and EMAIL_* too.)
ZERTRIN_ONLY = (
    "ENCRYPTION",
    "GPG_ENC_KEY",
    "GPG_SIGN_KEY",
    "MAIL",
    "INCEXCFILE",
    "EXDEVICEFILES",
    "EMAIL_FAILURE_ONLY",
    "REMOVE_OLDER_THAN",
    "REMOVE_INCREMENTALS_OLDER_THAN",
    "REMOVE_LOGS_OLDER_THAN",
    "HIDE_KEY_ID",
    "SECRET_KEYRING",
)


def zertrin_form(given: dict[str, Any]) -> list[str]:
    """The variables (if any) that mark a file of zertrin's duplicity-backup.sh."""
    return [name for name in ZERTRIN_ONLY if name in given]


def old_defaults(given: dict[str, Any]) -> dict[str, str | list[str]]:
    """The dt-cf-backup.sh defaults a file in its form leaves in force (none in the zertrin
    form, whose script had none)."""
    if zertrin_form(given):
        return {}
    return {name: value for name, value in OLD_DEFAULTS.items() if name not in given}


def default_notes(variables: dict[str, Any]) -> list[str]:
    """For ``config migrate``: which of the old script's default rules this file got."""
    zertrin = zertrin_form(variables)
    if zertrin:
        return [
            f"read as a file of zertrin's duplicity-backup.sh (it sets {', '.join(zertrin)}), "
            "whose script set no defaults: dt-cf-backup.sh's default retention and "
            "--full-if-older-than were not applied"
        ]
    applied = old_defaults(variables)
    if not applied:
        return []
    shown = ", ".join(f"{name}={as_bash(value)}" for name, value in applied.items())
    return [
        f"dt-cf-backup.sh's defaults were applied for what the file leaves out ({shown}; "
        "no variable only duplicity-backup.sh read is set, so it is read as dt-cf-backup.sh's "
        "config): they are in the migrated config"
    ]


def as_bash(value: str | list[str]) -> str:
    """A default as the script's top wrote it."""
    if isinstance(value, list):
        return "( " + " ".join(shlex.quote(item) for item in value) + " )"
    return shlex.quote(value)
