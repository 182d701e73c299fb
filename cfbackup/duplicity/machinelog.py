"""Parse duplicity's machine-readable log (``--log-fd``).

Each record is a control line ``LEVEL CODE [extra...]`` followed by message lines that start
with ``. ``, and a blank line. Codes are duplicity's stable Info/Warning/Error codes.
"""

from __future__ import annotations

import ast
import dataclasses
import re

# duplicity.log InfoCode / WarningCode / ErrorCode values used here
INFO_PROGRESS = 2
INFO_COLLECTION_STATUS = 3
INFO_FILE_LIST = 10
WARNING_CANNOT_STAT = 9
WARNING_CANNOT_READ = 10
WARNING_CANNOT_ITERATE = 8
WARNING_CANNOT_PROCESS = 12
WARNING_PROCESS_SKIPPED = 13  # "Skipping NAME because of previous error" (its folder's)
# duplicity's upload processes (backend_pool) start each message with "Pool1: " (log.PREFIX)
_WORKER = re.compile(r"^(Pool\d+): ")


@dataclasses.dataclass
class Record:
    level: str  # ERROR, WARNING, NOTICE, INFO, DEBUG
    code: int
    extra: str
    message: str
    worker: str = ""  # "Pool1": written by that upload process of duplicity's, not by duplicity


class MachineLogParser:
    """Feed it lines as they arrive; it returns each record when its closing blank line comes.

    The control part may span several lines (collection status puts its chain list there);
    message lines start with ``. ``; a blank line ends the record.
    """

    def __init__(self) -> None:
        self._lines: list[str] = []

    def feed(self, line: str) -> Record | None:
        line = line.rstrip("\n")
        if line.strip() == "":
            return self._finish()
        self._lines.append(line)
        return None

    def close(self) -> Record | None:
        return self._finish()

    def _finish(self) -> Record | None:
        lines, self._lines = self._lines, []
        if not lines:
            return None
        control = [ln for ln in lines if not ln.startswith(".")]
        message = [ln[2:] if ln.startswith(". ") else ln[1:] for ln in lines if ln.startswith(".")]
        head = control[0] if control else ""
        parts = head.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return Record(
                level="UNKNOWN", code=0, extra="\n".join(control), message="\n".join(message)
            )
        extra = "\n".join([parts[2] if len(parts) > 2 else ""] + control[1:]).strip("\n ")
        text = "\n".join(message)
        worker = _WORKER.match(text)
        return Record(
            level=parts[0],
            code=int(parts[1]),
            extra=extra,
            message=text[worker.end() :] if worker else text,
            worker=worker.group(1) if worker else "",
        )


def file_name(escaped: str) -> str:
    """A file name as duplicity writes it in a record's extra (``util.escape``: quoted,
    ``unicode-escape``, ASCII and lossless) back to the name, as os.fsdecode gives it (a byte
    that is not UTF-8 is a surrogate, ``\\udce9``): for ``units.printable`` or ``pasteable``."""
    try:
        name = ast.literal_eval(escaped) if escaped[:1] in "'\"" else escaped
    except (ValueError, SyntaxError):
        name = escaped.strip("'\"")
    if isinstance(name, bytes):
        name = name.decode("utf-8", "surrogateescape")
    return name if isinstance(name, str) else escaped


def parse_collection_status(extra: str) -> dict:
    """The control lines of an ``INFO 3`` record: chains with their sets, orphaned/incomplete."""
    chains: list[dict] = []
    status: dict = {"chains": chains, "orphaned_sets": 0, "incomplete_sets": 0}
    for line in extra.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0].startswith("chain-"):
            chains.append({"state": words[0].removeprefix("chain-"), "sets": []})
        elif words[0] in ("full", "inc") and chains and len(words) >= 3:
            chains[-1]["sets"].append(
                {
                    "type": words[0],
                    "time": words[1],
                    "volumes": int(words[2]) if words[2].isdigit() else None,
                    "encrypted": "enc" in words[3:],
                }
            )
        elif words[0] == "orphaned-sets-num" and len(words) > 1:
            status["orphaned_sets"] = int(words[1])
        elif words[0] == "incomplete-sets-num" and len(words) > 1:
            status["incomplete_sets"] = int(words[1])
    return status


STAT_LINE = re.compile(r"^(\w+) (\S+)(?: \((.*)\))?$")


def parse_statistics(message: str) -> dict[str, float | int | str]:
    """The ``[ Backup Statistics ]`` block duplicity prints at the end of a backup."""
    stats: dict[str, float | int | str] = {}
    for line in message.splitlines():
        match = STAT_LINE.match(line.strip())
        if not match:
            continue
        key, value = match.group(1), match.group(2)
        try:
            stats[key] = int(value)
        except ValueError:
            try:
                stats[key] = float(value)
            except ValueError:
                stats[key] = value
    return stats
