"""duplicity 3.2.1's own text for ``dt-cf-backup -s`` and ``-l``: what ``duplicity
collection-status`` and ``duplicity list-current-files`` print on stdout at their default
verbosity, line for line, so the cron wrappers and monitoring scripts written around the old
dt-cf-backup.sh (grepping ``Last full backup date:`` or ``Chain end time:``, counting lines of
``-l``) read the same text.

The collection comes from :func:`cfbackup.collection.read` (no duplicity, no lock), the files
from ``cfbackup list`` (which runs list-current-files and keeps its notices); the lines
are made as ``dup_main.do_backup``, ``dup_collections.CollectionsStatus.__str__`` and
``BackupChain.__str__`` make them, dates by duplicity's own ``dup_time.timetopretty`` (local
time, ``time.asctime``). duplicity's warnings (stderr) are not repeated.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cfbackup.collection import Collection, _Chain
from cfbackup.units import printable_name

BACKEND = "BackendWrapper"  # the class every duplicity 3 backend is wrapped in
DONE = "Duplicity backup complete."  # duplicity's last notice, whatever the command
SET_ROW = "%20s   %30s   %15s"  # BackupChain.__str__'s set_schema


def pretty(seconds: int) -> str:
    """duplicity's date for people (``Sun Dec  6 07:19:53 2026``)."""
    from duplicity import dup_time

    return dup_time.timetopretty(seconds)


def last_full_line(found: Collection) -> str:
    """The notice every duplicity command prints before its work."""
    last = found.last_full()
    return f"Last full backup date: {pretty(last)}" if last else "Last full backup date: none"


def collection_status(found: Collection, archive_folder: Path) -> list[str]:
    """``duplicity collection-status``'s stdout lines for one chain's collection."""
    lines = [
        last_full_line(found),
        "Collection Status",
        "-----------------",
        f"Connecting with backend: {BACKEND}",
        f"Archive dir: {archive_folder}",
        "",
        f"Found {len(found.other)} secondary backup chain(s).",
    ]
    for number, chain in enumerate(found.other, 1):
        lines.append(f"Secondary chain {number} of {len(found.other)}:")
        lines += _chain(chain, chain.end)
        lines.append("")
    if found.primary:
        end = found.discarded.when if found.discarded else found.primary.end
        lines += ["", "Found primary backup chain with matching signature chain:"]
        lines += _chain(found.primary, end)
    else:
        lines.append("No backup chains with active signatures found")
    if found.orphaned or found.incomplete:
        lines += [
            f"Also found {len(found.orphaned)} backup set(s) not part of any chain,",
            f"and {len(found.incomplete)} incomplete backup set(s).",
            'These may be deleted by running duplicity with the "cleanup" command.',
        ]
    else:
        lines.append("No orphaned or incomplete backup sets found.")
    lines.append(DONE)
    return lines


def _chain(chain: _Chain, end: int) -> list[str]:
    """``BackupChain.__str__``: the full set counts among the sets even without volumes (it is
    then left out of the table, as duplicity leaves it out)."""
    listed = chain.listed()
    lines = [
        "-------------------------",
        f"Chain start time: {pretty(chain.sets[0].when)}",
        f"Chain end time: {pretty(end)}",
        f"Number of contained backup sets: {len(chain.sets)}",
        f"Total number of contained volumes: {sum(len(s.volumes) for s in listed)}",
        SET_ROW % ("Type of backup set:", "Time:", "Num volumes:"),
    ]
    for backup_set in listed:
        kind = "Full" if backup_set.kind == "full" else "Incremental"
        lines.append(SET_ROW % (kind, pretty(backup_set.when), len(backup_set.volumes)))
    lines.append("-------------------------")
    return lines


def list_current_files(notices: list[str], entries: Iterable[dict]) -> list[str]:
    """``duplicity list-current-files``'s stdout lines: ``notices`` are the ones duplicity
    printed before the files when cfbackup ran it (the archive dir's sync, the last full
    backup's date), ``entries`` ``cfbackup list``'s (``time`` as duplicity's machine log writes
    it, ``path`` as os.fsdecode spells it). A name is written as duplicity writes it, but for
    what ``units.printable_name`` spells out: a byte that is not UTF-8 (``caf\\xe9``), a
    control, a newline (it would start a line that passes for another file's), a bidi override
    (U+202E would make the line lie about the name) or a line separator."""
    from duplicity import dup_time

    lines = [*notices]
    lines += [
        f"{pretty(dup_time.stringtotime(e['time']))} {printable_name(e['path'])}" for e in entries
    ]
    lines.append(DONE)
    return lines
