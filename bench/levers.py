#!/usr/bin/env python3
"""What each duplicity lever buys: gpg compression, volume size, --concurrency, and two
duplicity processes in parallel on two halves of the tree (one chain per include root).

    .venv/bin/python bench/levers.py [--size-mb 200] [--files 2000] [--repeat 3]
        [--variants defaults,level1,level0,...] [--restore-all] [--work DIR]

Raw duplicity only (cfbackup's overhead is ``compare.py``'s business), same generated tree
(``bench/dataset.py``), same local Swift, every variant with its own container and archive dir.
Per variant and repetition (variants interleaved, order rotating): a full backup, then a
restore of one file, and with ``--restore-all`` a restore of everything, each checked byte for
byte. ``floor-*`` variants are local pipelines without Swift or duplicity (tar | gpg), the
practical floor of read + compress + encrypt on this machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dataset
import harness
import loop
from harness import DUPLICITY, Sample, median

GPG = "--gpg-options="


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    options: tuple[str, ...] = ()
    halves: bool = False  # two duplicity processes at once, one per half of the tree
    floor: str = ""  # a shell pipeline instead of duplicity ({src} is the tree)


CATALOG = {
    v.name: v
    for v in (
        Variant("defaults"),
        Variant("level1", (GPG + "--compress-level=1",)),
        Variant("level0", (GPG + "--compress-level=0",)),
        Variant("algo-none", (GPG + "--compress-algo=none",)),
        Variant("zlib1", (GPG + "--compress-algo=zlib --compress-level=1",)),
        Variant("zlib6", (GPG + "--compress-algo=zlib --compress-level=6",)),
        # zlib (gpg's default ZIP has an 8 KB window) at levels 1 and 6 with 50 MB volumes
        Variant("zlib1-vol50", (GPG + "--compress-algo=zlib --compress-level=1", "--volsize=50")),
        Variant("zlib6-vol50", (GPG + "--compress-algo=zlib --compress-level=6", "--volsize=50")),
        Variant(
            "zlib1-vol50-conc2",
            (GPG + "--compress-algo=zlib --compress-level=1", "--volsize=50", "--concurrency=2"),
        ),
        Variant(
            "level0-vol50-s2k1m", (GPG + "--compress-level=0 --s2k-count=1015808", "--volsize=50")
        ),
        Variant("level1-vol50", (GPG + "--compress-level=1", "--volsize=50")),
        Variant("level0-vol25", (GPG + "--compress-level=0", "--volsize=25")),
        Variant("level0-vol50", (GPG + "--compress-level=0", "--volsize=50")),
        Variant("level0-vol100", (GPG + "--compress-level=0", "--volsize=100")),
        # the per-file key derivation of symmetric mode (gpg's agent-calibrated s2k count) at a
        # trivial count: how much of a run it costs. Not a setting to use with a weak passphrase.
        Variant(
            "level0-vol50-s2k64k", (GPG + "--compress-level=0 --s2k-count=65536", "--volsize=50")
        ),
        Variant("level0-vol500", (GPG + "--compress-level=0", "--volsize=500")),
        Variant(
            "level0-vol50-nfc", (GPG + "--compress-level=0", "--volsize=50", "--no-files-changed")
        ),
        Variant("defaults-conc1", ("--concurrency=1",)),
        Variant("level1-conc1", (GPG + "--compress-level=1", "--concurrency=1")),
        Variant("level0-conc1", (GPG + "--compress-level=0", "--concurrency=1")),
        Variant(
            "level0-vol50-conc1", (GPG + "--compress-level=0", "--volsize=50", "--concurrency=1")
        ),
        Variant(
            "level1-vol50-conc1", (GPG + "--compress-level=1", "--volsize=50", "--concurrency=1")
        ),
        Variant("level1-conc2", (GPG + "--compress-level=1", "--concurrency=2")),
        Variant("level0-conc2", (GPG + "--compress-level=0", "--concurrency=2")),
        Variant(
            "level0-vol50-conc2", (GPG + "--compress-level=0", "--volsize=50", "--concurrency=2")
        ),
        Variant("level1-halves", (GPG + "--compress-level=1",), halves=True),
        Variant("level0-halves", (GPG + "--compress-level=0",), halves=True),
        Variant("defaults-halves", (), halves=True),
        Variant(
            "floor-gpg-none",
            floor="tar -cf - -C {src} . | gpg --batch --pinentry-mode loopback --passphrase-fd 3 "
            "--symmetric --compress-algo none -o - 3<{passfile} > /dev/null",
        ),
        Variant(
            "floor-gpg-level1",
            floor="tar -cf - -C {src} . | gpg --batch --pinentry-mode loopback --passphrase-fd 3 "
            "--symmetric --compress-level 1 -o - 3<{passfile} > /dev/null",
        ),
        Variant(
            "floor-zstd1-gpg-none",
            floor="tar -cf - -C {src} . | zstd -1 -q -c | gpg --batch --pinentry-mode loopback "
            "--passphrase-fd 3 --symmetric --compress-algo none -o - 3<{passfile} > /dev/null",
        ),
    )
}
DEFAULT_VARIANTS = (
    "defaults,level1,level0,algo-none,zlib1,level1-vol50,level0-vol25,level0-vol50,"
    "level0-vol500,level1-conc2,level0-conc2,level1-halves,level0-halves,floor-gpg-none,"
    "floor-gpg-level1,floor-zstd1-gpg-none"
)


def halves(source: Path) -> tuple[list[str], list[str]]:
    """Split the tree's second-level folders (and the large files' folder) into two groups of
    about equal bytes: the best case for one chain per include root."""
    groups: dict[str, int] = {}
    for path in dataset.files_of(source):
        rel = path.relative_to(source)
        key = str(rel.parent) if rel.parent.name != "large" else "large"
        groups[key] = groups.get(key, 0) + path.stat().st_size
    a: list[str] = []
    b: list[str] = []
    size_a = size_b = 0
    for key, size in sorted(groups.items(), key=lambda kv: -kv[1]):
        if size_a <= size_b:
            a.append(key)
            size_a += size
        else:
            b.append(key)
            size_b += size
    return sorted(a), sorted(b)


def measure_parallel(commands: list[list[str]], env: dict, log: Path) -> Sample:
    """Start every command at once; wall time until the last ends, CPU summed, peak max."""
    peaks = [log.with_name(f"{log.name}.{i}") for i in range(len(commands))]
    with open(log, "ab") as out:
        harness.settle()
        swift_before = harness.swift_cpu_probe() if harness.swift_cpu_probe else 0.0
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [*harness.peak_wrapper(peak), *[str(a) for a in argv]],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            for argv, peak in zip(commands, peaks, strict=True)
        ]
        cpu, peak, worst = 0.0, 0, 0
        for proc, peak_file in zip(procs, peaks, strict=True):
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu += usage.ru_utime + usage.ru_stime
            peak = max(peak, harness.read_peak(peak_file, usage))
            worst = worst or proc.returncode
        wall = time.perf_counter() - start
    swift_cpu = harness.swift_cpu_probe() - swift_before if harness.swift_cpu_probe else 0.0
    if worst:
        tail = log.read_text(errors="replace").splitlines()[-25:]
        raise harness.BenchError(f"exit code {worst} in a parallel run\n" + "\n".join(tail))
    return Sample(wall, cpu, peak, 0, swift_cpu)


class Levers:
    def __init__(self, args, swift: harness.Swift, work: Path, source: Path) -> None:
        self.args, self.swift, self.work, self.source = args, swift, work, source
        self.passphrase = "bench-" + os.urandom(8).hex()
        self.passfile = work / "passphrase"
        self.passfile.write_text(self.passphrase)
        self.passfile.chmod(0o600)
        self.env = {
            **harness.base_environment(),
            **swift.env_v1(),
            "PASSPHRASE": self.passphrase,
        }
        self.variants = [CATALOG[name] for name in args.variants]
        self.results: dict[str, dict[str, list]] = {
            v.name: {"full": [], "restore-one": [], "restore-all": [], "stored": []}
            for v in self.variants
        }
        self.split = halves(source)

    def run(self) -> None:
        rel = loop.pick_file(self.source, set())
        want_file = loop.file_digest(self.source / rel)
        want_tree = dataset.tree_digest(self.source)
        for index in range(self.args.repeat):
            shift = index % len(self.variants)
            order = self.variants[shift:] + self.variants[:shift]
            print(
                f"repetition {index + 1}/{self.args.repeat} (load {harness.load_average()})",
                file=sys.stderr,
                flush=True,
            )
            try:
                for variant in order:
                    self.one(variant, index, rel, want_file, want_tree)
            finally:
                # restored trees go at the end of the repetition, not before the next variant's
                # restore: ext4 allocates new inodes slowly next to recently deleted ones
                for variant in order:
                    shutil.rmtree(self.work / f"r{index}-{variant.name}", ignore_errors=True)

    def one(self, v: Variant, index: int, rel: str, want_file: str, want_tree: str) -> None:
        base = self.work / f"r{index}-{v.name}"
        base.mkdir(parents=True)
        log = base / "output.log"
        record = self.results[v.name]
        try:
            if v.floor:
                command = v.floor.format(src=self.source, passfile=self.passfile)
                record["full"].append(harness.measure(["bash", "-c", command], self.env, log))
                print(f"  {v.name:<22} {record['full'][-1].wall:7.2f} s", file=sys.stderr)
                return
            parts = [("a", self.split[0]), ("b", self.split[1])] if v.halves else [("", None)]

            def url(part: str) -> str:
                return f"swift://lever-{index}-{v.name}{part}"

            def common(part: str) -> list[str]:
                return [f"--archive-dir={base / 'archive'}", f"--name=n{part}", *v.options]

            def select(include) -> list[str]:
                if include is None:
                    return []
                return [f"--include={self.source / p}" for p in include] + ["--exclude=**"]

            backups = [
                [DUPLICITY, "backup", *common(p), *select(inc), str(self.source), url(p)]
                for p, inc in parts
            ]
            record["full"].append(measure_parallel(backups, self.env, log))
            record["stored"].append(
                sum(self.swift.container_bytes(url(p)[8:])[0] for p, _ in parts)
            )
            # one file: from the chain that holds it
            holder = next(
                p
                for p, inc in parts
                if inc is None or str(Path(rel).parent) in inc or Path(rel).parent.name in inc
            )
            destination = base / "one" / rel
            destination.parent.mkdir(parents=True)
            argv = [
                DUPLICITY,
                "restore",
                *common(holder),
                f"--path-to-restore={rel}",
                url(holder),
                str(destination),
            ]
            record["restore-one"].append(harness.measure(argv, self.env, log))
            if loop.file_digest(destination) != want_file:
                raise harness.BenchError(f"{v.name}: restored file differs")
            if self.args.restore_all:
                targets = [base / f"all{p}" for p, _ in parts]
                restores = [
                    [DUPLICITY, "restore", *common(p), url(p), str(t)]
                    for (p, _), t in zip(parts, targets, strict=True)
                ]
                record["restore-all"].append(measure_parallel(restores, self.env, log))
                if len(targets) == 2:  # merge the halves (untimed) before comparing
                    subprocess.run(["cp", "-a", f"{targets[1]}/.", str(targets[0])], check=True)
                if dataset.tree_digest(targets[0]) != want_tree:
                    raise harness.BenchError(f"{v.name}: restored tree differs")
            print(
                f"  {v.name:<22} full {record['full'][-1].wall:7.2f} s, one file "
                f"{record['restore-one'][-1].wall:6.2f} s"
                + (
                    f", all {record['restore-all'][-1].wall:6.2f} s"
                    if self.args.restore_all
                    else ""
                )
                + f", stored {record['stored'][-1] / 1e6:.0f} MB",
                file=sys.stderr,
                flush=True,
            )
        finally:
            for part in ("", "a", "b"):
                self.swift.delete_container(f"lever-{index}-{v.name}{part}")

    def report(self, source_bytes: int) -> str:
        reference = median([s.wall for s in self.results.get("defaults", {}).get("full", [])])
        rows = []
        for v in self.variants:
            r = self.results[v.name]
            full = median([s.wall for s in r["full"]])
            rows.append(
                [
                    v.name,
                    " ".join(v.options) + (" (x2 in parallel)" if v.halves else "")
                    if not v.floor
                    else "local pipeline, no Swift",
                    harness.seconds(full),
                    harness.ratio(reference, full),
                    harness.seconds(median([s.cpu for s in r["full"]])),
                    harness.seconds(median([s.swift_cpu for s in r["full"]])),
                    harness.mib(max((s.peak_rss for s in r["full"]), default=float("nan"))),
                    f"{median(r['stored']) / 1e6:.0f} ({median(r['stored']) / source_bytes:.2f}x)"
                    if r["stored"]
                    else "-",
                    harness.seconds(median([s.wall for s in r["restore-one"]])),
                    harness.seconds(median([s.wall for s in r["restore-all"]])),
                ]
            )
        headers = [
            "variant",
            "duplicity options",
            "full s",
            "speed-up vs defaults",
            "CPU s",
            "Swift CPU s",
            "peak MiB",
            "stored MB",
            "restore one s",
            "restore all s",
        ]
        return harness.table(headers, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=200)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--large-fraction", type=float, default=0.4)
    parser.add_argument(
        "--text-fraction", type=float, default=0.5, help="share of compressible text (bytes)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--variants", default=DEFAULT_VARIANTS, help=f"comma-separated, from: {', '.join(CATALOG)}"
    )
    parser.add_argument("--restore-all", action="store_true", help="also time full restores")
    parser.add_argument(
        "--bandwidth",
        type=float,
        help="cap the link to Swift at this many MB/s each way (a remote Swift); default: none",
    )
    parser.add_argument(
        "--wan", help="RTT_MS:MBIT: over a simulated WAN (compare.py --wan; needs root)"
    )
    parser.add_argument("--work", type=Path)
    args = parser.parse_args(argv)
    harness.stop_on_signals()
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in CATALOG]
    if unknown:
        parser.error(f"unknown variants: {', '.join(unknown)}")
    work = args.work or Path(tempfile.mkdtemp(prefix="cfbackup-levers-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    before = harness.uptime()
    try:
        source = loop.ensure_dataset(
            work, args.size_mb, args.files, args.seed, args.large_fraction, args.text_fraction
        )
        source_bytes = sum(p.stat().st_size for p in dataset.files_of(source))
        link = ""
        if args.wan:
            import wan

            profile = wan.Profile.parse(args.wan)
            with wan.swift_over(profile, work) as (swift, probed):
                levers = Levers(args, swift, work, source)
                levers.run()
            link = wan.describe(profile, probed)
        else:
            with harness.Swift(args.bandwidth * 1e6 if args.bandwidth else None) as swift:
                levers = Levers(args, swift, work, source)
                levers.run()
        after = harness.uptime()
        print(f"## duplicity levers: {args.size_mb:g} MB, {args.files} files\n")
        print(f"- machine: {harness.machine()}")
        print(f"- uptime before: `{before}`\n- uptime after: `{after}`")
        if args.bandwidth:
            print(f"- link to Swift capped at {args.bandwidth:g} MB/s each way (bench throttle)")
        if link:
            print(link)
        print(f"- text: {args.text_fraction:.0%} of the bytes (the rest incompressible)")
        print(f"- repetitions: {args.repeat} (median); halves: {levers.split}\n")
        print(levers.report(source_bytes))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
