"""The report of ``compare.py``: Markdown tables of medians and ratios, CPU and memory, stored
bytes and cfbackup's phases, the argv each side ran, and growth across data set sizes."""

from __future__ import annotations

import dataclasses
import re

import harness
import pairs
from harness import median
from loop import OPS, Bench
from runlog import duplicity_words


def render(bench: Bench, title: str = "") -> str:
    names = [t.name for t in bench.tools]
    out = []
    if title:
        out.append(f"### {title}\n")
    headers = ["operation (median s)"] + names
    has_same = "dup-same" in names
    if has_same:
        headers.insert(headers.index("dup-same") + 1, "dup-same+ret")
    ratios = peers(names)
    headers += [f"cfb/{r}" for r in ratios]
    rows = []
    for op in OPS:
        values = {n: bench.medians(n, op) for n in names}
        if has_same:
            values["dup-same+ret"] = bench.with_retention(op)
        row = [op] + [harness.seconds(values[h]) for h in headers[1 : len(headers) - len(ratios)]]
        row += [harness.ratio(values["cfbackup"], values[r]) for r in ratios]
        rows.append(row)
    if bench.startup:
        start = {
            "cfbackup": median(bench.startup["cfbackup"]),
            "restic": median(bench.startup["restic"]),
        }
        for n in ("dup-same", "dup-same+ret", "dup-def"):
            start[n] = median(bench.startup["duplicity"])
        row = ["start-up (--help)"] + [
            harness.seconds(start.get(h, float("nan")))
            for h in headers[1 : len(headers) - len(ratios)]
        ]
        row += [harness.ratio(start["cfbackup"], start[r]) for r in ratios]
        rows.append(row)
    out.append(harness.table(headers, rows))
    out.append("")
    if ratios:
        out.append(paired_table(bench, ratios))
        out.append("")
    rows = []
    for op in OPS:
        row = [op]
        for n in names:
            found = bench.samples[n][op]
            peak = max((s.peak_rss for s in found), default=float("nan"))
            row.append(
                " + ".join(
                    [
                        f"{cpu_s(found, 'user')}+{cpu_s(found, 'system')}",
                        cpu_s(found, "swift_cpu"),
                        cpu_s(found, "other"),
                    ]
                )
                + f" / {harness.mib(peak)}"
            )
        rows.append(row)
    out.append(
        harness.table(
            ["CPU s (median): tool user+sys + Swift + rest of machine / peak RSS MiB (max)"]
            + names,
            rows,
        )
    )
    out.append("")
    out.append(runs_table(bench))
    out.append("")
    source_bytes = bench.source_bytes
    rows = []
    for op in ("full", "incremental"):
        rows.append(
            [f"after {op}"]
            + [
                f"{harness.mb(median(bench.stored[n][op]))} MB "
                f"({median(bench.stored[n][op]) / source_bytes:.2f}x)"
                for n in names
            ]
        )
    out.append(
        harness.table([f"stored in Swift (source {source_bytes / 1e6:.0f} MB)"] + names, rows)
    )
    if bench.phases:
        out.append("")
        keys = list(next(iter(bench.phases.values()))[0])
        rows = []
        for op in OPS:
            found = bench.phases.get(op)
            if found:
                rows.append(
                    [op]
                    + [
                        harness.seconds(median([p[k] for p in found]))
                        for k in keys
                        if k != "in-run total"
                    ]
                )
        out.append(
            harness.table(
                ["cfbackup phases (median s)"] + [k for k in keys if k != "in-run total"], rows
            )
        )
    return "\n".join(out)


def peers(names: list[str]) -> list[str]:
    """Whom cfbackup is compared with, in the tables' order."""
    if "cfbackup" not in names:
        return []
    return [
        other
        for other in ("dup-same", "dup-same+ret", "dup-def", "restic")
        if other in names or (other == "dup-same+ret" and "dup-same" in names)
    ]


def cpu_s(found: list, field: str) -> str:
    return harness.seconds(median([getattr(s, field) for s in found]))


