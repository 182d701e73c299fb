"""What each variable of a legacy file is to cfbackup: where it goes (:data:`MAPPING`,
rendered into ``docs/legacy.md``), why it is not carried (:data:`NOT_CARRIED`), which are
secrets, where a file left one empty (:func:`left_empty`), and the old command line's words
and options; ``legacy_map.py`` does the mapping."""

from __future__ import annotations

import re
from pathlib import Path

PROFILE_NAME = "dt-cf-backup"
RACKSPACE_AUTH_URL = "https://auth.api.rackspacecloud.com/v1.0"
SAMPLE_KEY = "foobar_gpg_key"  # the placeholder in the old samples
SENDMAIL = "/usr/sbin/sendmail"

# native key -> where a legacy file gives its value: a problem with the value names both
ORIGINS = {
    "target": "DEST",
    "retention.remove_older_than": "REMOVE_OLDER_THAN, or CLEAN_UP_VARIABLE with "
    "CLEAN_UP_TYPE=remove-older-than",
    "full_if_older_than": "--full-if-older-than in STATIC_OPTIONS",
}


# native key -> where a legacy file gives its keys, in the order legacy_map reads them
KEY_ORIGINS = {
    "encryption.encrypt_keys": ("GPG_KEY", "GPG_ENC_KEY", "--encrypt-key"),
    "encryption.sign_key": ("GPG_KEY", "GPG_SIGN_KEY", "--sign-key"),
}
ORIGINS.update(
    {key: f"{a}, {b} or {c} in STATIC_OPTIONS" for key, (a, b, c) in KEY_ORIGINS.items()}
)


def key_origin(path: Path | None, key: str) -> str:
    """Where the legacy file at ``path`` gives ``key`` (``encryption.encrypt_keys`` or
    ``encryption.sign_key``), as a message names it: the variable(s) it assigns
    (``GPG_KEY``), or the option in its STATIC_OPTIONS; ``GPG_KEY`` when it cannot tell."""
    *variables, option = KEY_ORIGINS[key]
    text = _text(path) if path is not None else ""
    found = [name for name in variables if _last_assignment(text, name)]
    static = _last_assignment(text, "STATIC_OPTIONS")
    if static and option in static[1]:
        found.append(f"{option} in STATIC_OPTIONS")
    return " and ".join(found) or variables[0]


# native key -> the variable that alone gives it its value: a problem with that key, raised
# once the file was read (``path``), is the variable's, left empty (a failed $(...))
SET_BY = {"encryption.passphrase": "PASSPHRASE"}


def with_origin(problem: str, path: Path | None = None) -> str:
    """A config problem with the legacy variable it comes from, where the key has one
    (``profiles.dt-cf-backup.retention.remove_older_than (REMOVE_OLDER_THAN, ...): ...``);
    with the file's ``path``, a value it needs and left empty is said as the file's
    (``FILE: PASSPHRASE is empty (the command on line 4 failed ...): ...``)."""
    for key, variable in SET_BY.items():
        if path is not None and problem.startswith(f"profiles.{PROFILE_NAME}.{key}: "):
            return left_empty(path, variable)
    for key, origin in ORIGINS.items():
        head = f"profiles.{PROFILE_NAME}.{key}: "
        if problem.startswith(head):
            return f"{head[:-2]} (the file's {origin}): {problem[len(head) :]}"
    return problem


# variable -> the fix when a file does not set it at all (left_empty); default: set it
NOT_SET_FIX = {"PASSPHRASE": "set it in the file (or GPG_KEY, to encrypt to keys)"}


def _text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _last_assignment(text: str, name: str) -> tuple[int, str] | None:
    """The line number and text of the last line of ``text`` that starts by assigning
    ``name`` (bash's lines: only a newline ends one)."""
    assigns = re.compile(rf"^\s*(?:{_DECLARE})?{name}\+?=")
    found = None
    for number, line in enumerate(text.split("\n"), 1):
        if assigns.match(line):
            found = number, line
    return found


