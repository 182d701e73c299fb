#!/usr/bin/env python3
"""How much the quota guard's estimate costs, against ``du -s`` on the same tree.

    .venv/bin/python bench/quota_estimate.py [--files 100000] [--dir DIR] [--rules]

Generates N small files (100 per folder) in a temporary directory (or DIR, kept), then times
``du -s`` and the estimate (best of three each, warm cache: both read only metadata), and
measures the estimate's peak Python memory (tracemalloc) at N/10 and at N files: it must not
grow with the file count. ``--rules`` adds include/exclude rules like a real profile's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))

from cfbackup_quota_guard import estimate  # noqa: E402

from cfbackup import selection  # noqa: E402


def generate(root: Path, count: int) -> None:
    payload = b"x" * 100
    for i in range(count):
        folder = root / f"d{i // 10000:02d}" / f"e{(i // 100) % 100:02d}"
        if i % 100 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"f{i:06d}.dat", "wb") as handle:
            handle.write(payload[: i % 100])


def best_of(runs: int, fn) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def run_estimate(root: str, rules) -> estimate.Estimate:
    return estimate.estimate(root, selection.Selector(root, rules), volsize_mb=200)


def peak_memory(root: str, rules) -> int:
    tracemalloc.start()
    run_estimate(root, rules)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--dir", help="generate here and keep it (default: a temp dir)")
    parser.add_argument("--rules", action="store_true", help="with include/exclude rules")
    args = parser.parse_args()
    if shutil.which("du") is None:
        sys.exit("du not found")
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="quota-bench-"))
    try:
        small, big = base / "small", base / "big"
        started = time.perf_counter()
        for root, count in ((small, max(1, args.files // 10)), (big, args.files)):
            if not root.exists():
                generate(root, count)
        print(f"generated {args.files} files in {time.perf_counter() - started:.1f} s: {big}")

        def rules_for(root: Path):
            if not args.rules:
                return []
            return selection.profile_rules(
                [f"{root}/**/e13", "**/*.tmp", f"{root}/d00/e0[0-4]"], [f"{root}/d0*", "**.dat"]
            )

        rules = rules_for(big)
        du = ["du", "-s", str(big)]
        subprocess.run(du, check=True, capture_output=True)  # warm the cache
        run_estimate(str(big), rules)
        du_time = best_of(3, lambda: subprocess.run(du, check=True, capture_output=True))
        est_time = best_of(3, lambda: run_estimate(str(big), rules))
        found = run_estimate(str(big), rules)
        mem_small = peak_memory(str(small), rules_for(small))
        mem_big = peak_memory(str(big), rules)
        print(f"du -s:     {du_time:.3f} s")
        print(
            f"estimate:  {est_time:.3f} s ({found.entries} entries, up to {found.bytes} bytes "
            f"in {found.objects} objects)"
        )
        print(f"ratio:     {est_time / du_time:.2f} x du -s")
        print(
            f"peak memory of the estimate: {mem_small / 1024:.0f} KiB at {args.files // 10} "
            f"files, {mem_big / 1024:.0f} KiB at {args.files} files"
        )
        return 0
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
