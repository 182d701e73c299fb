"""A user's command (a hook) and everything it starts, stopped together with cfbackup.

Run as a program by :func:`cfbackup.execute.capture` (``own_group=True``):
``python -I -S groupwatch.py COMMAND...``. It starts COMMAND as the leader of a process group
of its own, in cfbackup's session (a command that asks at the terminal, ``read </dev/tty``, an
ssh or sudo prompt, still can: when cfbackup's group has the terminal, the command's group gets
it, as a shell gives it to a job, and cfbackup's gets it back after), and waits for it, exiting
as it did: its exit code, or dying of the signal that killed it. Stopped itself (SIGTERM from
cfbackup on its way out, or the parent-death signal when cfbackup is killed, even by kill -9:
PR_SET_PDEATHSIG reaches only a direct child, and COMMAND's own children, e.g. the ``sleep``
under ``sh -c``, would otherwise be left running under PID 1), it sends SIGTERM to the whole
group, SIGKILL to what is left after :data:`GRACE` seconds, and dies of the signal it got. A
stop signal ignored when it started (``nohup``: SIGHUP) stays ignored, here and in COMMAND.

A Ctrl-C while COMMAND has the terminal reaches COMMAND's group only; when COMMAND dies of it,
the watch stops what is left of the group and passes the SIGINT on to cfbackup's group, which
then stops as on any Ctrl-C.

COMMAND gets the environment this process was started with (``/proc/self/environ``), not
``os.environ``: Python's start-up adds ``LC_CTYPE`` to it under a C or POSIX locale.

Only the standard library, and little of it (``os.fork``, not :mod:`subprocess`: it starts
faster): it runs without site-packages, and none of cfbackup is loaded.
"""

from __future__ import annotations

import os
import sys
import time

try:  # the signals without their enums: importing enum was most of the watch's start-up
    import _signal as signal
except ImportError:  # pragma: no cover - another Python than CPython
    import signal

GRACE = 5.0  # seconds between SIGTERM and SIGKILL to the command's group
STOPS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# ignored by Python's start-up, not by whoever started the watch: as subprocess does, the
# command gets their defaults back (a shell killed by SIGPIPE was otherwise not)
RESTORED = (signal.SIGPIPE, signal.SIGXFSZ)


class _Stopped(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_stop(signum, frame):
    raise _Stopped(signum)


def _group_left(pgid: int) -> bool:
    """True while a process of group ``pgid`` runs (a zombie no longer does: its parent, PID 1
    in a container, may be slow to reap it)."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # ended meanwhile
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def _reap(pid: int, status: list[int]) -> bool:
    """True once the leader ``pid`` has ended (its wait status in ``status``), reaped: a
    zombie would keep the group "alive"."""
    if not status:
        try:
            done, code = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if not done:
            return False
        status.append(code)
    return True


def stop_group(pid: int, status: list[int], grace: float = GRACE) -> None:
    """SIGTERM (and SIGCONT, for a stopped process) to the group of leader ``pid``, SIGKILL to
    what is left after ``grace`` seconds. The leader is reaped as it ends; its children that
    outlive it are reaped by whoever adopts them."""
    for sigs, wait in (((signal.SIGTERM, signal.SIGCONT), grace), ((signal.SIGKILL,), grace)):
        try:
            for sig in sigs:
                os.killpg(pid, sig)
        except ProcessLookupError:
            _reap(pid, status)
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _reap(pid, status) and not _group_left(pid):
                return
            time.sleep(0.05)
    _reap(pid, status)


def _terminal() -> int | None:
    """The controlling terminal, open, if this process's group has it (cfbackup runs in the
    foreground of a terminal): the command's group is then given it."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None  # no controlling terminal (cron, systemd)
    try:
        if os.tcgetpgrp(fd) == os.getpgrp():
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _give_terminal(fd: int | None, pgid: int) -> None:
    """The terminal's foreground to ``pgid`` (SIGTTOU ignored meanwhile, as a job's group
    that is not in the foreground may not take it otherwise)."""
    if fd is not None:
        try:
            os.tcsetpgrp(fd, pgid)
        except OSError:
            pass  # the terminal was hung up; the group ended


