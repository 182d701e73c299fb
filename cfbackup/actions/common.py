"""Steps several actions share: preparing duplicity's environment, running one command."""

from __future__ import annotations

import logging
from collections.abc import Callable

from cfbackup import gpgkeys
from cfbackup.duplicity.environment import duplicity_environment
from cfbackup.duplicity.run import DuplicityResult, run_duplicity
from cfbackup.errors import ConfigError
from cfbackup.runner import Run

log = logging.getLogger("cfbackup")


def prepare(run: Run, *, need_secret_key: bool = False) -> dict[str, str]:
    """Resolve secrets and check keys before anything touches the target."""
    profile = run.profile
    env = duplicity_environment(profile)
    gpgkeys.check_keys(profile, need_secret=need_secret_key)
    profile.archive_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return env


def check_source(run: Run) -> None:
    source = run.profile.source
    if not source.is_dir():
        raise ConfigError(
            f"profiles.{run.profile.name}.source: {source} is not a directory: fix the path."
        )


def duplicity(
    run: Run, build: Callable[[int], tuple[str, ...]], env: dict[str, str], **kwargs
) -> DuplicityResult:
    progress = run.options.get("progress")
    on_record = progress.on_record if progress else None
    return run_duplicity(build, env, on_record=on_record, **kwargs)
