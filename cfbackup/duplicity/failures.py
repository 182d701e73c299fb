"""What a failed duplicity command means: its error lines and output matched against known
failures (a damaged volume, a full disk, a quota, Keystone, a changed source host), each turned
into one cfbackup error with the cause and the fix; else a generic one with duplicity's last
error. ``run.py`` runs duplicity and calls :func:`classify_failure`."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence

from cfbackup import redact, suggest, swift
from cfbackup.config.model import Profile
from cfbackup.duplicity import machinelog
from cfbackup.duplicity.patches import interrupted_set
from cfbackup.duplicity.result import DuplicityResult
from cfbackup.duplicity.target import swift_target
from cfbackup.errors import (
    BackendError,
    BackupDamaged,
    CfbackupError,
    ConfigError,
    CryptoError,
    DuplicityFailed,
    LockHeld,
    NoBackupFound,
    NoSpaceLeft,
    PathNotInBackup,
    QuotaExceeded,
    RunRefused,
)

log = logging.getLogger("cfbackup.duplicity")


# Keystone failures as duplicity (its swiftclient and keystoneclient) or cfbackup's patch report
# them; classify_failure replaces the generic message with a diagnosis when it can make one.
_KEYSTONE = re.compile(
    r"\[cfbackup\] |Unauthorized\. Check (username|application credential)|"
    r"Authorization Failure|Endpoint for object-store not found|"
    r"Unable to establish connection to \S*/auth/tokens",
)
_UNAUTHORIZED = re.compile(r"\b401\b|Unauthorized")  # Swift refused a Keystone token
Make = Callable[[str, "Profile | None"], CfbackupError]  # (failure text, profile) -> error
_KEYSTONE_PATTERNS: tuple[tuple[re.Pattern, Make], ...] = (
    (  # the application-credential patch's sentence, without duplicity's trace-back suffix
        re.compile(r"\[cfbackup\] "),
        lambda text, profile: BackendError(
            re.search(r"\[cfbackup\] (.+?)\.?(?: \(for trace back[^\n]*)?$", text, re.M)[1] + "."
        ),
    ),
    (
        re.compile(r"Unable to establish connection to \S*/auth/tokens"),
        lambda text, profile: BackendError(
            "cannot reach Keystone (connection failed): check swift.auth_url and that Keystone is "
            "up and reachable from here."
        ),
    ),
    (
        re.compile(r"Endpoint for object-store not found"),
        lambda text, profile: BackendError(
            "the Keystone catalog has no object-store endpoint for the profile's region and "
            f"interface: check swift.region_name and swift.interface ({_cmd(profile, 'check')} "
            "lists the endpoints there are)."
        ),
    ),
    (
        re.compile(r"Unauthorized\. Check|Authorization Failure"),
        lambda text, profile: BackendError(
            "Keystone rejected the credentials (401): wrong password, or an unknown user, "
            f"domain or project, or no role on the project: {_cmd(profile, 'check')} tells which."
        ),
    ),
)

# duplicity refuses an incremental whose last manifest names another host or source folder
# (manifest.check_dirinfo, exit codes 3 and 42): a backup after a restore onto a new machine,
# or of the same data restored to another path. Its advice, --allow-source-mismatch, is on a
# later line; the fixes that work through cfbackup go in the one sentence.
_SOURCE_MISMATCH = re.compile(
    r"Backup source (host|directory) has changed\.\s*\n(?:\. )?Current \w+: ([^\n]*)\n"
    r"(?:\. )?Previous \w+: ([^\n]*)"
)


def _source_mismatch(text: str, profile: Profile | None) -> RunRefused:
    found = _SOURCE_MISMATCH.search(text)
    what, now, before = found[1], found[2].strip(), found[3].strip()
    where = (
        f"this machine is {now}, the last backup came from {before}"
        if what == "host"
        else f"the source is {now} now, the last backup read {before}"
    )
    # a --full is no fix when the backups at the target are another source's (another
    # machine's or config's profile writing there): retention after it would delete them
    return RunRefused(
        f"duplicity refused the incremental backup: the backup source {what} has changed "
        f"({where}); if the backups at the target are of another source (another machine or "
        "config backs up there), give this profile its own container or prefix, since a full "
        "backup there would let retention delete them; otherwise run "
        f"{_cmd(profile, 'backup', '--full')} to start a new chain, or, if it is "
        "the same data (restored onto a new machine or into another folder), add "
        'extra_options = ["--allow-source-mismatch"] to the profile, or --allow-source-mismatch '
        "to STATIC_OPTIONS in a legacy file."
    )


_CORRUPT = re.compile(r"hash mismatch for file:\s*(\S+)", re.I)  # the name is on the next line
_MISSING = re.compile(r"difftar volume (\d+) not found in backup", re.I)


def _cmd(profile: Profile | None, command: str, *more: str) -> str:
    """A cfbackup command naming the profile, as it runs (with the user's -c FILE)."""
    return suggest.command(command, profile.name if profile else "PROFILE", *more)


def cannot_decrypt(profile: Profile | None) -> CryptoError:
    """gpg could not decrypt the backups: the one sentence naming the profile's passphrase
    source (never the passphrase) and the check that tests it, so that ``list`` and
    ``verify`` on a new machine say what a restore says; a symmetric profile has no secret
    key to blame."""
    if profile is None:
        return CryptoError(
            "gpg could not decrypt: wrong passphrase or the secret key is missing from the keyring."
        )
    from cfbackup.volume_keys import passphrase_source

    check = _cmd(profile, "check", "--for-restore")
    encryption = profile["encryption"]
    at = f"gpg could not decrypt the backups at {profile.target}"
    if encryption["mode"] == "symmetric":
        return CryptoError(
            f"{at} with the passphrase of profile {profile.name}: check "
            f"{passphrase_source(profile)}; {check} tests it."
        )
    if not any(encryption.get(f"passphrase{how}") for how in ("", "_env", "_file", "_command")):
        # gpg fails alike when no secret key is there and when it is there but protected by a
        # passphrase cfbackup was not given (gpgkeys.check_keys passes then): both, each fix
        return CryptoError(
            f"{at} with the secret key of profile {profile.name}: {_no_key(profile)}"
        )
    return CryptoError(
        f"{at} with the secret key of profile {profile.name}: check {passphrase_source(profile)}"
        f", which must unlock it, and that the key is in its keyring; {check} tests both."
    )


def _no_key(profile: Profile) -> str:
    """The two causes of a public-key profile's failed decryption when it has no passphrase
    setting, with their fixes, in the profile's own names (a legacy file's GPG_KEY and
    PASSPHRASE: it has no encryption.* keys)."""
    check = _cmd(profile, "check", "--for-restore")
    where = f" in {os.path.abspath(profile.source_file)}" if profile.source_file else ""
    if profile.legacy:
        from cfbackup.gpgkeys import key_setting

        return (
            f"either the secret key of {key_setting(profile, 'encrypt_keys')} is not in its "
            "keyring (import it), or the "
            "key is protected by a passphrase cfbackup was not given (set PASSPHRASE"
            f"{where} to it); {check} tests both."
        )
    return (
        f"either no secret key of encryption.encrypt_keys{where} is in its keyring (import "
        "one), or the key is protected by a passphrase cfbackup was not given (set "
        f"encryption.passphrase_env, passphrase_file or passphrase_command{where} to read "
        f"it); {check} tests both."
    )


def target_setting(profile: Profile) -> str:
    """Where the profile's target is set, as a message names it (a legacy file's DEST)."""
    key = "DEST" if profile.legacy else f"profiles.{profile.name}.target"
    return f"{key} in {os.path.abspath(profile.source_file)}" if profile.source_file else key


def no_backup_message(profile: Profile, why: str = "") -> str:
    """The one sentence for a target with no backup: the target, why (``why``), the fix."""
    because = f" ({why})" if why else ""
    return (
        f"no backup at {profile.target}{because}: check {target_setting(profile)}, or run "
        f"{_cmd(profile, 'backup')} to make the first backup."
    )


def _no_backup(profile: Profile | None) -> str:
    if profile is None:
        return "no backup found at the target: run a backup first or check the profile's target."
    return no_backup_message(profile)


def damaged(what: str, profile: Profile | None) -> BackupDamaged:
    """The error for a backup whose remote objects changed: ``what`` names the object."""
    return BackupDamaged(
        f"{what}: the backup at the target is damaged (changed behind cfbackup's back): restore "
        "an earlier state with --time if an older chain exists, and run "
        f"{_cmd(profile, 'backup', '--full')} to start a sound chain."
    )


def _no_space(text: str) -> CfbackupError:
    found = re.search(r"Temp space has ([\d,]+) available, backup needs approx ([\d,]+)", text)
    numbers = (
        f": {found[1]} bytes free in the temp dir, duplicity needs {found[2]}" if found else ""
    )
    error = NoSpaceLeft(
        f"no space left on the local disk (archive dir or temp dir{numbers}): free some space or "
        "set tempdir/archive_dir elsewhere, then run again (a backup resumes where it stopped)."
    )
    error.temp_check = bool(found)
    return error


# the interrupted-set patch's error (patches/interrupted_set.py): "[cfbackup-interrupted-set]
# the interrupted backup set T could not be deleted (<the last answer or error>)"
_INTERRUPTED_SET = re.compile(
    re.escape(interrupted_set.MARK)
    + r" the interrupted backup set .*? could not be deleted \(([^\n]*)\)"
)


def _interrupted_set_kept(text: str, profile: Profile | None) -> BackendError:
    answer = redact.redact_output(_INTERRUPTED_SET.search(text)[1])
    target = swift_target(profile.target) if profile else None
    place = f"container {target.container}" if target else "the target"
    return BackendError(
        f"an incomplete backup set at the target (an interrupted backup's) could not be deleted "
        f"({answer}), which duplicity must do before it backs up again: nothing was backed up "
        f"this time and no backup was lost; let the backup's user delete objects in {place} (a "
        f"Swift ACL, an object lock or a middleware may refuse deletes; a local target may be "
        f"read-only or not writable), or wait until it answers, then run "
        f"{_cmd(profile, 'cleanup')} or the backup again."
    )


_PATTERNS: tuple[tuple[re.Pattern, Make], ...] = (
    # before the 403 pattern: Swift's answer names it
    (_INTERRUPTED_SET, _interrupted_set_kept),
    (_SOURCE_MISMATCH, _source_mismatch),
    (
        # a set whose manifest is gone while newer sets follow it: duplicity asserts on it
        re.compile(r"No remote manifest name"),
        lambda text, profile: damaged(
            "a backup set that newer backups follow has no manifest at the target (lost, not an "
            f"interrupted backup; {_cmd(profile, 'verify', '--read-data')} names it)",
            profile,
        ),
    ),
    (
        _CORRUPT,
        lambda text, profile: damaged(
            f"remote volume {_CORRUPT.search(text)[1]} is corrupt (its hash does not match the "
            "manifest)",
            profile,
        ),
    ),
    (
        _MISSING,
        lambda text, profile: damaged(
            f"remote volume vol{_MISSING.search(text)[1]}.difftar of the backup set is missing "
            "at the target",
            profile,
        ),
    ),
    (
        # before the gpg and network patterns: a full disk also makes gpg or a download fail
        re.compile(r"not enough free space|No space left on device|Temp space has", re.I),
        lambda text, profile: _no_space(text),
    ),
    (
        re.compile(r"Another duplicity instance is already running|lockfile .* is locked", re.I),
        lambda text, profile: LockHeld(
            "another duplicity process is using this profile's archive dir; wait for it or, if it "
            "is dead, run the command again (a stale duplicity lock is released with its process)."
        ),
    ),
    (
        # "Upload exceeds quota (HTTP 413): scope=...; <numbers>" comes from the sized-uploads
        # patch (patches/sized_uploads.py); a bare "413" would also match sizes and ids.
        re.compile(r"Upload exceeds (policy )?quota|Request Entity Too Large|\bHTTP 413\b", re.I),
        lambda text, profile: (
            lambda found: QuotaExceeded(
                f"{'account' if found and found[1] == 'account' else 'container'} quota "
                "exceeded: Swift refused an upload (413)"
                + (f": {found[2].strip().rstrip('.')}" if found else "")
                + f"; raise the quota ({_cmd(profile, 'quota', 'set')} --bytes N, N the new "
                f"limit) or prune old backups ({_cmd(profile, 'prune')}), then run the backup "
                "again (the chain resumes)."
            )
        )(re.search(r"HTTP 413\): scope=(container|account); ([^\n]*)", text)),
    ),
    (
        re.compile(r"401 Unauthorized|Unauthorized|Authorization Failure|\b401\b", re.I),
        lambda text, profile: BackendError(
            "Swift rejected the credentials (401): check swift.username and "
            f"{swift.password_source(profile) if profile else 'the password'}."
        ),
    ),
    (
        re.compile(r"403 Forbidden|\b403\b", re.I),
        lambda text, profile: BackendError(
            "Swift refused access (403): the user lacks a role Swift accepts for this container "
            "(with Keystone: one of the proxy's operator_roles on the project, often member or "
            "swiftoperator): ask the cloud's admin to grant one."
        ),
    ),
    (
        re.compile(
            r"Connection refused|Max retries exceeded|Name or service not known|timed out|"
            r"Failed to establish a new connection|Temporary failure in name resolution",
            re.I,
        ),
        lambda text, profile: swift.unreachable(
            profile["swift"].get("auth_url") if profile else None, text, failed_at=False
        ),
    ),
    (
        re.compile(
            r"Bad session key|decryption failed|bad passphrase|No secret key|"
            r"GPG error|gpg: decryption failed|GPGError",
            re.I,
        ),
        lambda text, profile: cannot_decrypt(profile),
    ),
    (
        re.compile(
            r"No backup chains found|No signature chains found|No such file or directory: "
            r"'.*manifest",
            re.I,
        ),
        lambda text, profile: NoBackupFound(_no_backup(profile)),
    ),
    (
        re.compile(r"not found in archive|no files? to restore|File .* not found", re.I),
        lambda text, profile: PathNotInBackup(
            f"the path to restore is not in that backup: check it with {_cmd(profile, 'list')}."
        ),
    ),
    (
        re.compile(r"file_prefix_error|is not under|Fatal Error: The file specification", re.I),
        lambda text, profile: ConfigError(
            "an include or exclude path is not under the profile's source: fix include/exclude."
        ),
    ),
)


def classify_failure(
    result: DuplicityResult, env: Mapping[str, str] | None = None
) -> CfbackupError:
    """One clear error for a failed duplicity run, with its exit code and output tail.

    ``env`` (default: the result's), the run's environment, lets a Keystone failure be
    diagnosed precisely: the same credentials authenticate once more in cfbackup
    (keystone.diagnose), only after a failure.
    """
    env = env if env is not None else result.env
    error_records = [r for r in result.records if r.level == "ERROR"]
    errors = [r.message for r in error_records]
    text = "\n".join(errors + list(result.output_tail))
    detail = "\n".join(result.output_tail[-15:])
    error = None
    if _KEYSTONE.search(text) or _UNAUTHORIZED.search(text):
        error = _keystone_diagnosis(env)
    for pattern, make in (*_KEYSTONE_PATTERNS, *_PATTERNS):
        if error is None and pattern.search(text):
            error = make(text, result.profile)
    if error is not None:
        error.detail = detail
        error.message = f"{error.message.rstrip('.')} (duplicity exit code {result.returncode})."
        return error
    said = _summary(_cause(error_records)) if errors else ""
    summary = said or (result.output_tail[-1].strip() if result.output_tail else "no output")
    return DuplicityFailed(
        f"duplicity {result.command} failed with exit code {result.returncode}: {summary}",
        returncode=result.returncode,
        detail=detail,
    )


SUMMARY_CHARS = 300


def _summary(message: str) -> str:
    """duplicity's error as one line: a traceback (what duplicity logs for an error it did not
    expect) by its last line, the exception; any other message with its lines joined (its
    first line alone, "Fatal Error: ...", often leaves out what the error is about)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].startswith("Traceback ("):
        return lines[-1][:SUMMARY_CHARS]
    joined = " ".join(lines)
    return joined if len(joined) <= SUMMARY_CHARS else joined[: SUMMARY_CHARS - 3] + "..."


def _cause(errors: Sequence[machinelog.Record]) -> str:
    """The last of duplicity's ERROR records (``errors``, not empty); for a failed upload in
    its upload pool, the upload process's own (duplicity's is "Exception ... in background
    pool Pool1: . For trace back set loglevel to DEBUG ..."), which names what went wrong."""
    if "in background pool" in errors[-1].message:
        errors = [r for r in errors if r.worker] or errors
    return errors[-1].message


def _keystone_diagnosis(env: Mapping[str, str] | None) -> CfbackupError | None:
    """What is wrong with the Keystone credentials in ``env``, or None (a passing failure, or
    not Keystone at all)."""
    from cfbackup import keystone
    from cfbackup.duplicity.environment import credentials_from_environment

    creds = credentials_from_environment(env or {})
    if creds is None:
        return None
    try:
        return keystone.diagnose(creds)
    except Exception as error:  # noqa: BLE001 - a diagnosis must never hide the failure
        log.debug("Keystone diagnosis failed: %s", redact.redact_output(str(error)))
        return None
