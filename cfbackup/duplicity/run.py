"""Run one duplicity command, read its machine log, and turn its failures into cfbackup errors."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence

from cfbackup import execute, redact, suggest, swift
from cfbackup.config.model import Profile
from cfbackup.duplicity import launcher, machinelog
from cfbackup.duplicity.patches import Patch
from cfbackup.errors import (
    BackendError,
    BackupDamaged,
    CfbackupError,
    ConfigError,
    CryptoError,
    DuplicityFailed,
    ExitCode,
    LockHeld,
    NoBackupFound,
    QuotaExceeded,
    RunRefused,
)

log = logging.getLogger("cfbackup.duplicity")

LOG_FD_PLACEHOLDER = -1  # argv builders get this and it is replaced by the real descriptor


@dataclasses.dataclass
class DuplicityResult:
    argv: tuple[str, ...]
    returncode: int
    records: list[machinelog.Record]
    output_tail: tuple[str, ...]
    statistics: dict = dataclasses.field(default_factory=dict)
    # the run's environment (secrets: never shown), for the diagnosis of a Keystone failure
    env: Mapping[str, str] | None = dataclasses.field(default=None, repr=False, compare=False)
    # the profile it ran for: the fix commands a failure suggests name it
    profile: Profile | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def command(self) -> str:
        """duplicity's command word (``backup``, ``restore``...), also behind the launcher."""
        words = self.argv[3:] if self.argv[1:3] == ("-m", launcher.MODULE) else self.argv[1:]
        return words[0] if words else ""

    def records_with(self, level: str, code: int | None = None) -> list[machinelog.Record]:
        return [r for r in self.records if r.level == level and (code is None or r.code == code)]

    @property
    def unreadable(self) -> list[str]:
        codes = {
            machinelog.WARNING_CANNOT_READ,
            machinelog.WARNING_CANNOT_STAT,
            machinelog.WARNING_CANNOT_ITERATE,
            machinelog.WARNING_CANNOT_PROCESS,
        }
        # duplicity warns twice about a file it cannot read (signatures, then data): once here
        return list(
            dict.fromkeys(
                r.extra.strip("'\"") or r.message
                for r in self.records
                if r.level == "WARNING" and r.code in codes and not _OWN_STATE.match(r.message)
            )
        )


# duplicity's own progress file in the archive dir, cut short by a kill -9 of the run before:
# it warns with the code of an unreadable source file and starts afresh; no file was skipped
_OWN_STATE = re.compile(r"WARNING\. cannot read stored progress info from previous backup")


