"""``cfbackup restore``: the whole tree or one path, at a point in time, into TARGET.

A non-empty TARGET is refused without ``--force``, so a restore typed in a hurry never
overwrites what is there.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path, PurePosixPath

from cfbackup.actions.common import duplicity, prepare
from cfbackup.duplicity import commands
from cfbackup.errors import RestoreTargetError, RunRefused
from cfbackup.runner import Run, RunResult


def relative_path(run: Run, path: str) -> str:
    """A path inside the backup, relative to the source; absolute paths under source accepted."""
    source = PurePosixPath(str(run.profile.source))
    candidate = PurePosixPath(path)
    if candidate.is_absolute():
        try:
            candidate = candidate.relative_to(source)
        except ValueError:
            raise RestoreTargetError(
                f"{path} is not under the profile's source {source}: give a path inside it."
            ) from None
    parts = [p for p in candidate.parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise RestoreTargetError(f"{path}: '..' is not allowed in a path to restore.")
    return "/".join(parts)


def run_restore(run: Run) -> RunResult:
    profile = run.profile
    target = Path(run.options["target"]).expanduser().absolute()
    force = bool(run.options.get("force"))
    path = run.options.get("path")
    rel = relative_path(run, path) if path else None
    exact = bool(run.options.get("exact_destination"))
    destination = target / rel if rel and not exact else target
    _check_target(destination, force)
    env = prepare(run, need_secret_key=True)
    vetoes = [reason for reason in run.hooks.cfbackup_pre_restore(run=run) if reason]
    if vetoes:
        raise RunRefused("restore refused: " + "; ".join(vetoes))
    created = _make_parents(destination.parent)
    exists = os.path.lexists(destination)
    try:
        duplicity(
            run,
            lambda fd: commands.restore_argv(
                profile,
                str(destination),
                path=rel,
                time=run.options.get("time"),
                force=exists,
                log_fd=fd,
            ),
            env,
        )
    except BaseException:
        for folder in reversed(created):  # leave no empty folders behind a failed restore
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    what = f"{rel} restored to {destination}" if rel else f"restored into {destination}"
    outcome = RunResult(
        profile=profile.name,
        action="restore",
        message=f"{profile.name}: {what}"
        + (f" as of {run.options['time']}" if run.options.get("time") else ""),
    )
    run.hooks.cfbackup_post_restore(run=run, result=outcome)
    return outcome


def _make_parents(folder: Path) -> list[Path]:
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
    return missing


def _check_target(destination: Path, force: bool) -> None:
    if not os.path.lexists(destination):
        return
    if destination.is_dir() and not destination.is_symlink():
        if any(destination.iterdir()) and not force:
            raise RestoreTargetError(
                f"{destination} is not empty: restore into an empty directory, or add --force to "
                "overwrite what is there."
            )
    elif not force:
        raise RestoreTargetError(
            f"{destination} already exists: choose another target, or add --force to overwrite it."
        )
    if not os.access(destination if destination.is_dir() else destination.parent, os.W_OK):
        raise RestoreTargetError(f"{destination} is not writable: fix permissions or run as root.")