def left_empty(path: Path, name: str, *, needed_for: str = "", not_set: str = "") -> str:
    """Why the file at ``path`` left variable ``name`` empty, and the fix: the line that sets
    it, and whether a command there gave the value. Never the value, nor what the command
    printed (a secret, as often as not). The file is read as text, not run: a line said to
    set it for sure is the only one to, unconditionally; otherwise the lines are named for
    the user to check, without saying which ran. ``needed_for`` says what needs the value
    (``the recovery kit is encrypted with it``); ``not_set`` is the fix when no line sets it."""
    anywhere = re.compile(rf"(?:^|[\s;&|({{\"'`])(?:{_DECLARE})?{name}\+?=")
    plain = re.compile(rf"^\s*(?:{_DECLARE})?{name}\+?=")
    head = f"{path}: {needed_for}, and" if needed_for else f"{path}:"
    found = [
        (number, line)
        for number, line in enumerate(_text(path).split("\n"), 1)  # bash's lines: \f is no line end
        if not line.lstrip().startswith("#") and anywhere.search(line)
    ]
    if not found:
        return (
            f"{head} {name} is not set: {not_set or NOT_SET_FIX.get(name, 'set it in the file')}."
        )
    (number, line), computed = found[-1], "$(" in found[-1][1] or "`" in found[-1][1]
    if len(found) > 1 or not plain.match(line) or _CONDITIONAL.search(line.split(" #")[0]):
        lines = ", ".join(str(n) for n, _ in found[:10])
        return (
            f"{head} {name} is empty or not set, and line(s) {lines} set it under a condition "
            "or more than once: check which one ran and what it is built from (run a command "
            "there by hand to see why it failed)."
        )
    if computed:
        return (
            f"{head} {name} is empty (the command on line {number} failed or printed "
            "nothing): run that command by hand to see why, and fix it."
        )
    if "$" in line.split("=", 1)[1]:  # PASSPHRASE="$PW": empty where PW is set, not here
        return (
            f"{head} {name} is empty where line {number} sets it: check what it is built from "
            "(the variables it uses, and the lines that set them)."
        )
    return f"{head} {name} is empty (line {number}): give it a value in the file."


def swift_secret(path: Path) -> str:
    """The variable that gives the Swift password in the file at ``path``, as ``legacy_map``
    reads it: CLOUDFILES_APIKEY with a cf+http(s):// DEST, SWIFT_PASSWORD with a swift://
    one; with a DEST the line does not show (``DEST=$X``), the one the file sets."""
    text = _text(path)
    dest = _last_assignment(text, "DEST")
    value = dest[1].split("=", 1)[1].lstrip("\"' ") if dest else ""
    if value.startswith("cf+"):
        return "CLOUDFILES_APIKEY"
    if value.startswith("swift:"):
        return "SWIFT_PASSWORD"
    assigned = [n for n in ("SWIFT_PASSWORD", "CLOUDFILES_APIKEY") if _last_assignment(text, n)]
    return assigned[0] if len(assigned) == 1 else "SWIFT_PASSWORD"


def swift_secret_left_empty(path: Path) -> str:
    """:func:`left_empty` for the file's Swift password variable (:func:`swift_secret`)."""
    return left_empty(path, swift_secret(path))


_DECLARE = r"(?:export|declare|typeset|readonly|local)(?:\s+-\w+)*\s+"
# a line that may not run its assignment: `[ -r f ] && PASSPHRASE=...`, `if ...; then ...`
_CONDITIONAL = re.compile(r"&&|\|\||\b(?:if|then|else|elif|case|while|until|for)\b")


