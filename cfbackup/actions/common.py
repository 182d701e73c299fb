"""Steps several actions share: preparing duplicity's environment, running one command."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from cfbackup import chains, gpgkeys
from cfbackup.duplicity import patches
from cfbackup.duplicity.environment import duplicity_environment
from cfbackup.duplicity.run import DuplicityResult, WarmDuplicity, run_duplicity
from cfbackup.errors import CfbackupError, ConfigError, ExitCode
from cfbackup.runtypes import Run

log = logging.getLogger("cfbackup")


def prepare(run: Run, *, need_secret_key: bool = False) -> dict[str, str]:
    """Resolve secrets and check keys before anything touches the target."""
    profile = run.profile
    env = duplicity_environment(profile)
    for warning in gpgkeys.check_keys(profile, need_secret=need_secret_key):
        log.warning("warning: %s", warning)
    profile.archive_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return env


@contextlib.contextmanager
def scratch(run: Run, kind: str, under: Path | None = None) -> Iterator[Path]:
    """A private folder ``state_dir/KIND/PROFILE-PID`` (or under ``under``) for one run (a
    drill's downloads and restores), removed on every way out; folders that runs killed with -9
    left behind are removed first."""
    root = (under or run.config.state_dir) / kind
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in root.glob(f"{run.profile.name}-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    folder = root / f"{run.profile.name}-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_source(run: Run) -> None:
    source = run.profile.source
    try:
        is_dir = source.is_dir()
    except OSError as error:  # e.g. a name longer than the filesystem allows
        raise ConfigError(
            f"profiles.{run.profile.name}.source: {str(source)[:200]}: {error.strerror}: fix the "
            "path."
        ) from None
    if not is_dir:
        raise ConfigError(
            f"profiles.{run.profile.name}.source: {source} is not a directory: fix the path."
        )


def duplicity(
    run: Run, build: Callable[[int], tuple[str, ...]], env: dict[str, str], **kwargs
) -> DuplicityResult:
    """Run one duplicity command, with the patches the profile's plugins register for it; with a
    progress reporter, ask duplicity for the progress records it only emits on request
    (``--progress`` costs ~18% on a small incremental)."""
    kwargs.setdefault("patches", patches.from_plugins(run.hooks))
    progress = run.options.get("progress")
    kwargs.setdefault("profile", run.profile)
    on_start = chains.on_start()  # inside a chain's thread: stoppable with the others
    if on_start is not None:
        kwargs.setdefault("on_start", on_start)
        progress = None  # several processes at once: one bar cannot show them
    if progress is None:
        return run_duplicity(build, env, **kwargs)

    def build_with_progress(fd: int) -> tuple[str, ...]:
        argv = tuple(build(fd))
        return argv[:-2] + progress.duplicity_flags(argv[1], run.profile["verbosity"]) + argv[-2:]

    return run_duplicity(build_with_progress, env, on_record=progress.on_record, **kwargs)


@contextlib.contextmanager
def warm_duplicity(run: Run, env: dict[str, str]) -> Iterator[WarmDuplicity | None]:
    """A duplicity started now for a backup's or a restore's duplicity command, with ``env``
    and the profile's patches (``run.WarmDuplicity``), given to :func:`duplicity` as
    ``warm=``; None where several run at once (split chains) or with ``CFBACKUP_NO_WARM=1``.
    Stopped on the way out when nothing used it."""
    if os.environ.get(WarmDuplicity.OFF) or chains.is_split(run.profile):
        yield None
        return
    warm = WarmDuplicity(env, patches.from_plugins(run.hooks))
    try:
        yield warm
    finally:
        warm.close()


def when_of(run: Run) -> float | None:
    """``--time`` as duplicity reads it (3D, 2026-11-01, ...), in Unix time."""
    text = run.options.get("time")
    if not text:
        return None
    from duplicity import dup_time

    dup_time.setcurtime()
    try:
        return float(dup_time.genstrtotime(text))
    except dup_time.TimeException:
        raise CfbackupError(
            f"--time {text!r} is not a time duplicity reads: give an age (3D, 12h) or a date "
            "(2026-11-01, 2026-11-01T02:30:00).",
            exit_code=ExitCode.USAGE,
        ) from None
