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
    # a backup's checks share one connection and listing of the target (swift.TargetView);
    # set from the start of the checks until duplicity starts, None otherwise
    target_view: Any = None

    @property
    def dry_run(self) -> bool:
        return bool(self.options.get("dry_run"))

    def plugin_config(self, section: str) -> dict[str, Any]:
        return self.profile.plugin_config(section)


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

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK

    @property
    def result(self) -> str:
        return "success" if self.ok else ExitCode(self.exit_code).name.lower()