def paired_table(bench: Bench, ratios: list[str]) -> str:
    """cfbackup over each peer: the median of the per-repetition ratios with their range (what
    the targets are read from, bench/README.md), beside the ratio of the medians."""
    headers = ["cfbackup / peer"]
    for peer in ratios:
        headers += [f"cfb/{peer} paired (min-max)", f"cfb/{peer} of medians"]
    rows = []
    for op in OPS:
        mine = bench.medians("cfbackup", op)
        row = [op]
        for peer in ratios:
            theirs = bench.with_retention(op) if peer == "dup-same+ret" else bench.medians(peer, op)
            row += [pairs.text(bench.paired(peer, op)), harness.ratio(mine, theirs)]
        rows.append(row)
    if bench.startup:
        row = ["start-up (--help)"]
        mine = median(bench.startup["cfbackup"])
        for peer in ratios:
            theirs = median(bench.startup["duplicity" if peer.startswith("dup-") else peer])
            row += [pairs.text(bench.paired_startup(peer)), harness.ratio(mine, theirs)]
        rows.append(row)
    return harness.table(headers, rows)


def runs_table(bench: Bench) -> str:
    """Every timed run: wall time, its place in its repetition's order, its own CPU, the
    Swift's and the rest of the machine's; the load average at the operation's first run."""
    names = [t.name for t in bench.tools]
    by_run = {(name, op, s.rep): s for name in names for op in OPS for s in bench.samples[name][op]}
    reps = sorted({rep for (_, _, rep) in by_run})
    rows = []
    for rep in reps:
        for op in OPS:
            found = {n: by_run.get((n, op, rep)) for n in names}
            first = min((s for s in found.values() if s), key=lambda s: s.position, default=None)
            row = [f"r{rep + 1} {op}", f"{first.load:.2f}" if first else "-"]
            row += [run_cell(found[n]) for n in names]
            rows.append(row)
    header = "run (s: wall #place: own user+sys, Swift, rest user+sys)"
    return harness.table([header, "load"] + names, rows)


def run_cell(sample) -> str:
    if sample is None:
        return "-"
    cell = (
        f"{harness.seconds(sample.wall)} #{sample.position + 1}: "
        f"{sample.user:.2f}+{sample.system:.2f}, Swift {sample.swift_cpu:.2f}, "
        f"rest {sample.other_user:.2f}+{sample.other_system:.2f}"
    )
    if sample.steal >= 0.01:
        cell += f", steal {sample.steal:.2f}"
    return cell


def as_json(bench: Bench) -> dict:
    return {
        "samples": {
            n: {op: [dataclasses.asdict(s) for s in v] for op, v in ops.items()}
            for n, ops in bench.samples.items()
        },
        "retention_after_backup": {
            op: [dataclasses.asdict(s) for s in v] for op, v in bench.retention.items()
        },
        "paired_ratios": {
            peer: {op: bench.paired(peer, op) for op in OPS}
            | {"start-up": bench.paired_startup(peer)}
            for peer in peers([t.name for t in bench.tools])
        },
        "stored_bytes": bench.stored,
        "cfbackup_phases": bench.phases,
        "startup": bench.startup,
        "argv": bench.argv,
        "settings": bench.settings,
    }


def normalized_argv(text: str, tool: str, work: str) -> str:
    """A command line with the bench's work dir, the tool's own folder and container
    (".../cfbackup/archive", "swift://cfbackup-r0") and the log fd put as placeholders; the same
    word inside an option stays (cfbackup's "--exclude=**/.cfbackup-restore-*", which dup-same
    runs too: replaced, the check reported a difference that was not there)."""
    text = text.replace(work, "<work>")
    text = re.sub(rf"(?<=/){re.escape(tool)}(?=[-/\s]|$)", "<tool>", text)
    return re.sub(r"--log-fd=\d+", "--log-fd=N", text)


