"""Run one duplicity command, read its machine log, and turn its failures into cfbackup errors."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import sys
import threading
from collections.abc import Callable, Mapping, Sequence

from cfbackup import execute, redact
from cfbackup.duplicity import machinelog
from cfbackup.errors import (
    BackendError,
    CfbackupError,
    ConfigError,
    CryptoError,
    DuplicityFailed,
    ExitCode,
    LockHeld,
    QuotaExceeded,
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
        return [
            r.extra.strip("'\"") or r.message
            for r in self.records
            if r.level == "WARNING" and r.code in codes
        ]


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
    on_record: Callable[[machinelog.Record], None] | None = None,
    on_start: Callable | None = None,
    check: bool = True,
) -> DuplicityResult:
    """Run the command ``build_argv(log_fd)`` returns; raise a CfbackupError when it fails."""
    read_fd, write_fd = os.pipe()
    records: list[machinelog.Record] = []

    def reader() -> None:
        parser = machinelog.MachineLogParser()
        with os.fdopen(read_fd, "r", encoding="utf-8", errors="replace") as stream:
            for line in stream:
                record = parser.feed(redact.redact(line))
                if record:
                    _accept(record)
        last = parser.close()
        if last:
            _accept(last)

    def _accept(record: machinelog.Record) -> None:
        records.append(record)
        if on_record:
            on_record(record)

    thread = threading.Thread(target=reader, name="duplicity-log", daemon=True)
    thread.start()
    try:
        argv = tuple(build_argv(write_fd))
        if argv and argv[0] == "duplicity":
            argv = (duplicity_executable(), *argv[1:])
        result = execute.stream(
            argv,
            env=env,
            pass_fds=(write_fd,),
            on_start=on_start,
            on_line=lambda line: log.info("%s", line),
        )
    finally:
        os.close(write_fd)
        thread.join(timeout=30)
    stats: dict = {}
    for record in records:
        if record.level == "NOTICE" and "Backup Statistics" in record.message:
            stats = machinelog.parse_statistics(record.message)
    outcome = DuplicityResult(argv, result.returncode, records, result.tail, stats)
    if check and result.returncode != 0:
        raise classify_failure(outcome)
    return outcome


_PATTERNS: tuple[tuple[re.Pattern, Callable[[str], CfbackupError]], ...] = (
    (
        re.compile(r"Another duplicity instance is already running|lockfile .* is locked", re.I),
        lambda text: LockHeld(
            "another duplicity process is using this profile's archive dir; wait for it or, if it "
            "is dead, run the command again (a stale duplicity lock is released with its process)."
        ),
    ),
    (
        # "Upload exceeds quota (HTTP 413): scope=...; <numbers>" comes from the quota_guard
        # plugin's duplicity shim; a bare "413" would also match sizes and transaction ids.
        re.compile(r"Upload exceeds (policy )?quota|Request Entity Too Large|\bHTTP 413\b", re.I),
        lambda text: (
            lambda found: QuotaExceeded(
                f"{'account' if found and found[1] == 'account' else 'container'} quota "
                "exceeded: Swift refused an upload (413)"
                + (f": {found[2].strip().rstrip('.')}" if found else "")
                + "; raise the quota (cfbackup quota set PROFILE --bytes N) or prune old backups "
                "(cfbackup prune PROFILE), then run the backup again (the chain resumes)."
            )
        )(re.search(r"HTTP 413\): scope=(container|account); ([^\n]*)", text)),
    ),
    (
        re.compile(r"401 Unauthorized|Unauthorized|Authorization Failure|\b401\b", re.I),
        lambda text: BackendError(
            "Swift rejected the credentials (401): check swift.username and the password."
        ),
    ),
    (
        re.compile(r"403 Forbidden|\b403\b", re.I),
        lambda text: BackendError(
            "Swift refused access (403): the user lacks a role Swift accepts for this container."
        ),
    ),
    (
        re.compile(
            r"Connection refused|Max retries exceeded|Name or service not known|timed out|"
            r"Failed to establish a new connection|Temporary failure in name resolution",
            re.I,
        ),
        lambda text: BackendError(
            "cannot reach Swift (connection failed): check swift.auth_url and that the proxy is up."
        ),
    ),
    (
        re.compile(
            r"Bad session key|decryption failed|bad passphrase|No secret key|"
            r"GPG error|gpg: decryption failed|GPGError",
            re.I,
        ),
        lambda text: CryptoError(
            "gpg could not decrypt: wrong passphrase or the secret key is missing from the keyring."
        ),
    ),
    (
        re.compile(
            r"No backup chains found|No signature chains found|No such file or directory: "
            r"'.*manifest",
            re.I,
        ),
        lambda text: CfbackupError(
            "no backup found at the target: run a backup first or check the profile's target.",
            exit_code=ExitCode.REFUSED,
        ),
    ),
    (
        re.compile(r"not found in archive|no files? to restore|File .* not found", re.I),
        lambda text: CfbackupError(
            "the path to restore is not in that backup: check it with cfbackup list.",
            exit_code=ExitCode.REFUSED,
        ),
    ),
    (
        re.compile(r"not enough free space|No space left on device", re.I),
        lambda text: CfbackupError(
            "no space left on the local disk (archive dir or temp dir): free some space or set "
            "tempdir/archive_dir elsewhere, then run again.",
            exit_code=ExitCode.DUPLICITY,
        ),
    ),
    (
        re.compile(r"file_prefix_error|is not under|Fatal Error: The file specification", re.I),
        lambda text: ConfigError(
            "an include or exclude path is not under the profile's source: fix include/exclude."
        ),
    ),
)


def classify_failure(result: DuplicityResult) -> CfbackupError:
    """One clear error for a failed duplicity run, with its exit code and output tail."""
    errors = [r.message for r in result.records if r.level == "ERROR"]
    text = "\n".join(errors + list(result.output_tail))
    detail = "\n".join(result.output_tail[-15:])
    for pattern, make in _PATTERNS:
        if pattern.search(text):
            error = make(text)
            error.detail = detail
            error.message = f"{error.message} (duplicity exit code {result.returncode})"
            return error
    first = (errors[-1].splitlines() or [""])[0] if errors else ""
    summary = first or (result.output_tail[-1] if result.output_tail else "no output")
    command = result.argv[1] if len(result.argv) > 1 else ""
    return DuplicityFailed(
        f"duplicity {command} failed with exit code {result.returncode}: {summary.strip()[:300]}",
        returncode=result.returncode,
        detail=detail,
    )
