"""Lock the firewall down, hold it around a run, and say whether one is in force.

Lifecycle of a lock-down (every step is undone if a later one fails, so nothing is
half-applied):

1. refuse unless we may change the firewall (CAP_NET_ADMIN, i.e. root);
2. under a file lock, look for a lock-down already in force: one whose holder still runs is
   left alone (a restore refuses to start beside it), an orphaned one (its owner and its
   dead-man gone) is taken over, a foreign table or chain of the same name is refused;
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
from cfbackup.errors import CfbackupError, ExitCode, LockHeld, RunRefused
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
    read_saved,
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


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who answers for a lock-down in force: its owner process and its dead-man, from the
    record (when it belongs to this lock-down) and the kernel's comment."""

    record: dict[str, Any] | None
    owner_pid: int | None
    owner_alive: bool
    deadman_pid: int | None
    deadman_alive: bool

    @property
    def orphaned(self) -> bool:
        """Someone was to lift it (an owner, a dead-man) and none of them runs any more
        (kill -9 of both, an OOM kill of the unit, a reboot with the ruleset saved while
        locked). A lock by hand without a dead-man (``lock --timeout 0``) is nobody's to
        lift but ``unlock``'s: not orphaned."""
        answerable = self.owner_pid is not None or self.deadman_pid is not None
        return answerable and not self.owner_alive and not self.deadman_alive


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read()
    except OSError:
        return b""


def holder(info: backends.LockInfo, state_dir: Path) -> Holder:
    """The owner and dead-man of the lock-down ``info`` (read under :func:`exclusive`, or for
    display). Without its record, the owner is the PID in the comment if it is still a cfbackup
    process, and no dead-man watches it (a dead-man needs the record)."""
    record = read_record(state_dir)
    if record is not None and (info.foreign or record.get("token") != info.token):
        record = None  # the record belongs to another (or no) lock-down
    if record is not None:
        owner = record.get("owner_pid")
        owner_alive = bool(owner) and process_alive(owner, record.get("owner_start"))
        deadman = record.get("deadman_pid")
        # its command line carries the token: a reused PID (after a reboot) is not it
        deadman_alive = bool(deadman) and process_alive(deadman, None) and \
            info.token.encode() in _cmdline(deadman)
        return Holder(record, owner, owner_alive, deadman, deadman_alive)
    owner = info.pid
    owner_alive = bool(owner) and process_alive(owner, None) and b"cfbackup" in _cmdline(owner)
    return Holder(None, owner, owner_alive, None, False)


def orphan_advice(info: backends.LockInfo, who: Holder) -> str:
    """One sentence for an orphaned lock-down: what it is, why nobody lifts it, the fix."""
    held = (who.record or {}).get("reason") or "cfbackup"
    pid = f" (pid {who.owner_pid})" if who.owner_pid else ""
    return (f"the firewall lock-down in force since {_stamp(info.since)} ({info.where}) is "
            f"orphaned: {held}{pid} and its dead-man are gone, so nobody will lift it; run "
            f"{suggest.command('firewall', 'unlock')} once the host is ready to be reachable "
            "(the next restore with the lock-down enabled takes it over).")


def _stamp(since: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "an unknown time"


# --- lock, unlock, status ----------------------------------------------------------------------


@dataclasses.dataclass
class Locked:
    """The outcome of :func:`lock`: ours (with a token), or one that was already in force (and
    who holds it); ``took_over``: the orphaned lock-down ours replaced."""

    backend: backends.Backend
    token: str | None
    since: float
    deadline: float | None
    deadman_pid: int | None
    already: backends.LockInfo | None = None
    holder: Holder | None = None
    took_over: tuple[backends.LockInfo, Holder] | None = None


def lock(settings: Settings, backend: backends.Backend, state_dir: Path, *,
         owner_pid: int | None, timeout: int, reason: str) -> Locked:
    """Apply the lock-down. One in force whose holder still runs is reported, not replaced; an
    orphaned one is taken over (replaced by ours in one transaction: the host is never open in
    between, and its saved ruleset, from before it, is kept); a foreign one is refused."""
    from cfbackup_firewall_lockdown import deadman

    with exclusive(state_dir):
        present = backend.lockdown_info()
        orphan = None
        if present is not None:
            if present.foreign:
                raise present.foreign_error("no lock-down was applied")
            who = holder(present, state_dir)
            if not who.orphaned:
                return Locked(backend, None, present.since or 0, None, None, already=present,
                              holder=who)
            orphan = (present, who)
        saved = _orphan_saved(orphan[1]) if orphan else None
        if saved is None:
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
                                   backends.comment_for(token, since, owner_pid),
                                   replace=orphan is not None)
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
    return Locked(backend, token, since, deadline, deadman_pid, took_over=orphan)