def duplicity_executable() -> str:
    """The duplicity installed beside cfbackup (its venv), else the one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "duplicity")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("duplicity") or "duplicity"


def run_duplicity(
    build_argv: Callable[[int], Sequence[str]],
    env: Mapping[str, str],
    *,
    patches: Sequence[Patch] = (),
    on_record: Callable[[machinelog.Record], None] | None = None,
    on_start: Callable | None = None,
    check: bool = True,
    profile: Profile | None = None,
    warm: WarmDuplicity | None = None,
) -> DuplicityResult:
    """Run the command ``build_argv(log_fd)`` returns; raise a CfbackupError when it fails
    (naming ``profile`` in the commands it suggests).

    A ``duplicity`` command runs through the launcher with core's patches and ``patches`` (the
    plugins') that apply to ``env``; in ``warm``, started earlier, when it was started with
    that same environment and patches."""
    if warm is not None and not warm.fits(env, patches):
        warm.close()
        warm = None
    read_fd, write_fd = warm.take() if warm is not None else os.pipe()
    records: list[machinelog.Record] = []

    def reader() -> None:
        parser = machinelog.MachineLogParser()
        with os.fdopen(read_fd, "r", encoding="utf-8", errors="replace") as stream:
            for line in stream:
                record = parser.feed(redact.redact_output(line))
                if record:
                    _accept(record)
        last = parser.close()
        if last:
            _accept(last)

    def _accept(record: machinelog.Record) -> None:
        records.append(record)
        if record.level == "WARNING" and record.message.startswith("Attempt of "):
            log.warning(
                "a request to the backend failed, duplicity retries it: %s",
                record.message.splitlines()[0][:300],
            )
        if on_record:
            on_record(record)

    thread = threading.Thread(target=reader, name="duplicity-log", daemon=True)
    thread.start()
    try:
        argv = tuple(build_argv(write_fd))
        if argv and argv[0] == "duplicity":
            env, chosen = launcher.environment(execute.child_environment(env), patches)
            log.debug("duplicity patches: %s", ", ".join(p.name for p in chosen) or "none")
            argv = (*launcher.command(), *argv[1:])
        elif warm is not None:
            raise ValueError("a warm duplicity runs duplicity commands only")
        if warm is not None:
            log.debug("running: %s", " ".join(argv))
            process = warm.start(argv[len(launcher.command()) :])
            if on_start:
                on_start(process)
            result = execute.follow(process, argv, on_line=lambda line: log.info("%s", line))
        else:
            result = execute.stream(
                argv,
                env=env,
                pass_fds=(write_fd,),
                on_start=on_start,
                on_line=lambda line: log.info("%s", line),
            )
    finally:
        if warm is not None:
            warm.close()  # stopped when its arguments never went out (an error, Ctrl-C)
        os.close(write_fd)
        thread.join(timeout=30)
    stats: dict = {}
    for record in records:
        if record.level == "NOTICE" and "Backup Statistics" in record.message:
            stats = machinelog.parse_statistics(record.message)
    outcome = DuplicityResult(argv, result.returncode, records, result.tail, stats, env, profile)
    if check and result.returncode != 0:
        raise classify_failure(outcome)
    return outcome


class WarmDuplicity:
    """A backup's duplicity started before its arguments are known, while cfbackup's checks
    run: the launcher's start-up (patches, duplicity's imports: 0.3-0.4 s of CPU) overlaps
    them instead of following them (``launcher.ARGV_FROM``). It does nothing until
    :meth:`start` sends the arguments; :meth:`close` without them stops it at once (a check
    failed, a guard refused: it holds nothing yet). ``CFBACKUP_NO_WARM=1`` switches it off for
    one run.

    Its log pipe belongs to it until :meth:`take` hands both ends to ``run_duplicity``; from
    then on :meth:`close` only stops the process (when its arguments never went out)."""

    OFF = "CFBACKUP_NO_WARM"

    def __init__(self, env: Mapping[str, str], patches: Sequence[Patch] = ()):
        self.env, self.chosen = launcher.environment(execute.child_environment(env), patches)
        self.log_read, self.log_write = os.pipe()
        argv_read, self._argv_write = os.pipe()
        try:
            self.process = execute.spawn(
                (*launcher.command(), f"{launcher.ARGV_FROM}{argv_read}"),
                env=self.env,
                pass_fds=(self.log_write, argv_read),
            )
        except BaseException:
            for fd in (self.log_read, self.log_write, self._argv_write):
                os.close(fd)
            raise
        finally:
            os.close(argv_read)
        self.taken = self.sent = self.closed = False

    def fits(self, env: Mapping[str, str], patches: Sequence[Patch] = ()) -> bool:
        """Was it started with what a run with ``env`` and ``patches`` would get (the checks'
        token, for one, is only handed over while young), and is it still waiting? One that
        died waiting (a patch failed, a kill) is not used: a cold start says why."""
        wanted, chosen = launcher.environment(execute.child_environment(env), patches)
        return (
            not (self.taken or self.closed)
            and wanted == self.env
            and chosen == self.chosen
            and self.process.poll() is None
        )

    def take(self) -> tuple[int, int]:
        """The log pipe's (read, write) ends, now the caller's to close."""
        self.taken = True
        return self.log_read, self.log_write

    def start(self, args: Sequence[str]) -> subprocess.Popen:
        """Send duplicity its arguments (the pipe then closes)."""
        fd, self._argv_write = self._argv_write, None
        self.sent = True
        data = json.dumps(list(args)).encode()
        try:
            while data:
                data = data[os.write(fd, data) :]
        except BrokenPipeError:  # it died meanwhile: follow() reads why, classify says it
            pass
        finally:
            os.close(fd)
        return self.process

    def close(self) -> None:
        """Stop it when its arguments never went out (it holds nothing: SIGTERM at once), then
        close what it still owns; idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._argv_write is not None:
            os.close(self._argv_write)
            self._argv_write = None
        if not self.sent:
            if self.process.poll() is None:
                self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                execute.terminate([self.process])
            if self.process.stdout is not None:
                self.process.stdout.close()
        if not self.taken:
            os.close(self.log_read)
            os.close(self.log_write)


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
    return RunRefused(
        f"duplicity refused the incremental backup: the backup source {what} has changed "
        f"({where}); run {_cmd(profile, 'backup', '--full')} to start a new chain, or, if it is "
        "the same data (restored onto a new machine or into another folder), add "
        'extra_options = ["--allow-source-mismatch"] to the profile, or --allow-source-mismatch '
        "to STATIC_OPTIONS in a legacy file."
    )


_CORRUPT = re.compile(r"hash mismatch for file:\s*(\S+)", re.I)  # the name is on the next line
_MISSING = re.compile(r"difftar volume (\d+) not found in backup", re.I)


def _cmd(profile: Profile | None, command: str, *more: str) -> str:
    """A cfbackup command naming the profile, as it runs (with the user's -c FILE)."""
    return suggest.command(command, profile.name if profile else "PROFILE", *more)


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
    return CfbackupError(
        f"no space left on the local disk (archive dir or temp dir{numbers}): free some space or "
        "set tempdir/archive_dir elsewhere, then run again (a backup resumes where it stopped).",
        exit_code=ExitCode.DUPLICITY,
    )


_PATTERNS: tuple[tuple[re.Pattern, Make], ...] = (
    (_SOURCE_MISMATCH, _source_mismatch),
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
            profile["swift"].get("auth_url") if profile else None, text
        ),
    ),
    (
        re.compile(
            r"Bad session key|decryption failed|bad passphrase|No secret key|"
            r"GPG error|gpg: decryption failed|GPGError",
            re.I,
        ),
        lambda text, profile: CryptoError(
            "gpg could not decrypt: wrong passphrase or the secret key is missing from the keyring."
        ),
    ),
    (
        re.compile(
            r"No backup chains found|No signature chains found|No such file or directory: "
            r"'.*manifest",
            re.I,
        ),
        lambda text, profile: NoBackupFound(
            "no backup found at the target: run a backup first or check the profile's target."
        ),
    ),
    (
        re.compile(r"not found in archive|no files? to restore|File .* not found", re.I),
        lambda text, profile: CfbackupError(
            f"the path to restore is not in that backup: check it with {_cmd(profile, 'list')}.",
            exit_code=ExitCode.REFUSED,
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
    first = (_cause(error_records).splitlines() or [""])[0] if errors else ""
    summary = first or (result.output_tail[-1] if result.output_tail else "no output")
    return DuplicityFailed(
        f"duplicity {result.command} failed with exit code {result.returncode}: "
        f"{summary.strip()[:300]}",
        returncode=result.returncode,
        detail=detail,
    )


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
