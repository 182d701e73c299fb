"""What one duplicity command left behind: its argv, exit code, machine-log records, the tail
of its output and its environment; what ``run.py`` returns and ``failures.py`` reads."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from cfbackup import units
from cfbackup.config.model import Profile
from cfbackup.duplicity import launcher, machinelog


@dataclasses.dataclass
class DuplicityResult:
    argv: tuple[str, ...]
    returncode: int
    records: list[machinelog.Record]
    output_tail: tuple[str, ...]
    statistics: dict = dataclasses.field(default_factory=dict)
    # the run's environment (secrets: never shown), for the diagnosis of a Keystone failure
    env: Mapping[str, str] | None = dataclasses.field(default=None, repr=False, compare=False)
    # the profile it ran for: the fix commands a failure suggests name it
    profile: Profile | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def command(self) -> str:
        """duplicity's command word (``backup``, ``restore``...), also behind the launcher."""
        words = self.argv[3:] if self.argv[1:3] == ("-m", launcher.MODULE) else self.argv[1:]
        return words[0] if words else ""

    def records_with(self, level: str, code: int | None = None) -> list[machinelog.Record]:
        return [r for r in self.records if r.level == level and (code is None or r.code == code)]

    @property
    def unreadable(self) -> list[str]:
        """The files duplicity could not read, each once, as ``list`` prints names
        (``units.pasteable``): the message asks to fix their permissions or exclude them, so a
        name must be unambiguous (an ESC is not the text ``\\x1b``) and pasteable into chmod."""
        codes = {
            machinelog.WARNING_CANNOT_READ,
            machinelog.WARNING_CANNOT_STAT,
            machinelog.WARNING_CANNOT_ITERATE,
            machinelog.WARNING_CANNOT_PROCESS,
        }
        # duplicity warns twice about a file it cannot read (signatures, then data): once here,
        # by the name itself (two names can look alike once spelled out)
        named = dict.fromkeys(
            (machinelog.file_name(r.extra), True) if r.extra else (r.message, False)
            for r in self.records
            if r.level == "WARNING" and r.code in codes and not _OWN_STATE.match(r.message)
        )
        return [units.pasteable(text) if is_name else text for text, is_name in named]

    @property
    def not_processed(self) -> dict[str, str]:
        """The entries duplicity could not process (restore, verify) and went on without, each
        once, as os.fsdecode gives their names (relative to what the command restored: ``.``
        is that itself), with the reason duplicity gave: its ``Error '...' processing NAME``
        (a mknod refused without CAP_MKNOD, a mount point busy, a permission denied, a delta
        that did not apply) and the entries it then skipped inside such a folder. duplicity
        logs them as warnings and still exits 0."""
        found: dict[str, str] = {}
        for record in self.records:
            if record.level != "WARNING" or not record.extra:
                continue
            if record.code == machinelog.WARNING_CANNOT_PROCESS:
                said = _CANNOT_PROCESS.match(record.message)
                reason = said[1] if said else record.message
            elif record.code == machinelog.WARNING_PROCESS_SKIPPED:
                reason = "skipped: the folder it is in could not be restored"
            else:
                continue
            found.setdefault(machinelog.file_name(record.extra), reason.strip())
        return found

    def not_processed_under(self, path: str | None) -> dict[str, str]:
        """:attr:`not_processed` by their paths in the backup, for a command that restored
        ``path`` (duplicity names them relative to it, ``.`` for ``path`` itself; None: the
        whole backup)."""
        return {
            ((path or ".") if name == "." else f"{path}/{name}" if path else name): reason
            for name, reason in self.not_processed.items()
        }


# lazy.ITRBranch.on_error and patchdir.integrate_patch_iters: "Error '<exception>' processing
# <name>" ("patching" when a delta did not apply); the name is the record's extra
_CANNOT_PROCESS = re.compile(r"Error '(.*)' (?:processing|patching) ", re.S)

# duplicity's own progress file in the archive dir, cut short by a kill -9 of the run before:
# it warns with the code of an unreadable source file and starts afresh; no file was skipped
_OWN_STATE = re.compile(r"WARNING\. cannot read stored progress info from previous backup")
