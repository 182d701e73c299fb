#!/usr/bin/env python3
"""cfbackup against raw duplicity and restic: same data, same local Swift, one invocation.

    .venv/bin/python bench/compare.py [--size-mb 200] [--files 2000] [--repeat 3]
    .venv/bin/python bench/compare.py --scale [--scale-files 1000,10000,100000]
    .venv/bin/python bench/compare.py --wan 20:200,80:50     # over a simulated WAN (root)

Four contestants, each with its own container and cache, on the same generated tree
(``bench/dataset.py``) and the same Swift (``scripts/local_swift.py``, tempauth v1):

- ``cfbackup``: the installed CLI with its defaults: ``cfbackup --quiet -c CONFIG backup bench``
  (the config names only source, target, archive dir, passphrase file and Swift credentials);
  everything a real run does is counted: start-up, config, plugins, passphrase pre-check, quota
  guard, duplicity, retention after the backup.
- ``dup-same``: raw duplicity with exactly cfbackup's options: the argv comes from cfbackup's own
  builder (``cfbackup.duplicity.commands``) for the same profile, so it cannot drift; the
  retention command cfbackup runs after a backup is timed separately (``dup-same+ret``).
- ``dup-def``: raw duplicity with its defaults (``duplicity backup SRC swift://C`` plus
  ``--archive-dir``, to keep runs apart).
- ``restic``: restic (Debian 0.14) with its defaults, swift backend, ST_AUTH/ST_USER/ST_KEY;
  ``restic init`` is not timed.

Operations, in this order in every repetition (the tools' order rotates from one repetition to
the next): full backup, incremental after a ~1% change (``dataset.change``), a run with no
change, restore of one file, restore of everything (both checked byte for byte against the
source, outside the timing), then the change is undone; CLI start-up (``--help``) at the end.
Medians are reported with ratios: of the medians, and paired (cfbackup over the peer within
each repetition, their median and range: the targets are read from these, bench/README.md).
Every run is charged its own user and system CPU, the Swift's, and the rest of the machine's
(``cpu.py``), printed run by run; peak RSS is the largest process of the run's tree.

``--wan RTT_MS:MBIT,...`` runs the same loop once per network profile, each with its own Swift
in a network namespace behind a rate-limited veth pair and a delay relay (``wan.py``,
``wanlink.py``); the link is probed (round trip, throughput) before each run and the figures
are printed with the tables.

This file is the command line; ``contestants.py`` says what each tool runs, ``loop.py`` runs
the repetitions, ``cpu.py`` charges each run its CPU, ``pairs.py`` pairs the ratios,
``runlog.py`` reads cfbackup's run logs and ``report.py`` prints the tables.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import harness
import report
from contestants import TOOLS
from harness import CFBACKUP, DUPLICITY, RESTIC
from loop import run_one


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=200, help="data set size (MB)")
    parser.add_argument("--files", type=int, default=2000, help="number of files")
    parser.add_argument(
        "--large-fraction", type=float, default=0.4, help="share of the bytes in a few large files"
    )
    parser.add_argument(
        "--text-fraction",
        type=float,
        default=0.5,
        help="share of the files (by bytes) that are compressible text (default 0.5)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="repetitions per operation (default 3; 1 with --scale)",
    )
    parser.add_argument(
        "--change", type=float, default=1.0, help="percent changed before the incremental"
    )
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a cfbackup profile setting for cfbackup and dup-same, e.g. "
        "volsize=50 or encryption.compress_level=0 (TOML value)",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="run at several file counts (small files only) and print growth",
    )
    parser.add_argument("--scale-files", default="1000,10000,100000")
    parser.add_argument(
        "--scale-kb", type=float, default=2.0, help="mean file size in --scale mode (KB)"
    )
    parser.add_argument(
        "--bandwidth",
        type=float,
        help="cap the link to Swift at this many MB/s each way (a remote Swift); default: none",
    )
    parser.add_argument(
        "--wan",
        help="RTT_MS:MBIT[,RTT_MS:MBIT...]: run over a simulated WAN with each profile "
        "(network namespaces, tbf, a delay relay; needs root), e.g. 20:200,80:50",
    )
    parser.add_argument(
        "--work",
        type=Path,
        help="work directory (data sets are kept and "
        "reused there); a temporary one, removed afterwards, by default",
    )
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    args = parser.parse_args(argv)
    harness.stop_on_signals()
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(args.tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    if args.repeat is None:
        args.repeat = 1 if args.scale else 3
    if "dup-same" in args.tools and any(s.startswith("split_chains=true") for s in args.set):
        parser.error(
            "dup-same runs one duplicity command per step and cannot mirror split_chains: "
            "pass --tools cfbackup,dup-def,restic (bench/levers.py *-halves runs raw duplicity "
            "on two roots side by side)"
        )
    for path in (CFBACKUP, DUPLICITY):
        if not Path(path).exists():
            parser.error(f"{path} is missing: build the environment first (scripts/test.sh)")
    if not Path(RESTIC).exists() and "restic" in args.tools:
        parser.error("restic is missing: apt-get install restic")
    if args.wan:
        import wan

        try:
            args.wan = [wan.Profile.parse(p) for p in args.wan.split(",") if p.strip()]
        except ValueError as error:
            parser.error(str(error))
        if args.scale or args.bandwidth:
            parser.error("--wan replaces --bandwidth and does not combine with --scale")

    work = args.work or Path(tempfile.mkdtemp(prefix="cfbackup-bench-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"started": harness.uptime()}
    try:
        if args.wan:
            results["wan"] = [run_wan(args, work, profile) for profile in args.wan]
        elif not args.scale:
            results.update(run_local(args, work))
        else:
            results.update(run_scale(args, work))
    finally:
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def run_local(args, work: Path) -> dict:
    before = harness.uptime()
    with harness.Swift(args.bandwidth * 1e6 if args.bandwidth else None) as swift:
        bench = run_one(
            args, swift, work, args.size_mb, args.files, args.large_fraction, startup=True
        )
    after = harness.uptime()
    print(f"## cfbackup vs duplicity vs restic: {args.size_mb:g} MB, {args.files} files\n")
    print(report.header(args, before, after) + "\n")
    print(report.render(bench))
    print("\n" + report.print_argv(bench))
    print("\n" + report.argv_check(bench))
    return {**report.as_json(bench), "finished": after}


def run_scale(args, work: Path) -> dict:
    before = harness.uptime()
    counts = [int(n) for n in args.scale_files.split(",")]
    benches = {}
    with harness.Swift(args.bandwidth * 1e6 if args.bandwidth else None) as swift:
        for count in counts:
            size = count * args.scale_kb / 1000
            print(f"scale: {count} files, {size:g} MB", file=sys.stderr, flush=True)
            benches[count] = run_one(args, swift, work, size, count, 0.0, startup=False)
    after = harness.uptime()
    print(f"## Scale: {', '.join(map(str, counts))} files of {args.scale_kb:g} KB on average\n")
    print(report.header(args, before, after) + "\n")
    print(report.scale_report(benches, args.tools))
    for count, bench in benches.items():
        print("\n" + report.render(bench, f"{count} files"))
    return {str(c): report.as_json(b) for c, b in benches.items()} | {"finished": after}


def run_wan(args, work: Path, profile) -> dict:
    """One network profile: its own namespaces and Swift, probed, then the usual loop."""
    import wan

    before = harness.uptime()
    with wan.swift_over(profile, work) as (swift, probed):
        bench = run_one(
            args, swift, work, args.size_mb, args.files, args.large_fraction, startup=False
        )
    after = harness.uptime()
    print(f"## Over a simulated WAN: {profile.name}, {args.size_mb:g} MB, {args.files} files\n")
    print(report.header(args, before, after, wan.describe(profile, probed)) + "\n")
    print(report.render(bench))
    print("\n" + report.argv_check(bench))
    return {"profile": profile.name, "probe": probed, **report.as_json(bench), "finished": after}


if __name__ == "__main__":
    sys.exit(main())