# variable -> (where it goes, how); rendered into docs/legacy.md.
MAPPING: dict[str, tuple[str, str]] = {
    "ROOT": ("source", "a trailing slash is dropped (duplicity treats both alike)"),
    "DEST": (
        "target",
        "cf+http://C becomes swift://C with swift.auth_version 1; a relative file://DIR is kept "
        "(under the folder cfbackup runs in, the home from cron), with a warning naming it; "
        "config migrate writes it absolute, under the home, with a warning",
    ),
    "INCLIST": ("include", "bash array; empty items are skipped, as duplicity-backup.sh did"),
    "EXCLIST": ("exclude", "bash array; excludes are applied before includes"),
    "EXDEVICEFILES": ("extra_options", "non-zero: --exclude-device-files"),
    "GPG_KEY": ("encryption.encrypt_keys, sign_key", "dt-*-backup.sh encrypted and signed"),
    "GPG_ENC_KEY": ("encryption.encrypt_keys", "used only with GPG_SIGN_KEY, as the script did"),
    "GPG_SIGN_KEY": ("encryption.sign_key", "used only with GPG_ENC_KEY, as the script did"),
    "PASSPHRASE": ("encryption.passphrase", "symmetric passphrase, or the signing key's"),
    "ENCRYPTION": ("encryption.mode", '"no" is mode none; otherwise the keys decide'),
    "GPG_OPTIONS": ("encryption.gpg_options", "passed to duplicity --gpg-options"),
    "STATIC_OPTIONS": (
        "several keys",
        "split like the shell did; --full-if-older-than, --volsize, --name, --tempdir, "
        "--archive-dir, --encrypt-key, --sign-key, --gpg-options, --no-encryption and "
        "--verbosity go to their keys, other duplicity options to extra_options (values bound "
        "with =); options duplicity 3 removed are dropped with a warning",
    ),
    "CLEAN_UP_TYPE": ("retention", "remove-older-than, remove-all-but-n-full, none, ..."),
    "CLEAN_UP_VARIABLE": ("retention", "the value CLEAN_UP_TYPE takes"),
    "REMOVE_OLDER_THAN": ("retention.remove_older_than", ""),
    "REMOVE_INCREMENTALS_OLDER_THAN": (
        "retention.keep_incrementals_of_full",
        "remove-all-inc-of-but-n-full N, after the other retention rules",
    ),
    "LOGDIR": ("log_dir", ""),
    "VERBOSITY": ("verbosity", "-v0 ... -v9, or a level name"),
    "TMPDIR": ("tempdir", ""),
    "CLOUDFILES_USERNAME": ("swift.username", "with a cf+http:// DEST"),
    "CLOUDFILES_APIKEY": ("swift.password", "with a cf+http:// DEST"),
    "CLOUDFILES_AUTHURL": ("swift.auth_url", f"default {RACKSPACE_AUTH_URL}"),
    "RACKSPACE_SERVICENET": (
        "swift.interface",
        'True: "internal" (Rackspace ServiceNet with v1 auth, the internal endpoint with v3)',
    ),
    "SWIFT_USERNAME": ("swift.username", "with a swift:// DEST"),
    "SWIFT_PASSWORD": ("swift.password", "with a swift:// DEST"),
    "SWIFT_AUTHURL": ("swift.auth_url", "with a swift:// DEST"),
    "SWIFT_AUTHVERSION": ("swift.auth_version", "2 (Keystone v2, gone) becomes 3"),
    "SWIFT_TENANTNAME": ("swift.project_name", ""),
    "SWIFT_PROJECT_NAME": ("swift.project_name", ""),
    "SWIFT_PROJECT_ID": ("swift.project_id", ""),
    "SWIFT_REGIONNAME": ("swift.region_name", ""),
    "SWIFT_USER_DOMAIN_NAME": ("swift.user_domain_name", ""),
    "SWIFT_USER_DOMAIN_ID": ("swift.user_domain_id", ""),
    "SWIFT_PROJECT_DOMAIN_NAME": ("swift.project_domain_name", ""),
    "SWIFT_PROJECT_DOMAIN_ID": ("swift.project_domain_id", ""),
    "SWIFT_ENDPOINT_TYPE": ("swift.interface", "internalURL is internal, and so on"),
    "EMAIL_TO": (
        "notify.email.to",
        "mailed through the local sendmail when there is one (else SMTP: see the warning)",
    ),
    "EMAIL_FROM": ("notify.email.from", ""),
    "EMAIL_SUBJECT": ("notify.email.subject_prefix", ""),
    "EMAIL_FAILURE_ONLY": ("notify.email.when", '"yes": failure, otherwise always'),
    "MAIL": ("notify.email.transport", "the mail command is replaced by sendmail -t"),
}
# Variables the old scripts read that have no equivalent: named in a warning, with why.
NOT_CARRIED = {
    "LOG_FILE": "cfbackup writes one log file per run under log_dir",
    "LOG_FILE_OWNER": "run logs are private to the user running cfbackup (mode 0600)",
    "REMOVE_LOGS_OLDER_THAN": "remove old run logs with find or logrotate",
    "HIDE_KEY_ID": "new volumes name their encryption key (restoring hidden ones still works)",
    "SECRET_KEYRING": "gpg 2 has no separate secret keyring: use encryption.gpg_home",
    "INCEXCFILE": "copy its + and - lines into include and exclude",
    "ECHO": "duplicity-backup.sh's test-run switch: while it is set, dt-cf-backup prints the "
    "duplicity commands and runs nothing; cfbackup itself runs them (remove ECHO to back up "
    "with dt-cf-backup; cfbackup --debug shows duplicity's output on errors)",
    "AWS_ACCESS_KEY_ID": "S3 is not supported by cfbackup",
    "AWS_SECRET_ACCESS_KEY": "S3 is not supported by cfbackup",
    "S3CMD_CONF_FILE": "S3 is not supported by cfbackup",
    "GS_ACCESS_KEY_ID": "Google Cloud Storage is not supported by cfbackup",
    "GS_SECRET_ACCESS_KEY": "Google Cloud Storage is not supported by cfbackup",
    "FTP_PASSWORD": "cfbackup gives duplicity Swift credentials only",
    "BACKEND_PASSWORD": "cfbackup gives duplicity Swift credentials only",
    "CLOUDFILES_REGION": "with v1 auth the storage URL is the account's default region's; for "
    "another region use Keystone v3 auth with swift.region_name",
    "GNUPGHOME": "export GNUPGHOME before cfbackup runs, or migrate (cfbackup config migrate) "
    "and set encryption.gpg_home",
}
VARIABLES = (*MAPPING, *NOT_CARRIED)
# masked from the moment the file is read (legacy.read_file), carried over or not
SECRET_VARIABLES = (
    "PASSPHRASE",
    "CLOUDFILES_APIKEY",
    "SWIFT_PASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "GS_SECRET_ACCESS_KEY",
    "FTP_PASSWORD",
    "BACKEND_PASSWORD",
)

