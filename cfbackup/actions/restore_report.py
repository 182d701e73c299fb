"""What a restore says when it is done, or could not do all it was asked: the backup it
restored (not the ``--time`` given), the entries duplicity could not restore, and the command
that restores again, spelled to run as printed. Kept apart from ``actions/restore.py`` (the
action's flow) so that each message is built, and tested, in one place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from cfbackup import chains, suggest
from cfbackup.actions.common import when_of
from cfbackup.duplicity.times import as_typed_later
from cfbackup.runtypes import Run
from cfbackup.units import pasteable, printable_name

log = logging.getLogger("cfbackup")

SHOWN = 3  # the entries a partial restore's message names; the run log has every one
REASON_CHARS = 300


def restore_command(
    run: Run, target: object, rel: str | None, force: bool, when: str | None = None
) -> str:
    """``cfbackup [-c FILE] restore PROFILE TARGET [--path REL] [--time T] [--force]``: this
    restore again, into ``target`` (a name that is not UTF-8 or holds a control character in
    bash's $'...': ``suggest.word``). A relative ``--time`` (3D) is printed as the
    moment it meant: the command runs later. ``when``: another --time than the run's."""
    if when is None and run.options.get("time"):
        when = as_typed_later(run.options["time"], when_of(run))
    words = [
        "restore",
        run.profile.name,
        str(target),
        *(suggest.option("--path", rel) if rel else ()),
        *(("--time", when) if when else ()),
        *(("--force",) if force else ()),
    ]
    return suggest.command(*words)


def from_backup(run: Run, picked: list[chains.Chain]) -> str:
    """With --time, the backup restored (``chains_at_time``: the newest at or before it, as
    duplicity picks it), one per chain when they differ: not the --time given, which may be
    later than any backup, or between two."""
    when = run.options.get("time")
    if not when:
        return ""
    found = run.options.get("restored_backups", {})
    times = {c.label: found[c.label] for c in picked if found.get(c.label) is not None}
    if not times:
        return f" as of --time {when}"
    if len(set(times.values())) == 1:
        which = f"the backup of {_utc(next(iter(times.values())))}"
    else:
        which = "the backups of " + ", ".join(f"{_utc(t)} ({label})" for label, t in times.items())
    return f" from {which} (the newest at or before --time {when})"


def _utc(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))


def not_restored(
    failed: dict[str, str], whole: bool, again: Callable[[str], str | None] | None = None
) -> str:
    """What a restore's message says of the entries duplicity could not restore (``failed``:
    path in the backup -> duplicity's reason): how many, the first few as ``list`` shows names
    (``units.pasteable``, for ``--path``), why, and that the rest is restored (``whole``: what
    was asked for itself was, else only what came with it is kept); each goes to the run
    log. ``again``: the command that restores one of them again, as of the same --time (None:
    none to give)."""
    for name, reason in failed.items():
        log.info("not restored: %s: %s", printable_name(name), printable_name(reason))
    names = list(failed)
    shown = ", ".join(pasteable(name) for name in names[:SHOWN])
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    why = printable_name(failed[names[0]])[:REASON_CHARS]
    if len(set(failed.values())) > 1:
        why = f"for the first: {why}; the run log has each one's"
    if not whole and len(names) == 1:  # what was asked for, alone: the message names it
        return f"duplicity: {why}; fix the cause, then restore it again."
    count = f"{len(names)} entr{'y' if len(names) == 1 else 'ies'}"
    return (
        f"{count} could not be restored: {shown}{more} (duplicity: {why}); "
        + ("everything else was restored and is kept" if whole else "what was restored is kept")
        + ": fix the cause, then restore "
        + (_again(names[0], again) if whole else "it again.")
    )


def _again(name: str, again: Callable[[str], str | None] | None) -> str:
    """The command that restores ``name`` again (None from ``again``: dt-cf-backup's exact
    destination, which has none to give)."""
    command = again(name) if again else None
    if command is None:
        return "those paths again with --path."
    return f"each again with --path ({command})."
