"""Lock the firewall down, hold it around a run, and say whether one is in force.

Lifecycle of a lock-down (every step is undone if a later one fails, so nothing is
half-applied):

1. refuse unless we may change the firewall (CAP_NET_ADMIN, i.e. root);
2. under a file lock, look for a lock-down already in force (then leave it alone);
3. save the whole ruleset to ``STATE_DIR/firewall/saved-ruleset.*`` (mode 0600);
4. write the record ``lockdown.json`` (token, start, owner process, deadline, backend, rules);
5. start the dead-man (:mod:`.deadman`) and wait until it is watching;
6. add the lock-down in one transaction, its comment carrying start time and token.

The record and the saved ruleset live in :mod:`.record`; lifting the lock-down (:mod:`.lift`)
removes only what step 6 added, and is shared with ``cfbackup firewall unlock`` and the dead-man.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cfbackup import suggest
from cfbackup.errors import CfbackupError, ExitCode, RunRefused
from cfbackup_firewall_lockdown import backends
from cfbackup_firewall_lockdown.lift import unlock
from cfbackup_firewall_lockdown.record import (
    RECORD,
    drop_record,
    encode_rules,
    exclusive,
    firewall_dir,
    process_alive,
    process_start,
    read_record,
    save_ruleset,
    stop_deadman,
    write_json,
)
from cfbackup_firewall_lockdown.settings import Settings

log = logging.getLogger("cfbackup.firewall_lockdown")

DEFAULT_STATE_DIR = Path("/var/lib/cfbackup")
_CAP_NET_ADMIN = 12


def can_change_firewall() -> bool:
    """True when this process holds CAP_NET_ADMIN (root has it), which nft and iptables need."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_NET_ADMIN & 1)
    except OSError:
        pass
    return os.geteuid() == 0


def require_admin(command: str, *, verb: str = "changes") -> None:
    if not can_change_firewall():
        raise RunRefused(f"{command} {verb} the firewall, which needs root (CAP_NET_ADMIN): "
                         "run it as root, e.g. with sudo.")


# --- lock, unlock, status ----------------------------------------------------------------------


@dataclasses.dataclass
class Locked:
    """The outcome of :func:`lock`: ours (with a token), or one that was already in force."""

    backend: backends.Backend
    token: str | None
    since: float
    deadline: float | None
    deadman_pid: int | None
    already: backends.LockInfo | None = None


def lock(settings: Settings, backend: backends.Backend, state_dir: Path, *,
         owner_pid: int | None, timeout: int, reason: str) -> Locked:
    """Apply the lock-down (idempotent: an existing one is reported, not replaced)."""
    from cfbackup_firewall_lockdown import deadman

    with exclusive(state_dir):
        present = backend.lockdown_info()
        if present is not None:
            return Locked(backend, None, present.since or 0, None, None, already=present)
        saved = save_ruleset(backend, state_dir)
        token = secrets.token_hex(6)
        since = time.time()
        deadline = since + timeout if timeout > 0 else None
        record = {
            "token": token, "since": since, "deadline": deadline, "reason": reason,
            "backend": backend.describe(), "saved": saved,
            "owner_pid": owner_pid,
            "owner_start": process_start(owner_pid) if owner_pid else None,
            "deadman_pid": None,
            "rules": encode_rules(settings.lockdown_rules),  # the dead-man re-applies them
        }
        write_json(firewall_dir(state_dir) / RECORD, record)
        deadman_pid = None
        try:
            if deadline is not None or owner_pid is not None:
                deadman_pid = deadman.spawn(state_dir, token)
                record["deadman_pid"] = deadman_pid
                write_json(firewall_dir(state_dir) / RECORD, record)
            backend.apply_lockdown(settings.lockdown_rules,
                                   backends.comment_for(token, since, owner_pid))
        except BaseException:
            cleaned = False
            with contextlib.suppress(Exception):  # an interrupted nft may have committed
                backend.remove_lockdown(token)
                cleaned = True
            if cleaned:  # else the dead-man stays, to lift it once this process is gone
                drop_record(state_dir, token)
                stop_deadman(record)
            raise
    log.info("firewall lock-down in force (%s, token %s)", backend.name, token)
    return Locked(backend, token, since, deadline, deadman_pid)


