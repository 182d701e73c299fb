"""``cfbackup verify``: duplicity's verify (every volume of the newest backup downloads,
decrypts and restores; duplicity 3.2 compares nothing with the source); with ``--compare-data``
each file's type, mode, time and content with the source; with ``--read-data`` cfbackup's own
check of the volumes against their manifests, without the source (``read_data.py``). A
difference is its own exit code."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from cfbackup import chains, stores, suggest
from cfbackup.actions.common import (
    chains_at_time,
    duplicity,
    left_out_text,
    prepare,
    require_target,
    roots_without_backup,
    target_view,
)
from cfbackup.duplicity import commands
from cfbackup.errors import (
    BackupDamaged,
    ExitCode,
    NoBackupFound,
    RunRefused,
    VerifyDifferences,
)
from cfbackup.runtypes import Run, RunResult
from cfbackup.units import printable_name

SUMMARY = re.compile(r"Verify complete: (\d+) file\(s\) compared, (\d+) difference\(s\) found")


def run_verify(run: Run) -> RunResult:
    # one login and one listing of the target for the checks (read-data's too)
    with target_view(run, retries=stores.request_retries(run.profile)):
        return _verify(run)


def _verify(run: Run) -> RunResult:
    require_target(run)
    if run.options.get("read_data") is not None:
        from cfbackup.actions.read_data import run_read_data

        return run_read_data(run)
    profile = run.profile
    compare = bool(run.options.get("compare_data"))
    absent = _absent_folders(profile)
    if compare and Path(profile.source) in absent:
        raise RunRefused(
            f"the source {printable_name(str(profile.source))} of profile {profile.name} does "
            "not exist on this machine, so verify --compare-data has nothing to compare the "
            "backup with: restore into it first, or check the backup without it with "
            f"{suggest.command('verify', profile.name, '--read-data')}."
        )
    if compare:
        _refuse_unmounted(run)
    env = prepare(run, need_secret_key=True)
    try:
        return _run_verify(run, env, compare)
    finally:
        _remove_if_empty(absent)


def _refuse_unmounted(run: Run) -> None:
    """--compare-data against a folder whose disk is not mounted (a mount point at the last
    backup, an empty folder now, as ``mounts.unmounted`` finds for a backup) would report
    every file under it missing, exit 8 for a disk that only needs mounting: refused, named."""
    from cfbackup import history, mounts

    profile = run.profile
    last = history.last_backup_at_target(run.config.state_dir, profile.name)
    previous = (last or {}).get("stats", {}).get(mounts.STAT) or []
    unmounted = mounts.unmounted(previous, chains.watched_folders(profile, chains.of(profile)))
    if unmounted:
        folders = ", ".join(printable_name(path) for path in sorted(unmounted))
        raise RunRefused(
            f"{folders} of profile {profile.name} was a mount point at the last backup and is "
            "now an empty folder (its disk is not mounted), so verify --compare-data would "
            "report every file under it missing: mount it and run the same command again, or "
            "check the backup without the source with "
            f"{suggest.command('verify', profile.name, '--read-data')}."
        )


def _absent_folders(profile) -> list[Path]:
    """The source folders of the profile's chains (and their parents) that do not exist here,
    deepest first: duplicity's verify makes its local folder when it is missing (a new machine
    before the restore is moved into place), which :func:`_remove_if_empty` undoes."""
    absent: list[Path] = []
    for chain in chains.of(profile):
        folder = Path(chain.profile.source).absolute()
        while not os.path.lexists(folder) and folder not in absent:
            absent.append(folder)
            folder = folder.parent
    return sorted(absent, key=lambda p: len(p.parts), reverse=True)


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders duplicity made (``_absent_folders``) that are still empty."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _run_verify(run: Run, env: dict[str, str], compare: bool) -> RunResult:
    profile = run.profile

    def verify(chain: chains.Chain) -> tuple[int, int, list[str]]:
        result = duplicity(
            run,
            lambda fd: commands.verify_argv(
                chain.profile, compare_data=compare, time=run.options.get("time"), log_fd=fd
            ),
            env,
            check=False,
        )
        compared = differences = 0
        found: list[str] = []
        for record in result.records:
            match = SUMMARY.search(record.message)
            if match:
                compared, differences = int(match.group(1)), int(match.group(2))
            if record.message.startswith("Difference found:"):
                found.append(record.message.removeprefix("Difference found:").strip())
        if result.returncode != 0 and not (result.returncode == 1 and differences):
            from cfbackup.duplicity.failures import classify_failure

            error = classify_failure(result)
            if isinstance(error, BackupDamaged):  # what verify was asked to find
                error.exit_code = ExitCode.VERIFY_DIFFERENCES
            raise error
        return compared, differences, found

    def verify_root(chain: chains.Chain) -> tuple[int, int, list[str]] | None:
        try:
            return verify(chain)
        except NoBackupFound:
            if not chain.root:
                raise
            return None  # judged below: a root whose chain vanished fails the check

    # a --time before the oldest backup: duplicity would verify the oldest one instead
    chain_list = chains_at_time(run, chains.of(profile), env)
    parts = chains.run_each(profile, chain_list, verify_root)
    empty = [c.label for c, p in zip(chain_list, parts, strict=True) if p is None]
    left_out = roots_without_backup(run, profile, empty)
    parts = [p for p in parts if p]
    compared = sum(p[0] for p in parts)
    differences = sum(p[1] for p in parts)
    found = [f for p in parts for f in p[2]]
    stats = {"compared": compared, "differences": differences}
    if left_out:
        stats["roots_without_backup"] = left_out
    if differences:
        shown = "; ".join(found[:5]) + (" ..." if len(found) > 5 else "")
        raise VerifyDifferences(
            f"verify of {profile.name} found {differences} difference(s) in {compared} file(s): "
            f"{shown}"
        )
    what = "backup and files match" if compare else "every volume is intact"
    return RunResult(
        profile=profile.name,
        action="verify",
        stats=stats,
        message=f"verify of {profile.name} passed: {compared} file(s), {what}"
        + left_out_text(left_out),
    )
