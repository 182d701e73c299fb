"""Lift a lock-down: what its owner, ``cfbackup firewall unlock`` and the dead-man all do.

Only what the lock-down added is removed (its table or chain), so the other tables and chains
are exactly as they were; the ruleset is then compared with the copy saved before the
lock-down, and a difference is reported (``reload_saved`` puts the saved copy back whole).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from cfbackup.errors import CfbackupError, ExitCode
from cfbackup_firewall_lockdown import backends
from cfbackup_firewall_lockdown.record import (
    call_off_deadman,
    drop_record,
    exclusive,
    firewall_dir,
    keep_saved,
    read_kept,
    read_record,
    read_saved,
    stop_deadman,
)


@dataclasses.dataclass
class Unlocked:
    removed: bool
    drift: str | None = None  # how the ruleset now differs from the saved one, if it does
    record: dict[str, Any] | None = None
    reloaded_from: list[Path] | None = None  # the kept copy reloaded (no lock-down record)


def has_kept(backend: backends.Backend, state_dir: Path) -> bool:
    return bool(read_kept(state_dir, backend.saved_names))


def unlock(backend: backends.Backend, state_dir: Path, *, token: str | None = None,
           reload_saved: bool = False) -> Unlocked:
    """Lift the lock-down (only the one with ``token`` when given); idempotent.

    ``reload_saved`` loads the saved copy back: the lock-down's own, else (its record gone)
    the copy kept when an earlier lock-down ended with the ruleset changed."""
    with exclusive(state_dir):
        record = read_record(state_dir)
        if token is not None and record is not None and record.get("token") != token:
            record = None
        if token is None:  # whoever holds it: its dead-man must not re-apply it
            _call_off_other(backend, state_dir, record)
        removed = backend.remove_lockdown(token)
        saved = read_saved(record) if record else None
        reloaded_from = None
        if reload_saved:
            if saved is None and token is None:
                kept = read_kept(state_dir, backend.saved_names)
                saved = {name: path.read_text(encoding="utf-8") for name, path in kept.items()}
                reloaded_from = list(kept.values())
            if not saved:
                raise CfbackupError(
                    f"no saved ruleset was found in {firewall_dir(state_dir)} (a copy is "
                    "kept only when a lock-down ended with the ruleset changed): lift the "
                    "lock-down without --reload-saved.", exit_code=ExitCode.REFUSED)
            backend.reload_saved(saved)
        drift = None
        if saved is not None:
            now = backend.save()
            changed = [name for name, text in saved.items()
                       if backend.normalize(text) != backend.normalize(now.get(name, ""))]
            if changed and record is not None:
                kept_files, replaced = keep_saved(state_dir, record)
                where = ", ".join(str(p) for p in kept_files) or str(firewall_dir(state_dir))
                drift = (f"the ruleset ({', '.join(changed)}) differs from the copy saved before "
                         f"the lock-down: something else changed it meanwhile; the saved copy is "
                         f"kept in {where}" +
                         (" (replacing the one kept from an earlier lock-down)" if replaced
                          else ""))
        if record is not None:
            drop_record(state_dir, record["token"])
            stop_deadman(record)
    return Unlocked(removed, drift, record, reloaded_from)


def _call_off_other(backend: backends.Backend, state_dir: Path,
                    record: dict[str, Any] | None) -> None:
    """A lock-down in force that is not the one recorded here (another state dir's): stop its
    dead-man and drop its record, so that it is lifted, not re-applied or left "held"."""
    info = backend.lockdown_info()
    if info is None or not info.token or (record and record.get("token") == info.token):
        return
    other = call_off_deadman(info.token)
    if other is not None and Path(other).resolve() != Path(state_dir).resolve():
        with exclusive(other):
            drop_record(other, info.token)
