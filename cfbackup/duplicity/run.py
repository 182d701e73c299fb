"""Run one duplicity command and read its machine log; what a failure means is
``failures.py``."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence

from cfbackup import execute, redact
from cfbackup.config.model import Profile
from cfbackup.duplicity import early, launcher, machinelog
from cfbackup.duplicity.failures import classify_failure
from cfbackup.duplicity.patches import Patch, handed_token
from cfbackup.duplicity.result import DuplicityResult

log = logging.getLogger("cfbackup.duplicity")

LOG_FD_PLACEHOLDER = -1  # argv builders get this and it is replaced by the real descriptor


def duplicity_executable() -> str:
    """The duplicity installed beside cfbackup (its venv), else the one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "duplicity")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("duplicity") or "duplicity"


def read_records(read_fd: int, accept: Callable[[machinelog.Record], None]) -> None:
    """Feed ``accept`` each record of duplicity's machine log on ``read_fd``, masked, until the
    stream ends. Lines end at ``\\n`` only: a ``\\r`` in a file name (duplicity's messages
    hold names as they are) would otherwise split a record in two."""
    parser = machinelog.MachineLogParser()
    with os.fdopen(
        read_fd, "r", encoding="utf-8", errors="backslashreplace", newline="\n"
    ) as stream:
        for line in stream:
            record = parser.feed(redact.redact_output(line))
            if record:
                accept(record)
    last = parser.close()
    if last:
        accept(last)


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
    that same environment and patches.

    The storage URL and token ``env`` hands over (``patches/handed_token.py``) never go into
    duplicity's environment (``/proc/PID/environ`` keeps what a process started with): without
    a warm duplicity that fits, one is started now and given them with its arguments."""
    if warm is not None and not warm.fits(env, patches):
        warm.close()
        warm = None
    if warm is None and env.get(handed_token.TOKEN):
        warm = WarmDuplicity(late(env), patches)  # a cold start, the token on its pipe
    read_fd, write_fd = warm.take() if warm is not None else os.pipe()
    records: list[machinelog.Record] = []

    def reader() -> None:
        read_records(read_fd, _accept)

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
            if warm is not None:  # what it was started with (a late token's patch, given none)
                chosen = warm.chosen
            log.debug("duplicity patches: %s", ", ".join(p.name for p in chosen) or "none")
            argv = (*launcher.command(), *argv[1:])
        elif warm is not None:
            raise ValueError("a warm duplicity runs duplicity commands only")
        if warm is not None:
            log.debug("running: %s", " ".join(argv))
            if on_start:  # before its arguments: refused (a stop came first), it never gets them
                on_start(warm.process)
            process = warm.start(argv[len(launcher.command()) :], env)
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
    env = {k: v for k, v in env.items() if k not in (handed_token.URL, handed_token.TOKEN)}
    outcome = DuplicityResult(argv, result.returncode, records, result.tail, stats, env, profile)
    if check and result.returncode != 0:
        raise classify_failure(outcome)
    return outcome


def late(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the URL and token it hands over, and with ``handed_token.LATE`` when it
    had them: the environment of a duplicity that takes them with its arguments."""
    kept = {k: v for k, v in env.items() if k not in (handed_token.URL, handed_token.TOKEN)}
    return {**kept, handed_token.LATE: "1"} if env.get(handed_token.TOKEN) else kept


class WarmDuplicity:
    """A backup's duplicity started before its arguments are known, while cfbackup's checks
    run: the launcher's start-up (patches, duplicity's imports: 0.3-0.4 s of CPU) overlaps
    them instead of following them (``launcher.ARGV_FROM``). It does nothing until
    :meth:`start` sends the arguments; :meth:`close` without them stops it at once (a check
    failed, a guard refused: it holds nothing yet). ``CFBACKUP_NO_WARM=1`` switches it off for
    one run.

    Its log pipe belongs to it until :meth:`take` hands both ends to ``run_duplicity``; from
    then on :meth:`close` only stops the process (when its arguments never went out).

    Started with ``handed_token.LATE`` in ``env`` (a backup's, before its checks authenticated),
    it fits a run's environment with or without the checks' token, and the token goes with
    the arguments (:meth:`start`).

    A backup's takes the interpreter ``early.py`` started at cfbackup's first statement, when
    one waits and fits: it is given ``env`` on its pipe instead of at its start."""

    OFF = "CFBACKUP_NO_WARM"

    def __init__(self, env: Mapping[str, str], patches: Sequence[Patch] = ()):
        self.late = env.get(handed_token.LATE) == "1"
        self.env, self.chosen = launcher.environment(execute.child_environment(env), patches)
        self.taken = self.sent = self.closed = False
        found = early.take(execute.child_environment(self.env))  # what a cold start gets
        if found is not None:  # started at cfbackup's first statement, now given self.env
            self.process, self._argv_write = found.process, found.argv_write
            self.log_read, self.log_write = found.log_read, found.log_write
            return
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
        wanted, chosen = launcher.environment(execute.child_environment(self._early(env)), patches)
        return (
            not (self.taken or self.closed)
            and wanted == self.env
            and chosen == self.chosen
            and self.process.poll() is None
        )

    def _early(self, env: Mapping[str, str]) -> Mapping[str, str]:
        """``env`` as this one was started with it: the token it takes late left out."""
        if not self.late:
            return env
        early = {k: v for k, v in env.items() if k not in (handed_token.URL, handed_token.TOKEN)}
        return {**early, handed_token.LATE: "1"}

    def take(self) -> tuple[int, int]:
        """The log pipe's (read, write) ends, now the caller's to close."""
        self.taken = True
        return self.log_read, self.log_write

    def start(self, args: Sequence[str], env: Mapping[str, str] | None = None) -> subprocess.Popen:
        """Send duplicity its arguments (the pipe then closes), with the checks' token of the
        run's ``env`` when it takes it late."""
        fd, self._argv_write = self._argv_write, None
        self.sent = True
        message: dict = {"argv": list(args)}
        url, token = ((env or {}).get(handed_token.URL), (env or {}).get(handed_token.TOKEN))
        if self.late and url and token:
            message["handover"] = {"url": url, "token": token}
        data = json.dumps(message).encode()
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
            execute.end_waiting(self.process)
        if not self.taken:
            os.close(self.log_read)
            os.close(self.log_write)
