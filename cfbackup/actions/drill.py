"""``cfbackup drill PROFILE [--sample S] [--max-duration D] [--time T] [--seed N]
[--from-nothing [--kit KIT] [--passphrase-file F]]``: restore a random sample of files and
compare them byte for byte (the work is in ``cfbackup/drill.py``; ``--from-nothing`` runs it from
the recovery kit alone, ``actions/from_nothing.py``).

Options fall back to the profile's ``[drill]`` table. Each run draws a new seed unless one is
given, and the history keeps it, so a failing drill can be repeated file for file. A
mismatch or a file that cannot be restored fails the run with exit 8; a drill cut short by
``--max-duration`` passes on what it checked and says how far it got (exit 9 when that was
nothing).
"""

from __future__ import annotations

import contextlib
import random
import time

from cfbackup import chains, drill, sampling, suggest
from cfbackup.actions import from_nothing
from cfbackup.actions.common import (
    chains_at_time,
    empty_roots,
    left_out_text,
    prepare,
    roots_without_backup,
    scratch,
    when_of,
)
from cfbackup.duplicity.times import as_typed_later
from cfbackup.errors import CfbackupError, ExitCode, NoBackupFound, VerifyDifferences
from cfbackup.progress import human_bytes
from cfbackup.runtypes import Run, RunResult
from cfbackup.units import human_duration, parse_duration, printable_name

SHOWN = 5  # causes named in the one-line message (all of them are in the report and history)
NAMED = 3  # files named for each cause


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
    facts: dict = {"from_nothing": bool(run.options.get("from_nothing"))}
    try:
        return _drill(run, facts)
    except CfbackupError as error:  # the history says how the drill ran, also when it failed
        error.stats = {**error.stats, **facts}
        raise


def _drill(run: Run, facts: dict) -> RunResult:
    profile = run.profile
    what = f"drill of {profile.name}" + (" from nothing" if facts["from_nothing"] else "")
    sample, limit, seed = options_of(run)
    when = when_of(run)
    with contextlib.ExitStack() as stack:
        box = None
        if facts["from_nothing"]:
            box = stack.enter_context(from_nothing.sandbox(run, facts))
            drilled, env = box.profile, box.env
        else:
            from_nothing.refuse_kit_options(run)
            drilled, env = profile, prepare(run, need_secret_key=True)
        # split_chains: a root whose chain vanished fails; one never backed up is left out
        left_out = roots_without_backup(run, drilled, empty_roots(drilled))
        if left_out:
            facts["roots_without_backup"] = left_out
        started = time.monotonic()
        deadline = started + limit if limit else None
        workdir = stack.enter_context(scratch(run, "drill"))
        try:
            report = drill.run(
                drilled,
                env,
                workdir,
                sample=sample,
                seed=seed,
                when=when,
                deadline=deadline,
                same=_same_backup(run),
            )
        except NoBackupFound:
            if when is not None:  # before the oldest backup: restore's sentence, naming it
                chains_at_time(run, chains.of(drilled), env)
            raise
    elapsed = time.monotonic() - started
    stats = {**report.stats(), **facts}
    summary = _summary(report, elapsed, limit)
    problems = report.named(drill.MISMATCH) + report.named(drill.FAILED)
    if problems:
        shown = _by_cause(problems)
        also = (
            f" ({len(report.errors)} restore(s) also failed for another cause: "
            f"{report.errors[0].message.rstrip('.')})"
            if report.errors
            else ""
        )
        error = VerifyDifferences(
            f"{what} found {report.count(drill.MISMATCH)} mismatch(es) and "
            f"{report.count(drill.FAILED)} file(s) that cannot be restored: {shown}: the "
            f"backup is damaged; {suggest.command('verify', profile.name, '--read-data')} names "
            f"the bad volumes, and {suggest.command('backup', profile.name, '--full')} starts a "
            f"sound chain{also} [{summary}].",
            stats=stats,
        )
        error.data = report
        raise error
    if report.errors:
        raise _not_damage(report, what, profile.name, summary, stats, _same_backup(run))
    if not report.checked:  # a drill that compared nothing proves nothing: it does not pass
        error = CfbackupError(
            _nothing_checked(report, what, profile.name, drilled.source, limit, _same_backup(run))
            + f" [{summary}].",
            exit_code=ExitCode.PARTIAL,
            stats=stats,
        )
        error.data = report
        raise error
    how = f" ({box.describe()})" if box else ""
    return RunResult(
        profile=profile.name,
        action="drill",
        stats=stats,
        data=report,
        message=f"{what} passed{how}: {summary}{left_out_text(left_out)}",
    )


