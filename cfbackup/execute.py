"""The only place that spawns processes.

Children get their own environment (secrets travel there, never in argv), die with cfbackup
(PR_SET_PDEATHSIG; a user's command with all it started: :mod:`cfbackup.groupwatch`), and their
output is redacted before it reaches a log or the terminal.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import IO

from cfbackup import groupwatch, redact
from cfbackup.errors import CfbackupError, ExitCode, Interrupted
from cfbackup.interrupts import STOP_SIGNALS

log = logging.getLogger(__name__)

# How this host reaches the cloud: cfbackup's own requests (its checks) follow them, so
# duplicity must too, or a check passes and the backup cannot reach Swift. A config's
# [environment] table (a legacy file's exports of them) sets them for the whole run.
NETWORK_ENV = (
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)

# Only these variables of the parent reach a child; secrets are added explicitly per command.
PASSTHROUGH_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "USER",
    "LOGNAME",
    "GNUPGHOME",
    "GPG_AGENT_INFO",
    "PYTHONPATH",
    *NETWORK_ENV,
)

# The CFBACKUP_* variables cfbackup itself reads (switches, the config path, plugin choices):
# only these reach a child from cfbackup's environment, never any other CFBACKUP_* name. A user
# may keep a secret in one (``config migrate`` suggests CFBACKUP_ENCRYPTION_PASSPHRASE), and a
# hook, gpg or the gpg-agent gpg starts must not get it. The ones cfbackup sets for a child
# (CFBACKUP_PROFILE, CFBACKUP_DUPLICITY_PATCHES...) it passes explicitly.
CFBACKUP_ENV = (
    "CFBACKUP_CONFIG",
    "CFBACKUP_LOAD_PLUGINS",
    "CFBACKUP_TRACE_HOOKS",
    "CFBACKUP_INVENTORY",
    "CFBACKUP_FIREWALL_PATH",
    "CFBACKUP_SWIFT_SERVICENET",
    "CFBACKUP_NO_WARM",
    "CFBACKUP_NO_HANDED_TOKEN",
    "CFBACKUP_NO_HANDED_MANIFEST",
    "CFBACKUP_NO_GPG_AHEAD",
    "CFBACKUP_NO_GPG_SELFTEST",
    "CFBACKUP_NO_SIZED_UPLOADS",
    "CFBACKUP_NO_SESSION_KEYS",
)
_PR_SET_PDEATHSIG = 1
GROUPWATCH = groupwatch.__file__  # run as a program (``capture(own_group=True)``)


@dataclasses.dataclass
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    tail: tuple[str, ...] = ()  # the last lines of stderr/stdout, redacted


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: of cfbackup's own, only :data:`PASSTHROUGH_ENV` and
    :data:`CFBACKUP_ENV`, and never a variable a ``*_env`` setting names (a user may name
    HOME...); then ``extra``, what this child is given on purpose."""
    named = redact.secret_variables()
    env = {
        k: v
        for k, v in os.environ.items()
        if (k in PASSTHROUGH_ENV or k in CFBACKUP_ENV) and k not in named
    }
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env.update(extra or {})
    return env


GNUPG_ENCODING = "latin-1"  # python-gnupg's: it reads any byte gpg writes to stderr


def gnupg_client(gnupghome: str | None = None):
    """python-gnupg's ``GPG``, whose gpg processes get the minimal environment too: they would
    otherwise inherit cfbackup's whole environment (a ``passphrase_env`` variable included), and
    so would the gpg-agent the first of them starts, for as long as it lives."""
    import gnupg  # heavy-ish; only where keys or manifests are read

    gpg = gnupg.GPG(gnupghome=gnupghome, env=child_environment())
    gpg.encoding = GNUPG_ENCODING
    return gpg


def duplicity_passphrase(passphrase: str | None) -> str | None:
    """``passphrase`` as python-gnupg must be given it for gpg to get the bytes duplicity
    gives it. duplicity writes it to gpg in UTF-8 (a text pipe, Python's UTF-8 locale);
    python-gnupg writes it in its own encoding (:data:`GNUPG_ENCODING`), so a passphrase
    with a non-ASCII character decrypted nothing duplicity encrypted ("Bad session key"). Its
    UTF-8 bytes, spelled as latin-1 characters, reach gpg as those bytes."""
    if passphrase is None:
        return None
    return passphrase.encode("utf-8").decode(GNUPG_ENCODING)


_HELD = STOP_SIGNALS  # how a run is stopped (cfbackup's handlers raise)


