"""The dead-man: a detached process that lifts a lock-down nobody else will lift.

Like ``iptables-apply``, but watching a process instead of waiting for a keypress: started
before the lock-down is applied, it polls twice a second and lifts the lock-down (only the one
whose token it was given) when

- the cfbackup process holding it is gone (killed with -9, crashed, or its PID now belongs to
  another process: the start time is compared), or
- the deadline passes (``deadman_timeout`` after the start, or ``lock --timeout``).

While neither happens it also keeps the lock-down in force: when its table or chain vanishes
although nobody lifted it (the record is still there), e.g. ``systemctl reload nftables`` loading
a ruleset that starts with ``flush ruleset``, it re-applies it at once from the rules in the
record, logs a warning and notes the time in the record, so the owner warns at its end (the
restore keeps running: it is locked down again within half a second). It ends quietly when the
lock-down is lifted by its owner or by ``cfbackup firewall unlock`` (the record disappears) or
on SIGTERM.
It is double-forked into its own session so that neither kill -9 of cfbackup, a Ctrl-C in the
terminal, nor cfbackup's "children die with me" rule (PR_SET_PDEATHSIG) takes it down; its
output goes to ``STATE_DIR/firewall/deadman.log``.

Run as ``python -m cfbackup_firewall_lockdown.deadman --state-dir DIR --token TOKEN``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

from cfbackup import execute
from cfbackup.redact import RedactingFilter
from cfbackup_firewall_lockdown import backends, lift
from cfbackup_firewall_lockdown.record import (
    RECORD,
    decode_rules,
    exclusive,
    firewall_dir,
    process_alive,
    read_record,
    write_json,
)

POLL_SECONDS = 0.5
log = logging.getLogger("cfbackup.firewall_lockdown.deadman")


def spawn(state_dir: Path, token: str) -> int:
    """Start the dead-man for the recorded lock-down ``token``; returns its PID once it runs."""
    argv = [sys.executable, "-m", "cfbackup_firewall_lockdown.deadman", "--daemonize",
            "--state-dir", str(state_dir), "--token", token]
    result = execute.capture(argv, timeout=20)
    pid = result.stdout.strip()
    if result.returncode != 0 or not pid.isdigit():
        detail = " ".join(result.tail[-2:]) or f"exit {result.returncode}"
        raise backends.FirewallError(
            f"the firewall dead-man could not be started ({detail}): the firewall was not "
            f"changed; see {firewall_dir(state_dir) / 'deadman.log'}.")
    return int(pid)


def _daemonize(log_path: Path) -> None:
    """Double fork; returns in the detached grandchild only. The first process prints the
    grandchild's PID once the grandchild has let go of the caller's pipes, then exits."""
    read_end, write_end = os.pipe()
    first = os.fork()
    if first > 0:
        os.close(write_end)
        data = b""
        while chunk := os.read(read_end, 64):
            data += chunk
        os.waitpid(first, 0)
        sys.stdout.write(data.decode())
        sys.stdout.flush()
        os._exit(0 if data.strip() else 1)
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)
    os.write(write_end, f"{os.getpid()}\n".encode())
    os.close(write_end)


def _why_lift(record: dict) -> str | None:
    owner, start = record.get("owner_pid"), record.get("owner_start")
    if owner and not process_alive(owner, start):
        return f"cfbackup (pid {owner}) ended without lifting it"
    deadline = record.get("deadline")
    if deadline and time.time() >= deadline:
        return f"its timeout of {deadline - record['since']:.0f} s passed"
    return None


def _keep_in_force(backend: backends.Backend, state_dir: Path, record: dict, seen: bool,
                   failing: bool) -> tuple[bool, bool]:
    """Re-apply the lock-down if it vanished after it was in force (``seen``) while its record
    says nobody lifted it; returns the new (seen, failing)."""
    try:
        if backend.lockdown_info() is not None:
            return True, False
    except backends.FirewallError as error:  # a passing failure must not end the watch
        log.warning("could not read the lock-down (%s): trying again", error)
        return seen, failing
    if not seen:  # not applied yet (or its application failed): nothing to keep
        return False, failing
    token, rules = record["token"], decode_rules(record.get("rules"))
    if rules is None:
        if not failing:
            log.error("lock-down %s was removed by something else, and its record has no rules "
                      "to re-apply it with: the host is not locked down", token)
        return seen, True
    try:
        backend.remove_lockdown()  # what is left of it (iptables: the other IP family's chain)
        backend.apply_lockdown(rules, backends.comment_for(token, record["since"],
                                                           record.get("owner_pid")))
    except backends.FirewallError as error:
        if not failing:
            log.error("lock-down %s was removed by something else and could not be re-applied "
                      "(%s): the host is not locked down; retrying every %s s", token, error,
                      POLL_SECONDS)
        return seen, True
    log.warning("lock-down %s was removed by something else while it was held (a firewall "
                "reload such as systemctl reload nftables?): re-applied", token)
    record["reapplied"] = [*record.get("reapplied", []), time.time()]
    write_json(firewall_dir(state_dir) / RECORD, record)
    return seen, False


def watch(state_dir: Path, token: str) -> int:
    record = read_record(state_dir)
    if not record or record.get("token") != token:
        log.info("lock-down %s: no record, nothing to watch", token)
        return 0
    backend = backends.from_description(record["backend"])
    log.info("watching lock-down %s (owner pid %s, deadline %s)", token,
             record.get("owner_pid"), record.get("deadline"))
    seen = failing = False
    while True:
        with exclusive(state_dir):  # an unlock removes table and record together
            record = read_record(state_dir)
            if not record or record.get("token") != token:
                log.info("lock-down %s was lifted by its owner: done", token)
                return 0
            reason = _why_lift(record)
            if reason:
                break
            seen, failing = _keep_in_force(backend, state_dir, record, seen, failing)
        time.sleep(POLL_SECONDS)
    log.warning("lifting lock-down %s: %s", token, reason)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # finish what we started
    result = lift.unlock(backend, state_dir, token=token)
    log.warning("lock-down %s %s", token, "lifted" if result.removed else "was already gone")
    if result.drift:
        log.warning("%s", result.drift)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cfbackup-firewall-deadman")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--token", required=True)
    parser.add_argument("--daemonize", action="store_true")
    args = parser.parse_args(argv)
    if args.daemonize:
        _daemonize(firewall_dir(args.state_dir, create=True) / "deadman.log")
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s dead-man[{os.getpid()}] %(levelname)s %(message)s")
    )
    handler.addFilter(RedactingFilter())  # its log and a traceback: credentials masked
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    try:
        return watch(args.state_dir, args.token)
    except Exception:
        log.exception("the dead-man failed: run cfbackup firewall unlock by hand")
        return 1


if __name__ == "__main__":
    sys.exit(main())
