"""A user's command (a hook) and everything it starts, stopped together with cfbackup.

Run as a program by :func:`cfbackup.execute.capture` (``own_group=True``):
``python -I -S groupwatch.py COMMAND...``. It starts COMMAND as the leader of a new
session (so of a new process group, without a controlling terminal: a hook that reads its stdin
is never stopped by SIGTTIN) and waits for it, exiting as it did. Stopped itself (SIGTERM from
cfbackup on its way out, or the parent-death signal when cfbackup is killed, even by kill -9:
PR_SET_PDEATHSIG reaches only a direct child, and COMMAND's own children, e.g. the ``sleep``
under ``sh -c``, would otherwise be left running under PID 1), it sends SIGTERM to the whole
group, SIGKILL to what is left after :data:`GRACE` seconds, and dies of the signal it got.

Only the standard library: it runs without site-packages, and none of cfbackup is loaded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

GRACE = 5.0  # seconds between SIGTERM and SIGKILL to the command's group
STOPS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# a command killed by one of these: so is this process (no core dump of its own for the others)
PASSED_ON = (*STOPS, signal.SIGKILL, signal.SIGPIPE)


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


def stop_group(leader: subprocess.Popen, grace: float = GRACE) -> None:
    """SIGTERM to the leader's whole group, SIGKILL to what is left after ``grace`` seconds.
    The leader is reaped as it ends (a zombie would keep the group "alive"); its children
    that outlive it are reaped by whoever adopts them."""
    pgid = leader.pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            leader.poll()
            if leader.returncode is not None and not _group_left(pgid):
                return
            time.sleep(0.05)
    leader.poll()


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: groupwatch.py COMMAND [ARG...]", file=sys.stderr)
        return 2
    ignored = [sig for sig in STOPS if signal.getsignal(sig) is signal.SIG_IGN]

    def as_given() -> None:  # in the command's process, before it runs
        for sig in STOPS:
            signal.signal(sig, signal.SIG_IGN if sig in ignored else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)

    # held until the command runs in its own group: a stop signal meanwhile then stops it too
    signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    for sig in STOPS:
        signal.signal(sig, _on_stop)
    try:
        leader = subprocess.Popen(argv, start_new_session=True, preexec_fn=as_given)
    except OSError as error:
        print(f"cannot run {argv[0]}: {error.strerror}", file=sys.stderr)
        return 127
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
        returncode = leader.wait()
        signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)  # it ended: nothing left to stop
    except _Stopped as stopped:
        for sig in STOPS:
            signal.signal(sig, signal.SIG_IGN)
        stop_group(leader)
        signal.signal(stopped.signum, signal.SIG_DFL)
        os.kill(os.getpid(), stopped.signum)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [stopped.signum])
        return 128 + stopped.signum
    if -returncode in PASSED_ON:  # killed by a signal: so is this process, as if it were it
        signal.signal(-returncode, signal.SIG_DFL)
        os.kill(os.getpid(), -returncode)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [-returncode])
    return 128 - returncode if returncode < 0 else returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