def _die_with_parent(parent: int) -> None:
    """Runs in the child: a SIGTERM arrives when cfbackup dies, even by kill -9; if cfbackup
    (``parent``) died before the prctl, none will come and the child ends here. SIGINT gets
    its default back (a background job inherits it ignored): it is how cfbackup asks duplicity
    to stop cleanly. The stop signals were held back in the forking thread (:func:`_forking`);
    with their defaults set they are let through, and one that came meanwhile ends the child
    before it runs its command, quietly."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if callable(signal.getsignal(signal.SIGTERM)):  # cfbackup's handler (an ignore stays)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(128 + signal.SIGTERM)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)


def _child_setup() -> Callable[[], None]:
    """``preexec_fn`` for a child of this process."""
    return functools.partial(_die_with_parent, os.getpid())


@contextlib.contextmanager
def _forking():
    """The stop signals held back in this thread while it starts a child. Between fork and
    exec the child runs Python (threading's after-fork hook, then :func:`_die_with_parent`):
    a Ctrl-C reaching the process group just then raised KeyboardInterrupt there, and the
    child printed "Exception ignored ... Traceback" on the user's terminal. Held, the signal
    waits in the child until its defaults are set. This process still gets it at once in
    another thread, or here right after."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def capture(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    input_text: str | None = None,
    exact: bool = False,
    own_group: bool = False,
) -> Result:
    """Run a short command and capture its output (secret commands, gpg checks, bash).

    ``exact`` keeps the output as it was written (a CR before a LF is data, not a line end, and
    a byte that is not UTF-8 is kept as os.fsdecode keeps it).

    ``own_group`` is for a user's command (a hook), which may start commands of its own: it
    runs under :mod:`cfbackup.groupwatch`, in a process group of its own that is stopped whole
    when cfbackup stops (interrupted, timed out, killed). Without it, only the command itself
    gets cfbackup's stop or parent-death signal, and its children (the ``sleep`` under
    ``sh -c``) were left running under PID 1."""
    argv = given = tuple(argv)
    shown = argv[0]
    environment = child_environment(env)
    if own_group:
        # not found: said as for any command, not as the watch's exit code 127
        if shutil.which(shown, path=environment["PATH"]) is None:
            raise CfbackupError(
                f"{shown} was not found: install it or check PATH.", exit_code=ExitCode.CONFIG
            )
        argv = (sys.executable, "-I", "-S", GROUPWATCH, *argv)
    data = input_text.encode() if exact and input_text is not None else input_text
    try:
        with _forking():  # subprocess.run, with the fork alone under _forking
            process = subprocess.Popen(
                argv,
                env=environment,
                stdin=subprocess.PIPE if data is not None else None,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=not exact,
                errors=None if exact else "replace",
                preexec_fn=_child_setup(),
            )
        with process:  # on the way out: the command is waited for, as subprocess.run does
            try:
                stdout, stderr = process.communicate(data, timeout=timeout)
            except BaseException:
                # stopped and left, never read to its end: a command's own child (the sleep
                # under a hook's sh) can hold the output open long after it, and an
                # interrupted hook then stopped nothing until that child ended
                _stop(process, own_group)
                raise
    except FileNotFoundError:
        raise CfbackupError(
            f"{shown} was not found: install it or check PATH.", exit_code=ExitCode.CONFIG
        ) from None
    except subprocess.TimeoutExpired:
        raise CfbackupError(
            f"{os.path.basename(shown)} did not finish within {timeout:.0f} s.",
            exit_code=ExitCode.CONFIG,
        ) from None
    if exact:  # a byte that is not UTF-8 stays itself (surrogateescape), as os.fsdecode keeps it
        stdout = stdout.decode("utf-8", "surrogateescape")
        stderr = stderr.decode("utf-8", "replace")
    tail = tuple(redact.redact_output(line) for line in stderr.splitlines()[-20:])
    return Result(given, process.returncode, stdout, tail)


def _stop(process: subprocess.Popen, own_group: bool) -> None:
    """A command :func:`capture` gives up on: killed; under :mod:`cfbackup.groupwatch`, asked
    to stop its whole group (SIGTERM, then SIGKILL after its grace), and killed only if it
    does not end by then (a SIGKILL to the watch would leave the group running)."""
    if own_group:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=2 * groupwatch.GRACE + 5)
            return
    process.kill()


