"""``cfbackup drill PROFILE [--sample S] [--max-duration D] [--time T] [--seed N]``: restore a
random sample of files and compare them byte for byte (the work is in ``cfbackup/drill.py``).

Options fall back to the profile's ``[drill]`` table. Each run draws a new seed unless one is
given, and the history keeps it, so a failing drill can be repeated file for file. A
mismatch or a file that cannot be restored fails the run with exit 8; a drill cut short by
``--max-duration`` passes on what it checked and says how far it got (exit 9 when that was
nothing).
"""

from __future__ import annotations

import random
import time

from cfbackup import drill, sampling, suggest
from cfbackup.actions.common import prepare, scratch, when_of
from cfbackup.errors import CfbackupError, ExitCode, VerifyDifferences
from cfbackup.progress import human_bytes
from cfbackup.runtypes import Run, RunResult
from cfbackup.units import human_duration, parse_duration

SHOWN = 5  # problems named in the one-line message (all of them are in the report and history)


def options_of(run: Run) -> tuple[sampling.Sample, int | None, int]:
    """The sample, the time limit in seconds (None: none) and the seed of this run."""
    table = run.profile.get("drill") or {}
    where = f"profiles.{run.profile.name}.drill"
    text = run.options.get("sample") or table.get("sample")
    try:
        sample = sampling.parse_sample(text)
    except ValueError as error:
        raise _usage(run, "sample", where, error) from None
    limit_text = run.options.get("max_duration") or table.get("max_duration")
    try:
        limit = parse_duration(limit_text) if limit_text else None
    except ValueError as error:
        raise _usage(run, "max_duration", where, error) from None
    seed = run.options.get("seed")
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    return sample, limit, int(seed)


def _usage(run: Run, key: str, where: str, error: ValueError) -> CfbackupError:
    flag = "--" + key.replace("_", "-")
    if run.options.get(key):
        return CfbackupError(f"{flag}: {error}.", exit_code=ExitCode.USAGE)
    return CfbackupError(f"{where}.{key}: {error}.", exit_code=ExitCode.CONFIG)


def run_drill(run: Run) -> RunResult:
    profile = run.profile
    sample, limit, seed = options_of(run)
    when = when_of(run)
    env = prepare(run, need_secret_key=True)
    started = time.monotonic()
    deadline = started + limit if limit else None
    with scratch(run, "drill") as workdir:
        report = drill.run(
            profile, env, workdir, sample=sample, seed=seed, when=when, deadline=deadline
        )
    elapsed = time.monotonic() - started
    stats = report.stats()
    summary = _summary(report, elapsed, limit)
    problems = report.named(drill.MISMATCH) + report.named(drill.FAILED)
    if problems:
        shown = "; ".join(p.describe() for p in problems[:SHOWN])
        more = f"; and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        error = VerifyDifferences(
            f"drill of {profile.name} found {report.count(drill.MISMATCH)} mismatch(es) and "
            f"{report.count(drill.FAILED)} file(s) that cannot be restored: {shown}{more}: the "
            f"backup is damaged; {suggest.command('verify', profile.name, '--read-data')} names "
            f"the bad volumes, and {suggest.command('backup', profile.name, '--full')} starts a "
            f"sound chain [{summary}].",
            stats=stats,
        )
        error.data = report
        raise error
    if report.stopped and not report.checked:
        error = CfbackupError(
            f"drill of {profile.name} checked no file before --max-duration "
            f"{human_duration(limit)} ran out: allow more time or drill a smaller --sample "
            f"[{summary}].",
            exit_code=ExitCode.PARTIAL,
            stats=stats,
        )
        error.data = report
        raise error
    return RunResult(
        profile=profile.name,
        action="drill",
        stats=stats,
        data=report,
        message=f"drill of {profile.name} passed: {summary}",
    )


def _summary(report: drill.Report, elapsed: float, limit: int | None) -> str:
    """``40 of 2000 files sampled (seed 7, 2%), 38 checked ...``: what the drill did."""
    text = (
        f"{len(report.files)} of {report.files_in_backup} files sampled (sample {report.sample}, "
        f"seed {report.seed}); {human_bytes(report.bytes_restored)} restored by "
        f"{report.restores} duplicity restore(s) from {report.volumes_fetched} volume(s); "
        f"{report.count(drill.MATCH)} match, {report.count(drill.MISMATCH)} mismatch, "
        f"{report.count(drill.FAILED)} failed, {report.count(drill.SKIPPED)} skipped"
    )
    if report.stopped:
        text += (
            f"; stopped at --max-duration {human_duration(limit)} after {elapsed:.0f} s, "
            f"{report.checked} of {len(report.files)} files checked"
        )
    return text