def _by_cause(problems: list[drill.FileResult]) -> str:
    """``a, b, c and 9 more file(s): its volume 3 ... is corrupt; d: restored as ...``: files
    with one cause named together, so one damaged volume reads as one cause, not as the same
    sentence after each of its files; at most SHOWN causes, the files left over counted."""
    causes: dict[str, list[str]] = {}
    for problem in problems:
        causes.setdefault(problem.reason, []).append(printable_name(problem.path))
    parts = []
    for reason, paths in list(causes.items())[:SHOWN]:
        names = ", ".join(paths[:NAMED])
        if len(paths) > NAMED:
            names += f" and {len(paths) - NAMED} more file(s)"
        parts.append(f"{names}: {reason}" if reason else names)
    left = sum(len(paths) for paths in list(causes.values())[SHOWN:])
    return "; ".join(parts) + (f"; and {left} more file(s)" if left else "")


def _nothing_checked(
    report: drill.Report, what: str, name: str, source, limit: int | None, same: list[str]
) -> str:
    """Why a drill that met no error compared no file, and the fix (one sentence)."""
    sample = report.sample.replace(" bytes", "B")  # as --sample reads it
    if report.stopped:
        longer = human_duration(2 * limit) if limit else "1h"
        return (
            f"{what} checked no file before --max-duration {human_duration(limit)} ran out: "
            "allow more time, e.g. "
            f"{suggest.command('drill', name, '--sample', sample, '--max-duration', longer, *same)}"
            ", or drill a smaller --sample"
        )
    if not report.files_in_backup:  # a backup of an empty tree, or of one excluded entirely
        return (
            f"{what} found nothing to check: {' and '.join(report.drilled) or 'the backup'} holds "
            f"no file (the source {source} was empty, or include/exclude left nothing of "
            f"it, when that backup ran), so the drill proves nothing; check profiles.{name}."
            f"source and its include/exclude, then run {suggest.command('backup', name)}"
        )
    return (
        f"{what} checked none of the {len(report.files)} file(s) it sampled, so it proves "
        f"nothing: {report.files[0].describe() if report.files else 'no file was sampled'}; "
        f"drill again: {suggest.command('drill', name, '--sample', sample, *same)}"
    )


def _same_backup(run) -> list[str]:
    """The options that chose what this drill read (``--time``, as the moment it meant: a
    relative one read later is another moment, maybe another backup; ``--from-nothing`` and its
    kit): the same drill again reads the same backup the same way."""
    words: list[str] = []
    if run.options.get("time"):  # 3D: the moment it meant; the suggested drill runs later
        words += ["--time", as_typed_later(run.options["time"], when_of(run))]
    for option in ("kit", "passphrase_file"):
        if run.options.get(option):
            words += [f"--{option.replace('_', '-')}", str(run.options[option])]
    if run.options.get("from_nothing"):
        words.append("--from-nothing")
    return words


def _not_damage(
    report: drill.Report, what: str, name: str, summary: str, stats: dict, same: list[str]
) -> CfbackupError:
    """A duplicity restore failed for a cause its output does not show to be damage to the
    backup: the drill fails with that cause and its exit code (not 8), and says the files it
    held were not checked, not that they cannot be restored."""
    first = report.errors[0]
    unchecked = sum(1 for f in report.files if f.reason.startswith("not checked: "))
    sample = report.sample.replace(" bytes", "B")  # as --sample reads it
    error = CfbackupError(
        f"{what} could not check {unchecked} file(s) because duplicity's restore failed, for a "
        f"cause that is not damage to the backup: {first.message.rstrip('.')}; fix that and "
        f"drill again with the same sample: "
        f"{suggest.command('drill', name, '--sample', sample, '--seed', report.seed, *same)} "
        f"[{summary}].",
        exit_code=first.exit_code,
        detail=first.detail,
        stats=stats,
    )
    error.data = report
    return error


def _summary(report: drill.Report, elapsed: float, limit: int | None) -> str:
    """``40 of 2000 files sampled (seed 7, 2%), 38 checked ...``: what the drill did."""
    text = (
        (f"{'; '.join(report.drilled)}: " if report.drilled else "")
        + f"{len(report.files)} of {report.files_in_backup} files sampled (sample {report.sample}, "
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