def stream(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    pass_fds: Sequence[int] = (),
    on_start: Callable[[subprocess.Popen], None] | None = None,
    tail_lines: int = 40,
) -> Result:
    """Run a long command (duplicity), feeding each redacted output line to ``on_line``."""
    argv = tuple(argv)
    log.debug("running: %s", " ".join(argv))
    process = spawn(argv, env=env, pass_fds=pass_fds)
    if on_start:
        try:
            on_start(process)
        except BaseException:  # refused (the run is stopping): stopped before it gets far
            terminate([process])
            if process.stdout is not None:
                process.stdout.close()
            raise
    return follow(process, argv, on_line=on_line, tail_lines=tail_lines)


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
    exact_env: bool = False,
) -> subprocess.Popen:
    """Start a long command whose output :func:`follow` reads (a warm duplicity is started
    before its arguments are known: ``duplicity/run.py``). With ``exact_env``, ``env`` is its
    whole environment, nothing of cfbackup's added (``duplicity/early.py``: started before the
    config says which variables hold a secret)."""
    return _popen(
        argv,
        dict(env or {}) if exact_env else env,
        exact_env=exact_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        pass_fds=tuple(pass_fds),
    )


def fed(
    argv: Sequence[str],
    *,
    stdout: IO[bytes],
    stderr: IO[bytes],
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen:
    """Start a command that reads what the caller writes to its (binary) ``stdin`` as it
    comes, e.g. gpg decrypting a volume while it downloads; its output goes to files. The
    caller closes stdin and waits, or kills it."""
    return _popen(
        argv, env, stdin=subprocess.PIPE, stdout=stdout, stderr=stderr, pass_fds=tuple(pass_fds)
    )


def background(argv: Sequence[str], env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start a command whose output nobody reads and that nobody waits for now (the caller
    reaps it later), e.g. a gpg-agent warmed up while the checks run."""
    return _popen(
        argv, env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _popen(
    argv: Sequence[str], env: Mapping[str, str] | None, *, exact_env: bool = False, **kwargs
) -> subprocess.Popen:
    try:
        with _forking():
            return subprocess.Popen(
                tuple(argv),
                env=env if exact_env else child_environment(env),
                preexec_fn=_child_setup(),
                **kwargs,
            )
    except FileNotFoundError:
        raise CfbackupError(
            f"{argv[0]} was not found: install it or check PATH.", exit_code=ExitCode.CONFIG
        ) from None


def follow(
    process: subprocess.Popen,
    argv: tuple[str, ...],
    *,
    on_line: Callable[[str], None] | None = None,
    tail_lines: int = 40,
) -> Result:
    """Read a spawned command's output to its end (each line redacted, to ``on_line``) and
    wait for it; interrupted, it is stopped (:func:`terminate`)."""
    tail: deque[str] = deque(maxlen=tail_lines)
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = redact.redact_output(raw.rstrip("\n"))
            tail.append(line)
            if on_line:
                on_line(line)
        returncode = process.wait()
    except BaseException:
        terminate([process])
        raise
    return Result(argv, returncode, "", tuple(tail))


def terminate(processes: Sequence[subprocess.Popen]) -> None:
    """Stop children on interruption: SIGINT first (duplicity cleans up), then harder."""
    for sig, wait in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        live = [p for p in processes if p.poll() is None]
        if not live:
            return
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
        deadline = time.monotonic() + wait
        for process in live:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()))


def end_waiting(process: subprocess.Popen) -> None:
    """Stop a child that holds nothing yet (a duplicity still waiting for its arguments):
    SIGTERM at once, harder if it lingers; then close its output pipe."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        terminate([process])
    if process.stdout is not None:
        process.stdout.close()


class ProcessGroup:
    """Processes started from several threads (split chains, a drill's restores), to stop them
    all at once: on interruption, or when a run's time is up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: list[subprocess.Popen] = []
        self.stopping = False

    def started(self, process: subprocess.Popen) -> None:
        """``on_start`` for :func:`stream` and ``run_duplicity``: the process joins the group;
        after :meth:`stop_all` it does not, and Interrupted says so: the caller stops it
        (a duplicity that waits for its arguments never gets them). A process that came late
        was sent one SIGINT, after it had been given its command, and never a harder signal."""
        with self._lock:
            if not self.stopping:
                self._live.append(process)
                return
        raise Interrupted("stopped as it started: the run is stopping.")

    def stop_all(self) -> None:
        """SIGINT to every process (duplicity cleans up, as a single interrupted run does),
        then harder if one does not end (:func:`terminate`)."""
        with self._lock:
            self.stopping = True
            live = list(self._live)
        terminate(live)