VERBOSITY_LEVELS = {  # duplicity 3.2's numbers (log.py): 0 error, 2 warning, 3 notice, 5 info
    "0": "error",
    "1": "error",
    "2": "warning",
    "3": "notice",
    "4": "notice",
    "5": "info",
    "6": "info",
    "7": "info",
    "8": "debug",
    "9": "debug",
    "e": "error",
    "w": "warning",
    "n": "notice",
    "i": "info",
    "d": "debug",
}
# duplicity's command words: in STATIC_OPTIONS they took the command's place on the old
# command line (`--full-if-older-than 1D incremental`)
COMMAND_WORDS = (
    "full",
    "incremental",
    "incr",
    "inc",
    "backup",
    "verify",
    "restore",
    "list-current-files",
    "collection-status",
    "cleanup",
    "remove-older-than",
    "remove-all-but-n-full",
    "remove-all-inc-of-but-n-full",
)
S3_ONLY = ("--s3-use-new-style", "--s3-european-buckets", "--s3-use-multiprocessing")
REMOVED = {
    "--asynchronous-upload": "removed in duplicity 3 (cfbackup runs one upload at a time)",
    "--short-filenames": "removed in duplicity 3",
    "--old-filenames": "removed in duplicity 3",
    "--extra-clean": "removed in duplicity 3",
    "--gio": "removed in duplicity 3",
    "--exclude-filelist-stdin": "removed in duplicity 3",
    "--include-filelist-stdin": "removed in duplicity 3",
}
