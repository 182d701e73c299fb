"""The loop of ``compare.py``: repetitions of every operation by every contestant, on one data
set, with the samples, stored bytes and phases kept for the report."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import dataset
import harness
import pairs
from contestants import TOOL_CLASSES, Rep, Tool
from harness import CFBACKUP, DUPLICITY, RESTIC, Sample, measure, median
from runlog import duplicity_words

BACKUP_OPS = ("full", "incremental", "no-change")
RESTORE_OPS = ("restore-one", "restore-all")
OPS = BACKUP_OPS + RESTORE_OPS
CHANGE_SEED = 2


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Bench:
    def __init__(self, args: argparse.Namespace, swift: harness.Swift, work: Path) -> None:
        self.args = args
        self.swift = swift
        self.work = work
        self.passphrase = "bench-" + os.urandom(8).hex()
        (work / "passphrase").write_text(self.passphrase + "\n")
        (work / "passphrase").chmod(0o600)
        self.settings = dict(parse_set(s) for s in args.set)
        self.tools = [TOOL_CLASSES[name](self) for name in args.tools]
        self.samples: dict[str, dict[str, list[Sample]]] = {
            t.name: {op: [] for op in OPS} for t in self.tools
        }
        self.retention: dict[str, list[Sample]] = {op: [] for op in BACKUP_OPS}
        self.stored: dict[str, dict[str, list[int]]] = {
            t.name: {op: [] for op in BACKUP_OPS} for t in self.tools
        }
        self.phases: dict[str, list[dict]] = {}
        self.argv: dict[str, dict[str, list[str]]] = {}
        self.ran: dict[str, str] = {}  # duplicity command word -> what cfbackup ran
        self.startup: dict[str, list[float]] = {}
        self._op = ""
        self.source_bytes = 0
        self.dirty = False  # the source is changed and not (yet) put back

    def note_argv(self, tool: str, what: str, argv: list) -> None:
        self.argv.setdefault(tool, {}).setdefault(what, [str(a) for a in argv])

    def keep_logs(self, rep: Rep, tool: Tool) -> None:
        """Keep each tool's output (and cfbackup's run logs) in WORK/logs for a post-mortem."""
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        sources = [tool.log(rep), *sorted((tool.dir(rep) / "state" / "logs").glob("*.log"))]
        with open(logs / f"r{rep.index}-{tool.name}.log", "wb") as out:
            for path in sources:
                if path.exists():
                    out.write(f"==> {path.name}\n".encode() + path.read_bytes())

    def note_ran(self, command: str) -> None:
        """A duplicity command line cfbackup ran (from its run log), keyed by its command word."""
        words = duplicity_words(command)
        if words:
            self.ran.setdefault(words[0], " ".join(words))

    def note_phases(self, what: str, phases: dict | None, wall: float) -> None:
        if phases:
            phases = {"start-up and config": wall - phases["in-run total"], **phases}
            self.phases.setdefault(self._op, []).append(phases)

    def run(self, source: Path) -> None:
        size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
        # every restored tree stays until the run ends: the disk holds them all (a sparse
        # file: it takes what the trees take, growing with --repeat)
        disk = int(size * 1.25) * len(self.tools) * self.args.repeat + (512 << 20)
        needed = int(size * 1.1) * len(self.tools) * self.args.repeat
        free = shutil.disk_usage(self.work).free
        if free < needed + (1 << 30):
            raise harness.BenchError(
                f"{self.work} has {free >> 20} MiB free; the restored trees of "
                f"{self.args.repeat} repetitions take about {needed >> 20} MiB: "
                "pass --work on a larger disk or a smaller --repeat"
            )
        with harness.restore_disk(self.work, disk) as self.restores:
            for index in range(self.args.repeat):
                rep = Rep(index, self.work / f"r{index}", source)
                shift = index % len(self.tools)
                order = self.tools[shift:] + self.tools[:shift]
                self.log(
                    f"repetition {index + 1}/{self.args.repeat} (load {harness.load_average()})"
                    f", order: {', '.join(t.name for t in order)}"
                )
                try:
                    self.repetition(rep, order)
                finally:
                    for tool in order:
                        self.swift.delete_container(tool.container(rep))
                        self.keep_logs(rep, tool)
                    shutil.rmtree(rep.dir, ignore_errors=True)

    def repetition(self, rep: Rep, order: list[Tool]) -> None:
        for tool in order:
            tool.setup(rep)
        undo = None
        try:
            for op in BACKUP_OPS:
                if op == "incremental":
                    self.dirty = True
                    undo = dataset.change(rep.source, self.args.change, CHANGE_SEED)
                for position, tool in enumerate(order):
                    self._op = op
                    sample = placed(tool.backup(rep), rep, position)
                    self.samples[tool.name][op].append(sample)
                    self.stored[tool.name][op].append(
                        self.swift.container_bytes(tool.container(rep))[0]
                    )
                    extra = tool.after_backup(rep)
                    if extra is not None:
                        self.retention[op].append(placed(extra, rep, position))
                    self.log(
                        f"  {op:<12} {tool.name:<9} {sample.wall:7.2f} s"
                        + (f" (+ retention {extra.wall:.2f} s)" if extra else "")
                        + f"  {cpu_note(sample)}"
                    )
            changed = {rel for rel, _ in undo["rewritten"]} if undo else set()
            rel = pick_file(rep.source, changed)
            want_file = file_digest(rep.source / rel)
            want_tree = dataset.tree_digest(rep.source)
            for op in RESTORE_OPS:
                for position, tool in enumerate(order):
                    self._op = op
                    target = self.restores / f"r{rep.index}" / f"restore-{op}-{tool.name}"
                    sample, landed = tool.restore(rep, target, rel if op == "restore-one" else None)
                    sample = placed(sample, rep, position)
                    got = (
                        file_digest(landed) if op == "restore-one" else dataset.tree_digest(landed)
                    )
                    if got != (want_file if op == "restore-one" else want_tree):
                        raise harness.BenchError(
                            f"{tool.name} {op}: restored data differ from the source ({landed})"
                        )
                    self.samples[tool.name][op].append(sample)
                    # restored trees stay until the run ends (harness.restore_disk)
                    self.log(
                        f"  {op:<12} {tool.name:<9} {sample.wall:7.2f} s (verified)"
                        f"  {cpu_note(sample)}"
                    )
        finally:
            if undo:
                dataset.undo_change(rep.source, undo)
                self.dirty = False

    def measure_startup(self) -> None:
        commands = {
            "cfbackup": [CFBACKUP, "--help"],
            "duplicity": [DUPLICITY, "--help"],
            "restic": [RESTIC, "--help"],
        }
        log = self.work / "startup.log"
        for _ in range(max(10, self.args.repeat)):
            for name, argv in commands.items():
                sample = measure(argv, harness.base_environment(), log)
                self.startup.setdefault(name, []).append(sample.wall)

    @staticmethod
    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    # ---- results -------------------------------------------------------------------------
    def medians(self, tool: str, op: str) -> float:
        return median([s.wall for s in self.samples.get(tool, {}).get(op, [])])

    def walls(self, tool: str, op: str) -> dict[int, float]:
        """Repetition -> the wall time of ``tool``'s ``op`` in it (``dup-same+ret``: dup-same's
        backup and the retention after it, added)."""
        if tool == "dup-same+ret":
            if op not in BACKUP_OPS:
                return {}
            extra = {s.rep: s.wall for s in self.retention.get(op, [])}
            return {
                s.rep: s.wall + extra.get(s.rep, 0.0)
                for s in self.samples.get("dup-same", {}).get(op, [])
            }
        return {s.rep: s.wall for s in self.samples.get(tool, {}).get(op, [])}

    def paired(self, peer: str, op: str) -> dict[int, float]:
        """Repetition -> cfbackup's time over ``peer``'s in it (pairs.py)."""
        return pairs.paired(self.walls("cfbackup", op), self.walls(peer, op))

    def paired_startup(self, peer: str) -> dict[int, float]:
        """Round -> cfbackup's ``--help`` over the peer's in the same round."""
        theirs = "duplicity" if peer.startswith("dup-") else peer
        return pairs.paired(
            dict(enumerate(self.startup.get("cfbackup", []))),
            dict(enumerate(self.startup.get(theirs, []))),
        )

    def with_retention(self, op: str) -> float:
        backups = self.samples.get("dup-same", {}).get(op, [])
        extra = self.retention.get(op, [])
        if not backups or op not in BACKUP_OPS:
            return float("nan")
        if not extra:
            return median([s.wall for s in backups])
        return median([b.wall + r.wall for b, r in zip(backups, extra, strict=True)])


def placed(sample: Sample, rep: Rep, position: int) -> Sample:
    """The sample, marked with its repetition and its place in that repetition's order."""
    return dataclasses.replace(sample, rep=rep.index, position=position)


