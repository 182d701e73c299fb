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
    drop_record,
    exclusive,
    firewall_dir,
    read_record,
    read_saved,
    stop_deadman,
)


@dataclasses.dataclass
class Unlocked:
    removed: bool
    drift: str | None = None  # how the ruleset now differs from the saved one, if it does
    record: dict[str, Any] | None = None


def unlock(backend: backends.Backend, state_dir: Path, *, token: str | None = None,
           reload_saved: bool = False) -> Unlocked:
    """Lift the lock-down (only the one with ``token`` when given); idempotent."""
    with exclusive(state_dir):
        record = read_record(state_dir)
        if token is not None and record is not None and record.get("token") != token:
            record = None
        removed = backend.remove_lockdown(token)
        saved = read_saved(record) if record else None
        if reload_saved:
            if saved is None:
                raise CfbackupError(
                    "no saved ruleset was found in "
                    f"{firewall_dir(state_dir)}: lift the lock-down without --reload-saved.",
                    exit_code=ExitCode.REFUSED)
            backend.reload_saved(saved)
        drift = None
        if saved is not None:
            now = backend.save()
            changed = [name for name, text in saved.items()
                       if backend.normalize(text) != backend.normalize(now.get(name, ""))]
            if changed:
                drift = (f"the ruleset ({', '.join(changed)}) differs from the copy saved before "
                         f"the lock-down: something else changed it meanwhile; the saved copy is "
                         f"in {firewall_dir(state_dir)}")
        if record is not None:
            drop_record(state_dir, record["token"])
            stop_deadman(record)
    return Unlocked(removed, drift, record)
