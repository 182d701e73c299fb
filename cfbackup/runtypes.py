"""What a run is and what it ends with: the types hooks, actions and the runner share.

Apart from ``runner.py`` (which drives a run) so that the plugin contract (``hookspecs.py``) and
the actions can name these types without importing the runner, its lock and its plugin manager.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

from cfbackup.config.model import Config, Profile
from cfbackup.errors import ExitCode

log = logging.getLogger("cfbackup")


@dataclasses.dataclass
class Run:
    """What a hook sees of the run in progress."""

    config: Config
    profile: Profile
    action: str
    options: dict[str, Any]
    hooks: Any
    started: float = dataclasses.field(default_factory=time.time)
    log_file: Path | None = None
    log: logging.Logger = log
    # a run's checks share one connection and listing of the target (swift.TargetView): a
    # backup's from the start of its checks until duplicity starts; restore's, verify's,
    # list's, prune's and cleanup's for the whole run (listed again after a duplicity that
    # deletes: actions/common.target_view); None otherwise
    target_view: Any = None

    @property
    def dry_run(self) -> bool:
        return bool(self.options.get("dry_run"))

    @property
    def kind(self) -> str:
        """What this run checks or does, as status and the metrics tell runs apart."""
        return kind_of(self.action, self.options)

    @property
    def marks(self) -> dict[str, Any]:
        """What the run history records of this run's kind from its start, whatever way it
        ends (a failure, Ctrl-C, kill -9): a ``verify --read-data`` is not a plain verify,
        a ``drill --from-nothing`` not a plain drill (``actions/status.last_checks``), a
        ``--dry-run`` not a run that changed anything (``history.NOT_DRY``)."""
        kind = self.kind
        marks: dict[str, Any] = {"dry_run": True} if self.dry_run else {}  # changed nothing
        if kind == "read-data":
            marks["read_data"] = self.options.get("read_data") or "all"
        if kind == "drill-from-nothing":
            marks["from_nothing"] = True
        return marks

    def plugin_config(self, section: str) -> dict[str, Any]:
        return self.profile.plugin_config(section)


def kind_of(action: str, options: dict[str, Any]) -> str:
    """``verify --read-data`` is ``read-data`` and ``drill --from-nothing`` is
    ``drill-from-nothing``: each proves something the plain command does not (docs/checks.md),
    so a plain one passing after it must not hide its failure; any other run is its action."""
    if action == "verify" and options.get("read_data") is not None:
        return "read-data"
    if action == "drill" and options.get("from_nothing"):
        return "drill-from-nothing"
    return action


@dataclasses.dataclass
class RunResult:
    profile: str
    action: str
    exit_code: ExitCode = ExitCode.OK
    message: str = ""
    stats: dict[str, Any] = dataclasses.field(default_factory=dict)
    data: Any = None  # action-specific payload (file list, status)
    error: BaseException | None = None
    duration: float = 0.0
    # what went wrong beside a success, already logged (stderr, run log): kept in the history
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK

    @property
    def result(self) -> str:
        return "success" if self.ok else ExitCode(self.exit_code).name.lower()