def cpu_note(sample: Sample) -> str:
    """A run's CPU in a few words: its own user+system, the Swift's, the rest of the
    machine's, steal when there was any, and the load at its start."""
    note = (
        f"cpu {sample.user:.2f}u+{sample.system:.2f}s, Swift {sample.swift_cpu:.2f}, "
        f"other {sample.other_user:.2f}u+{sample.other_system:.2f}s"
    )
    if sample.steal >= 0.01:
        note += f", steal {sample.steal:.2f}"
    return note + f", load {sample.load:.2f}"


def pick_file(source: Path, changed: set[str]) -> str:
    """A small file in the middle of the tree that the 1% change left alone."""
    files = [
        p for p in dataset.files_of(source) if p.parent.name != "large" and p.parent.name != "added"
    ]
    ordered = files[len(files) // 2 :] + files[: len(files) // 2]
    for path in ordered:
        rel = str(path.relative_to(source))
        if rel not in changed and path.stat().st_size > 1000:
            return rel
    return str(ordered[0].relative_to(source))


def parse_set(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    import tomllib

    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


def ensure_dataset(
    work: Path,
    size_mb: float,
    files: int,
    seed: int,
    large_fraction: float,
    text_fraction: float = 0.5,
) -> Path:
    """The tree for these parameters, generated once and reused while intact."""
    name = f"data-{files}f-{size_mb:g}mb-s{seed}-l{large_fraction:g}"
    if text_fraction != 0.5:
        name += f"-t{text_fraction:g}"
    root = work / name / "src"
    marker = work / name / "intact.json"
    if marker.exists():
        return root
    shutil.rmtree(root.parent, ignore_errors=True)
    started = time.monotonic()
    summary = dataset.make(
        root, size_mb, files, seed, large_fraction=large_fraction, text_fraction=text_fraction
    )
    summary["seconds"] = round(time.monotonic() - started, 1)
    marker.write_text(json.dumps(summary))
    print(f"dataset: {summary}", file=sys.stderr)
    return root


def run_one(
    args, swift, work: Path, size_mb: float, files: int, large_fraction: float, startup: bool
) -> Bench:
    source = ensure_dataset(
        work, size_mb, files, args.seed, large_fraction, getattr(args, "text_fraction", 0.5)
    )
    bench = Bench(args, swift, work)
    bench.source_bytes = sum(p.stat().st_size for p in dataset.files_of(source))
    marker = source.parent / "intact.json"
    marker.rename(source.parent / "in-use.json")  # a crash mid-change forces a fresh tree
    try:
        bench.run(source)
    finally:
        if not bench.dirty:
            (source.parent / "in-use.json").rename(marker)
    if startup:
        bench.measure_startup()
    return bench