def _orphan_saved(who: Holder) -> dict[str, str] | None:
    """The orphan's saved ruleset (from before it), when its record still names it: saving
    now would record the orphan's own table as part of "the ruleset"."""
    if who.record is None or not who.record.get("saved") or read_saved(who.record) is None:
        return None
    return dict(who.record["saved"])


def status(backend: backends.Backend, state_dir: Path) -> dict[str, Any]:
    """What is in force, from the kernel first and the record second; ``orphaned``: nobody
    will lift it (``advice`` says what to run), ``foreign``: not cfbackup's."""
    info = backend.lockdown_info()
    state: dict[str, Any] = {"locked": info is not None, "backend": backend.name}
    if info is None:
        return state
    state.update(where=info.where, since=info.since, token=info.token or None,
                 owner_pid=info.pid, dropped_packets=info.dropped, foreign=info.foreign)
    if info.foreign:  # no lock-down is in force: nothing of cfbackup's filters the host
        advice = str(info.foreign_error("it is no lock-down of cfbackup's"))
        state.update(locked=False, orphaned=False, advice=advice)
        return state
    who = holder(info, state_dir)
    state.update(owner_pid=who.owner_pid, owner_alive=who.owner_alive,
                 deadman_pid=who.deadman_pid, deadman_alive=who.deadman_alive,
                 orphaned=who.orphaned)
    if who.record:
        record = who.record
        state.update(reason=record.get("reason"), deadline=record.get("deadline"),
                     saved=record.get("saved"))
    if who.orphaned:
        state["advice"] = orphan_advice(info, who)
    return state


def check_row(backend: backends.Backend, state_dir: Path) -> tuple[str, bool, str]:
    """``cfbackup check``'s row for the lock-down in force: a failure when it is orphaned or
    foreign (the host stays locked, or a restore would be refused)."""
    state = status(backend, state_dir)
    if state.get("advice"):
        return ("firewall lock-down in force", False, state["advice"])
    if not state["locked"]:
        return ("firewall lock-down in force", True, "none")
    held = state.get("reason") or "by hand"
    return ("firewall lock-down in force", True,
            f"since {_stamp(state.get('since'))}, held by {held}")


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
        who = locked.holder
        if who is not None and who.owner_pid is not None:
            # relying on it would leave this run open once that run lifts it at its end, and
            # with that run's allow-list instead of this profile's
            held = (who.record or {}).get("reason") or "another cfbackup run"
            since = _stamp(locked.already.since)
            if who.owner_alive:
                raise LockHeld(f"the firewall lock-down is held by {held} (pid "
                               f"{who.owner_pid}, since {since}): run this restore again once "
                               "that run has ended.")
            raise LockHeld(f"the dead-man (pid {who.deadman_pid}) is lifting the firewall "
                           f"lock-down of {held} (pid {who.owner_pid}, ended): run this "
                           "restore again in a few seconds.")
        logger.warning("a firewall lock-down is already in force (%s, locked by hand): the run "
                       "keeps it and leaves it in force", locked.already.where)
        yield locked
        return
    if locked.took_over is not None:
        info, who = locked.took_over
        held = (who.record or {}).get("reason") or "cfbackup"
        logger.warning("took over the orphaned firewall lock-down in force since %s (%s, whose "
                       "owner and dead-man were gone): it now has this profile's rules and is "
                       "lifted at the end of this run", _stamp(info.since), held)
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
