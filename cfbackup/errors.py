"""One error type with a user message and an exit code, converted once at the CLI boundary.

The exit codes are a published contract (docs/exit-codes.md, kept honest by a test): scripts
compare them, so a code is never reused for another meaning.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    INTERNAL = 1  # a bug in cfbackup: the only case that may show a traceback (with --debug)
    USAGE = 2  # bad command line (argparse uses 2 as well)
    CONFIG = 3  # the config file is missing, unreadable, invalid or unsafe
    LOCKED = 4  # another run holds the profile's lock, the firewall lock-down or the folder
    REFUSED = 5  # a precondition or a plugin guard vetoed the run before anything changed
    QUOTA = 6  # a Swift quota would be, or was, exceeded
    DUPLICITY = 7  # duplicity failed; its own exit code is in the message
    VERIFY_DIFFERENCES = 8  # verify/drill: differences, damaged volumes, files not restorable
    PARTIAL = 9  # completed, not all of it: files unread, a root missing, a drill checked none
    BACKEND = 10  # Swift, a cloud API, a DNS server or a remote host unreachable or refusing
    CRYPTO = 11  # missing or unusable GPG key, wrong passphrase
    RESTORE_TARGET = 12  # restore target not empty (without --force), unusable, or in the way
    RETENTION_FAILED = 13  # the backup is at the target; retention (or prune, cleanup) failed
    INTERRUPTED = 130  # SIGINT/SIGTERM: as a shell reports a signal-killed command


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.INTERNAL: "internal error (a bug: please report it with the log file)",
    ExitCode.USAGE: "bad command line",
    ExitCode.CONFIG: "configuration error (missing, invalid or unsafe config file)",
    ExitCode.LOCKED: (
        "another run holds the profile's lock (or, for a restore, the firewall lock-down, or "
        "another restore's hold on its target folder)"
    ),
    ExitCode.REFUSED: "a precondition or plugin guard refused to start the run",
    ExitCode.QUOTA: "a Swift container or account quota would be or was exceeded",
    ExitCode.DUPLICITY: "duplicity failed (its exit code is in the message)",
    ExitCode.VERIFY_DIFFERENCES: "verify or a drill found differences or damaged volumes",
    ExitCode.PARTIAL: (
        "completed, but some files could not be read or an include root was missing (or a "
        "drill checked none, or a restore left out an include root with no backup at --time, "
        "or could not restore some entries)"
    ),
    ExitCode.BACKEND: "Swift, a cloud API, a DNS server or a remote host unreachable or refusing",
    ExitCode.CRYPTO: "GPG key missing or unusable, or wrong passphrase",
    ExitCode.RESTORE_TARGET: (
        "restore target is not empty (use --force), not writable, or in the way of the restore "
        "(nothing changed), or a --force merge stopped part-way (the rest kept)"
    ),
    ExitCode.RETENTION_FAILED: (
        "the backup completed, but removing old backups (retention) failed after it; or "
        "prune or cleanup left at the target what it removes (the target refused deletes)"
    ),
    ExitCode.INTERRUPTED: "interrupted by SIGINT or SIGTERM",
}


class CfbackupError(Exception):
    """A failure the user can act on: one sentence naming the cause and the fix."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        exit_code: ExitCode | None = None,
        detail: str = "",
        stats: dict | None = None,
        warnings: list[str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.detail = detail  # e.g. the tail of duplicity's output, already redacted
        self.stats = stats or {}  # what a failed run still found out, for the run history
        # what else went wrong in the run, already logged: the history keeps it beside the
        # failure (``RunResult.warnings``), e.g. a chain's deletes Swift could not confirm
        self.warnings = list(warnings or ())
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(CfbackupError):
    exit_code = ExitCode.CONFIG


class LockHeld(CfbackupError):
    exit_code = ExitCode.LOCKED


class ScheduleBusy(LockHeld):
    """A scheduled run skipped because the previous run of its schedule still runs or waits
    (``$CFBACKUP_SCHEDULED``, a cron line firing again): nothing was run, so, as with
    :class:`LockWaitStopped`, no history row, no ``on_error`` hook, no notification."""


class RunRefused(CfbackupError):
    exit_code = ExitCode.REFUSED


class NoBackupFound(RunRefused):
    """The target holds no backup (yet) for what was asked."""


class PathNotInBackup(RunRefused):
    """duplicity found no ``--path-to-restore`` in the backup it restored from: the restore
    names the path (``actions/restore.py``)."""


class QuotaExceeded(CfbackupError):
    exit_code = ExitCode.QUOTA


class DuplicityFailed(CfbackupError):
    exit_code = ExitCode.DUPLICITY

    def __init__(self, message: str, *, returncode: int, detail: str = "", **kwargs):
        super().__init__(message, detail=detail, **kwargs)
        self.returncode = returncode


class VerifyDifferences(CfbackupError):
    exit_code = ExitCode.VERIFY_DIFFERENCES


class BackupDamaged(CfbackupError):
    """A remote volume is corrupt or missing. A command that needed it failed (7); for
    ``verify`` finding it is the answer it was asked for (8, as read-data and drills)."""

    exit_code = ExitCode.DUPLICITY


class PartialBackup(CfbackupError):
    exit_code = ExitCode.PARTIAL


class RetentionFailed(CfbackupError):
    """The backup is at the target (post hooks fired, history counts it); its retention failed.
    Also ``prune`` and ``cleanup`` whose deletes the target refused (``retention.py``)."""

    exit_code = ExitCode.RETENTION_FAILED


class BackendError(CfbackupError):
    exit_code = ExitCode.BACKEND


class CryptoError(CfbackupError):
    exit_code = ExitCode.CRYPTO


class RestoreTargetError(CfbackupError):
    exit_code = ExitCode.RESTORE_TARGET


class NoSpaceLeft(CfbackupError):
    """duplicity stopped on a full local disk (``temp_check``: its own check of the temp dir's
    free space, before it wrote anything)."""

    exit_code = ExitCode.DUPLICITY
    temp_check = False


class Interrupted(CfbackupError):
    exit_code = ExitCode.INTERRUPTED


class LockWaitStopped(Interrupted):
    """Stopped (Ctrl-C, SIGTERM) while waiting for the profile's lock: nothing was run, so no
    ``on_error`` hook or failure notification fires."""
