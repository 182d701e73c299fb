"""The bench's accounting of each timed run (bench/cpu.py) and its paired ratios
(bench/pairs.py, loop.Bench, report.py): issue #17's full restore moved from 1.35x to 1.58x
restic between two runs, with the kernel's time and every tool's CPU drifting across
repetitions; the bench now charges each run the machine's other CPU and reads the targets from
ratios paired within a repetition. Pure functions on made-up /proc text and samples, and one
look at the real /proc."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))

import cpu  # noqa: E402
import pairs  # noqa: E402

PROC_STAT = """\
cpu  1000 20 300 5000 40 5 15 60 7 0
cpu0 500 10 150 2500 20 2 7 30 3 0
intr 1 2 3
"""


def test_proc_stat_is_split_into_user_system_idle_and_steal():
    times = cpu.parse_proc_stat(PROC_STAT, tick=100)
    assert times == cpu.MachineTimes(user=10.2, system=3.2, idle=50.4, steal=0.6)


def test_proc_stat_of_an_old_kernel_without_steal_counts_it_zero():
    times = cpu.parse_proc_stat("cpu  100 0 50 900 10\n", tick=100)
    assert (times.user, times.system, times.idle, times.steal) == (1.0, 0.5, 9.1, 0.0)


def test_proc_stat_without_its_cpu_line_is_refused():
    with pytest.raises(ValueError):
        cpu.parse_proc_stat("cpu0 1 2 3 4\n")


def test_pid_stat_reads_parent_and_times_reaped_children_included():
    # a command name with spaces and a ')' in it: fields start after the last ')'
    text = "4242 (swift (proxy) x) S 17 4242 4242 0 -1 4194560 1 2 3 4 150 50 30 20 20 0 1 0\n"
    ppid, user, system = cpu.parse_pid_stat(text, tick=100)
    assert ppid == 17
    assert user == pytest.approx(1.8)  # utime 150 + cutime 30
    assert system == pytest.approx(0.7)  # stime 50 + cstime 20


def test_tree_times_adds_live_descendants_not_other_processes():
    table = {
        10: (1, 1.0, 0.5),  # a Swift server
        11: (10, 0.25, 0.25),  # its worker
        12: (11, 0.125, 0.0),  # the worker's child
        20: (1, 9.0, 9.0),  # someone else
        21: (20, 9.0, 9.0),
    }
    assert cpu.tree_times([10], table) == (1.375, 0.75)
    assert cpu.tree_times([10, 11], table) == (1.375, 0.75)  # counted once
    assert cpu.tree_times([99, 0], table) == (0.0, 0.0)  # gone, or no pid


def test_a_run_is_charged_the_machine_minus_itself_and_the_swift():
    before = cpu.Reading(cpu.MachineTimes(100.0, 40.0, 500.0, 1.0), 10.0, 5.0, load=0.5)
    after = cpu.Reading(cpu.MachineTimes(104.0, 43.0, 501.0, 1.25), 11.0, 5.5, load=3.0)
    charged = cpu.charge(before, after, user=2.0, system=1.0)
    assert charged == {
        "user": 2.0,
        "system": 1.0,
        "swift_user": 1.0,
        "swift_system": 0.5,
        "other_user": 1.0,  # 4 - 2 - 1
        "other_system": 1.5,  # 3 - 1 - 0.5: the kernel's threads, say
        "idle": 1.0,
        "steal": 0.25,
        "load": 0.5,  # at the start
    }


def test_the_real_proc_counts_a_busy_child_of_the_watched_process():
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        deadline = time.monotonic() + 60
        while True:  # a loaded machine may give the child its CPU late
            reading = cpu.read([os.getpid()])
            mine = cpu.process_table()[os.getpid()]
            if reading.swift_user + reading.swift_system > mine[1] + mine[2] + 0.2:
                break
            assert time.monotonic() < deadline, "the child's CPU never showed"
            time.sleep(0.1)
    finally:
        child.kill()
        child.wait()
    assert reading.machine.user + reading.machine.system > 0
    assert reading.load >= 0


def test_ratios_pair_the_same_repetition_not_the_medians():
    # every tool slower in repetitions 1 and 2 (the drift): the paired ratio stays 1.10,
    # the ratio of the medians says 1.55
    cfbackup = {0: 2.2, 1: 3.3, 2: 3.41}
    restic = {0: 2.0, 1: 3.0, 2: 3.1}
    cfbackup_fast = {0: 2.2, 1: 3.3, 2: 3.3}
    ratios = pairs.paired(cfbackup, restic)
    assert ratios == pytest.approx({0: 1.1, 1: 1.1, 2: 1.1})
    assert pairs.spread(ratios).text() == "1.10 (1.10-1.10)"
    assert pairs.text(pairs.paired(cfbackup_fast, {0: 2.0, 1: 3.3, 2: 1.5})) == "1.10 (1.00-2.20)"


def test_a_repetition_one_side_lacks_or_cannot_divide_is_left_out():
    ratios = pairs.paired({0: 2.0, 1: 4.0, 2: 3.0, 3: 1.0}, {0: 1.0, 2: 0.0, 3: math.nan})
    assert ratios == {0: 2.0}
    assert pairs.spread(ratios) == pairs.Spread(2.0, 2.0, 2.0, 1)
    assert pairs.text(ratios) == "2.00"
    assert pairs.spread({}) is None and pairs.text({}) == "-"


def test_median_of_an_even_count_is_between_the_middle_two():
    spread = pairs.spread({0: 1.0, 1: 1.5, 2: 1.25, 3: 2.0})
    assert (spread.median, spread.low, spread.high, spread.count) == (1.375, 1.0, 2.0, 4)


@pytest.fixture
def bench(tmp_path):
    import harness
    from loop import BACKUP_OPS, OPS, Bench

    args = types.SimpleNamespace(set=[], tools=["cfbackup", "dup-same", "restic"], repeat=2)
    bench = Bench(args, swift=None, work=tmp_path)
    walls = {  # repetition 0 is the slower for everyone
        "cfbackup": (3.3, 2.2),
        "dup-same": (3.0, 2.0),
        "restic": (3.3, 1.0),
    }
    for name, (first, second) in walls.items():
        for op in OPS:
            for rep, wall in enumerate((first, second)):
                position = (["cfbackup", "dup-same", "restic"].index(name) - rep) % 3
                bench.samples[name][op].append(
                    harness.Sample(
                        wall,
                        1.0,
                        1 << 20,
                        0,
                        0.5,
                        user=0.75,
                        system=0.25,
                        swift_user=0.5,
                        other_user=0.1,
                        other_system=0.2,
                        load=0.3 + rep,
                        rep=rep,
                        position=position,
                    )  # fmt: skip
                )
    for op in BACKUP_OPS:
        bench.retention[op] = [harness.Sample(0.5, 0.5, 0, 0, rep=r) for r in (0, 1)]
    bench.source_bytes = 1
    bench.stored = {n: {op: [1, 1] for op in BACKUP_OPS} for n in walls}
    return bench


def test_the_bench_pairs_each_peer_within_a_repetition(bench):
    assert bench.paired("dup-same", "restore-all") == pytest.approx({0: 1.1, 1: 1.1})
    assert bench.paired("restic", "restore-all") == pytest.approx({0: 1.0, 1: 2.2})
    # dup-same+ret: dup-same's backup and the retention after it, in the same repetition
    assert bench.paired("dup-same+ret", "full") == pytest.approx({0: 3.3 / 3.5, 1: 2.2 / 2.5})
    assert bench.paired("dup-same+ret", "restore-all") == {}
    bench.startup = {"cfbackup": [0.2, 0.3], "duplicity": [0.4, 0.3], "restic": [0.1, 0.05]}
    assert bench.paired_startup("dup-same") == pytest.approx({0: 0.5, 1: 1.0})
    assert bench.paired_startup("restic") == pytest.approx({0: 2.0, 1: 6.0})


def test_the_json_keeps_every_run_and_the_paired_ratios(bench):
    import json

    import report

    found = json.loads(json.dumps(report.as_json(bench)))
    run = found["samples"]["cfbackup"]["restore-all"][1]
    assert (run["rep"], run["position"], run["user"], run["other_system"], run["load"]) == (
        1, 2, 0.75, 0.2, 1.3,
    )  # fmt: skip
    assert found["paired_ratios"]["restic"]["restore-all"] == pytest.approx({"0": 1.0, "1": 2.2})
    assert found["paired_ratios"]["restic"]["start-up"] == {}


def test_the_report_prints_paired_ratios_beside_the_ratio_of_medians_and_each_run(bench):
    import report

    text = report.render(bench)
    restore_all = [
        line for line in text.splitlines() if line.startswith("| restore-all ") and "(" in line
    ]
    assert len(restore_all) == 1, text
    cells = [c.strip() for c in restore_all[0].strip("|").split("|")]
    # dup-same: paired, of medians; dup-same+ret: none for a restore; restic
    assert cells[1:] == ["1.10 (1.10-1.10)", "1.10", "-", "-", "1.60 (1.00-2.20)", "1.28"]
    assert "CPU s (median): tool user+sys + Swift + rest of machine" in text
    assert "0.75+0.25 + 0.50 + 0.30 / 1" in text
    run = next(line for line in text.splitlines() if line.startswith("| r2 restore-all "))
    assert "| 1.30 |" in run  # the load at the operation's first run of repetition 2
    assert "2.20 #3: 0.75+0.25, Swift 0.50, rest 0.10+0.20" in run  # cfbackup ran third


def test_retention_runs_add_up_into_one_sample():
    import harness

    first = harness.Sample(1.0, 0.5, 100, 0, 0.25, user=0.25, steal=0.5, load=2.0, rep=3)
    second = harness.Sample(2.0, 1.0, 300, 1, 0.5, user=0.75, steal=0.25, load=9.0, rep=3)
    both = first.plus(second)
    assert (both.wall, both.cpu, both.swift_cpu, both.user, both.steal) == (3.0, 1.5, 0.75, 1, 0.75)
    assert (both.peak_rss, both.returncode, both.load, both.rep) == (300, 1, 2.0, 3)


def test_the_argv_check_keeps_the_tool_name_inside_an_option():
    """cfbackup's exclude of its restore staging folders named "cfbackup" too: replaced by
    "<tool>" in cfbackup's line only, dup-same's same exclude made the check report that dup-same
    did not run what cfbackup ran."""
    import report  # noqa: PLC0415

    mine = (
        "backup --log-fd=7 --exclude=**/.cfbackup-restore-* "
        "--archive-dir=/W/r0/{}/archive /W/src swift://{}-r0"
    )
    cfbackup = report.normalized_argv(mine.format("cfbackup", "cfbackup"), "cfbackup", "/W")
    same = report.normalized_argv(mine.format("dup-same", "dup-same"), "dup-same", "/W")
    assert cfbackup == same
    assert "--exclude=**/.cfbackup-restore-*" in cfbackup
    assert "swift://<tool>-r0" in cfbackup and "<work>/r0/<tool>/archive" in cfbackup
    assert "--log-fd=N" in cfbackup