def _die_of(signum: int) -> None:
    """Dies of ``signum`` (without a core dump of its own); SIGKILL cannot be given a
    default back, and needs none."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    except (ImportError, OSError, ValueError):
        pass
    if signum != signal.SIGKILL:
        signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])


def _exec(argv: list[str], env: dict[bytes, bytes], ignored: list[int], tty: int | None) -> None:
    """In the forked child: its own group (with the terminal, if cfbackup had it), the stop
    signals as given (one ignored when the watch started stays ignored), then COMMAND."""
    try:
        os.setpgid(0, 0)
        _give_terminal(tty, os.getpid())
        for sig in (*STOPS, signal.SIGTTOU):
            if sig not in ignored:
                signal.signal(sig, signal.SIG_DFL)
        for sig in RESTORED:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
        os.execvpe(argv[0], argv, env)
    except OSError as error:
        os.write(2, f"cannot run {argv[0]}: {error.strerror}\n".encode())
    finally:
        os._exit(127)


def _wait(pid: int, terminal: list[int | None]) -> int:
    """The wait status of the ended leader ``pid``. Stopped at the terminal (a Ctrl-Z; a read
    from it while cfbackup runs in the background, SIGTTIN), the command's job is cfbackup's:
    cfbackup's group is stopped too, the shell takes the terminal back, and once ``fg``
    continues it, the command's group gets the terminal (``terminal[0]``) and is continued.
    Continued in the background (``bg``), a command stopped for the terminal stays stopped."""
    while True:
        code = os.waitpid(pid, os.WUNTRACED)[1]
        if not os.WIFSTOPPED(code):
            return code
        if os.WSTOPSIG(code) not in (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
            continue  # SIGSTOP: whoever sent it continues it
        if terminal[0] is not None:
            _give_terminal(terminal[0], os.getpgrp())
            os.close(terminal[0])
        os.killpg(os.getpgrp(), signal.SIGTSTP)  # here too: continued by fg or bg (SIGCONT)
        terminal[0] = _terminal()
        if terminal[0] is not None or os.WSTOPSIG(code) == signal.SIGTSTP:
            _give_terminal(terminal[0], pid)
            os.killpg(pid, signal.SIGCONT)


def _environment() -> dict[bytes, bytes]:
    """The environment this process was started with, before Python's locale coercion."""
    try:
        with open("/proc/self/environ", "rb") as handle:
            entries = handle.read().split(b"\0")
    except OSError:
        return dict(os.environb)
    return dict(entry.split(b"=", 1) for entry in entries if b"=" in entry)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: groupwatch.py COMMAND [ARG...]", file=sys.stderr)
        return 2
    ignored = [sig for sig in (*STOPS, signal.SIGTTOU) if signal.getsignal(sig) == signal.SIG_IGN]
    watched = [sig for sig in STOPS if sig not in ignored]
    env = _environment()
    terminal = [_terminal()]  # while cfbackup's group has it (it may change: ``_wait``)
    # held until the command runs in its own group: a stop signal meanwhile then stops it too
    signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    for sig in watched:
        signal.signal(sig, _on_stop)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # taking the terminal back, from a background
    pid = os.fork()
    if pid == 0:
        _exec(argv, env, ignored, terminal[0])
    try:
        os.setpgid(pid, pid)  # as the child does: whichever runs first
    except OSError:
        pass  # it has run its command already
    _give_terminal(terminal[0], pid)
    status: list[int] = []
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
        status.append(_wait(pid, terminal))
        signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)  # it ended: nothing left to stop
    except _Stopped as stopped:
        for sig in watched:
            signal.signal(sig, signal.SIG_IGN)
        stop_group(pid, status)
        _give_terminal(terminal[0], os.getpgrp())
        _die_of(stopped.signum)
        return 128 + stopped.signum
    _give_terminal(terminal[0], os.getpgrp())
    if os.WIFSIGNALED(status[0]):  # killed by a signal: so is this process, as if it were it
        signum = os.WTERMSIG(status[0])
        if signum == signal.SIGINT and terminal[0] is not None and signum in watched:
            # a Ctrl-C at the terminal the command had: cfbackup's group gets it too, as it
            # would have without the command; what the command started is stopped first
            for sig in watched:
                signal.signal(sig, signal.SIG_IGN)
            stop_group(pid, status)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.killpg(os.getpgrp(), signal.SIGINT)
        _die_of(signum)
        return 128 + signum
    return os.waitstatus_to_exitcode(status[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