def argv_check(bench: Bench) -> str:
    """Compare what dup-same ran with what cfbackup ran, paths and names normalized."""
    if "dup-same" not in bench.argv or not bench.ran:
        return ""

    def normal(text: str, tool: str) -> str:
        return normalized_argv(text, tool, str(bench.work))

    same = {
        w: normal(" ".join(duplicity_words(" ".join(a))), "dup-same")
        for w, a in bench.argv["dup-same"].items()
    }
    lines, notes = [], []
    for what, mine in same.items():
        word = mine.split()[0]
        theirs = bench.ran.get(word)
        if theirs is None and what == "retention":
            notes.append(  # runner: retention is skipped when it cannot remove a chain
                f"retention: cfbackup ran no `duplicity {word}` (it skips retention when there "
                "is no chain to remove, as here; dup-same+ret times it anyway)"
            )
        elif theirs is None:
            lines.append(f"- {what}: cfbackup ran no `duplicity {word}`")
        elif (
            "file://" in theirs
            and "swift://" in mine
            and _source_free(normal(theirs, "cfbackup")) == _source_free(mine)
        ):
            notes.append(
                f"{what}: the same options, but cfbackup read its prefetched local copy "
                "(file://, its own archive and temp dir, decrypted ahead: --no-encryption) "
                "where dup-same read Swift"
            )
        elif normal(theirs, "cfbackup") != mine:
            lines.append(
                f"- {what} DIFFERS:\n  cfbackup: `{normal(theirs, 'cfbackup')}`\n"
                f"  dup-same: `{mine}`"
            )
    if lines:
        return "argv check: dup-same did NOT run exactly what cfbackup ran:\n" + "\n".join(lines)
    return (
        "argv check: dup-same ran exactly the duplicity command lines cfbackup ran "
        f"({', '.join(same)}; from the command word on, cfbackup's through its launcher; "
        "paths, container names and the log descriptor normalized)"
        + "".join(f"; {note}" for note in notes)
        + "."
    )


def _source_free(argv: str) -> str:
    """A restore's argv without what reading a prefetched copy changes (cfbackup/prefetch.py):
    where it reads, its archive and temp dir, and the encryption flags of a clear copy."""
    dropped = ("--archive-dir=", "--tempdir=", "--no-encryption", "--gpg-options=", "--compress-")
    words = [w for w in argv.split() if not w.startswith(dropped)]
    return " ".join("<source>" if w.startswith(("file://", "swift://")) else w for w in words)


def header(args, before: str, after: str, extra: str = "") -> str:
    v = harness.versions()
    lines = [
        f"- machine: {harness.machine()}",
        f"- uptime before: `{before}`",
        f"- uptime after: `{after}`",
        f"- versions: {v['duplicity']}; {v['restic']}; {v['gpg']}; Python {v['python']}",
        f"- repetitions: {args.repeat} (median), change for the incremental: {args.change}%",
    ]
    if args.bandwidth:
        lines.append(f"- link to Swift capped at {args.bandwidth:g} MB/s each way (bench throttle)")
    if args.set:
        lines.append(f"- cfbackup settings (--set): {', '.join(args.set)}")
    if harness.restore_disk_note:
        lines.append(harness.restore_disk_note)
    if extra:
        lines.append(extra)
    return "\n".join(lines)


def print_argv(bench: Bench) -> str:
    out = ["Exactly what each side ran (first repetition; secrets are in the environment):", ""]
    for tool, commands in bench.argv.items():
        for what, argv in commands.items():
            out.append(f"- {tool} {what}: `{' '.join(argv)}`")
    return "\n".join(out)


def scale_report(benches: dict[int, Bench], tools: list[str]) -> str:
    """Time and peak memory per operation at each size, with the growth per step."""
    counts = list(benches)
    headers = ["operation", "tool"]
    for i, count in enumerate(counts):
        headers.append(f"{count} files s")
        if i:
            headers.append(f"x{count // counts[i - 1]} files: time x")
    headers += [f"peak MiB @{c}" for c in counts]
    rows = []
    for op in OPS:
        for tool in tools:
            row = [op, tool]
            times = [benches[c].medians(tool, op) for c in counts]
            for i, value in enumerate(times):
                row.append(harness.seconds(value))
                if i:
                    row.append(harness.ratio(value, times[i - 1]))
            for c in counts:
                peaks = [s.peak_rss for s in benches[c].samples[tool][op]]
                row.append(harness.mib(max(peaks) if peaks else float("nan")))
            rows.append(row)
    return harness.table(headers, rows)