def status(backend: backends.Backend, state_dir: Path) -> dict[str, Any]:
    """What is in force, from the kernel first and the record second."""
    info = backend.lockdown_info()
    record = read_record(state_dir)
    if record and info and record.get("token") != info.token:
        record = None  # the record belongs to another (or no) lock-down
    state: dict[str, Any] = {"locked": info is not None, "backend": backend.name}
    if info is None:
        return state
    state.update(where=info.where, since=info.since, token=info.token, owner_pid=info.pid,
                 dropped_packets=info.dropped)
    if record:
        state.update(reason=record.get("reason"), deadline=record.get("deadline"),
                     deadman_pid=record.get("deadman_pid"),
                     deadman_alive=bool(record.get("deadman_pid"))
                     and process_alive(record["deadman_pid"], None),
                     saved=record.get("saved"))
    return state


@contextlib.contextmanager
def hold(settings: Settings, state_dir: Path, *, reason: str,
         logger: logging.Logger = log) -> Iterator[Locked]:
    """The lock-down around a run: on whatever exit (success, error, SIGINT/SIGTERM) it is
    lifted; if cfbackup dies without getting here, the dead-man lifts it."""
    require_admin("a restore with firewall_lockdown enabled")
    backend = backends.detect(settings.backend)
    locked = lock(settings, backend, state_dir, owner_pid=os.getpid(),
                  timeout=settings.deadman_timeout, reason=reason)
    if locked.already is not None:
        logger.warning("a firewall lock-down is already in force (%s): the run keeps it and "
                       "leaves it in force", locked.already.where)
        yield locked
        return
    limit = f", lifted at the latest after {settings.deadman_timeout} s" \
        if locked.deadline else ""
    logger.info("firewall locked down with %s (dead-man pid %s%s)", backend.name,
                locked.deadman_pid, limit)
    try:
        yield locked
    except BaseException:
        _release(backend, state_dir, locked, logger, quiet=True)
        raise
    _release(backend, state_dir, locked, logger, quiet=False)


def _release(backend: backends.Backend, state_dir: Path, locked: Locked,
             logger: logging.Logger, *, quiet: bool) -> None:
    try:
        result = unlock(backend, state_dir, token=locked.token)
    except (CfbackupError, OSError) as error:
        message = (f"the firewall lock-down could not be lifted ({error}): the dead-man "
                   f"(pid {locked.deadman_pid}) lifts it once cfbackup has exited, or run "
                   f"{suggest.command('firewall', 'unlock')}.")
        if quiet:
            logger.error("%s", message)
            return
        raise CfbackupError(message, exit_code=ExitCode.REFUSED) from None
    deadman_log = firewall_dir(state_dir) / "deadman.log"
    reapplied = (result.record or {}).get("reapplied") or []
    if reapplied:
        logger.warning("the firewall lock-down was removed by something else %d time(s) during "
                       "the run (first at %s; a firewall reload such as systemctl reload "
                       "nftables?) and the dead-man re-applied it within a second each time; see "
                       "%s", len(reapplied),
                       time.strftime("%H:%M:%S", time.localtime(reapplied[0])), deadman_log)
    if not result.removed:
        logger.warning("%s", _why_gone(result.record, locked, deadman_log))
    else:
        logger.info("firewall lock-down lifted, ruleset restored")
    if result.drift:
        logger.warning("%s", result.drift)


def _why_gone(record: dict[str, Any] | None, locked: Locked, deadman_log: Path) -> str:
    """Why the run's lock-down was no longer in force at its end, as far as can be told."""
    if record is None and locked.deadline is not None and time.time() >= locked.deadline:
        return (f"the firewall lock-down was lifted before the run ended, by the dead-man at its "
                f"timeout of {locked.deadline - locked.since:.0f} s: raise deadman_timeout for "
                "long restores")
    if record is None:
        return ("the firewall lock-down was lifted before the run ended (by "
                f"{suggest.command('firewall', 'unlock')}, or by the dead-man: see {deadman_log})")
    return ("the firewall lock-down was removed by something else during the run (a firewall "
            "reload such as systemctl reload nftables?) and the dead-man could not re-apply it, "
            f"so the host was not locked down for the rest of the run: see {deadman_log}")
