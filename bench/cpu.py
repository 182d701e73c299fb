"""Where the machine's CPU went during one timed run, read from /proc before and after it.

A run's wall time moves with what else the two cores did meanwhile. Each run is charged:

- the contestant's own user and system time (``os.wait4`` on its process: its whole tree of
  waited-for processes; ``harness.measure``);
- the local Swift's (its servers and memcached, with their live and reaped children;
  ``/proc/PID/stat``), which serves that run on the same cores;
- the rest of the machine: every CPU's busy time from ``/proc/stat`` minus those two, split
  user and system: other processes (a test suite beside the bench), the kernel's own threads
  (the loop device's writes, writeback, softirqs), a daemon a tool left behind, and the bench's
  own few milliseconds around the run;
- the hypervisor's steal time (this is a VM), and the 1-minute load average at the start.

So a run slowed by outside load, or by the kernel, shows as such. Standard library only.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")
TICK = os.sysconf("SC_CLK_TCK")  # /proc's clock ticks per second


@dataclasses.dataclass(frozen=True)
class MachineTimes:
    """Seconds summed over every CPU since boot (the ``cpu`` line of /proc/stat)."""

    user: float  # user + nice (guest time is already inside user)
    system: float  # system + irq + softirq
    idle: float  # idle + iowait
    steal: float  # taken by the hypervisor for someone else


@dataclasses.dataclass(frozen=True)
class Reading:
    """One look at the machine: its CPU counters, the Swift's, and the load average."""

    machine: MachineTimes
    swift_user: float
    swift_system: float
    load: float


def parse_proc_stat(text: str, tick: int = TICK) -> MachineTimes:
    """The machine-wide counters of /proc/stat's first line (proc(5)): user nice system idle
    iowait irq softirq steal guest guest_nice, in ticks; fields a kernel lacks count as 0."""
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == "cpu":
            ticks = [int(w) for w in words[1:9]] + [0] * (8 - len(words[1:9]))
            user, nice, system, idle, iowait, irq, softirq, steal = ticks
            return MachineTimes(
                (user + nice) / tick,
                (system + irq + softirq) / tick,
                (idle + iowait) / tick,
                steal / tick,
            )
    raise ValueError("no 'cpu' line in /proc/stat")


def parse_pid_stat(text: str, tick: int = TICK) -> tuple[int, float, float]:
    """(parent pid, user s, system s) of one /proc/PID/stat, the children it has reaped
    included (cutime, cstime). The command name may hold spaces and parentheses: the fields
    start after its last ')'."""
    fields = text.rsplit(")", 1)[1].split()
    # stat(5) numbers from 1: 4 ppid, 14 utime, 15 stime, 16 cutime, 17 cstime; here 3 lower
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return ppid, (utime + cutime) / tick, (stime + cstime) / tick


def process_table(proc: Path = PROC) -> dict[int, tuple[int, float, float]]:
    """pid -> (ppid, user s, system s) of every process now (one that ends meanwhile is
    skipped)."""
    table = {}
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            table[int(entry.name)] = parse_pid_stat((proc / entry.name / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue
    return table


def tree_times(
    roots: Iterable[int], table: dict[int, tuple[int, float, float]]
) -> tuple[float, float]:
    """(user s, system s) of the processes ``roots`` and all their live descendants (a server
    that forks workers); an ended child that its parent reaped is in the parent's figures."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    seen: set[int] = set()
    todo = [pid for pid in roots if pid]
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        todo += children.get(pid, [])
    return sum(table[p][1] for p in seen), sum(table[p][2] for p in seen)


def machine_times(proc: Path = PROC) -> MachineTimes:
    return parse_proc_stat((proc / "stat").read_text())


def load1(proc: Path = PROC) -> float:
    """The 1-minute load average now."""
    return float((proc / "loadavg").read_text().split()[0])


def read(swift_pids: Iterable[int] = (), proc: Path = PROC) -> Reading:
    """The machine's counters and the Swift's (no Swift: zeros)."""
    pids = list(swift_pids)
    user, system = tree_times(pids, process_table(proc)) if pids else (0.0, 0.0)
    return Reading(machine_times(proc), user, system, load1(proc))


def charge(before: Reading, after: Reading, user: float, system: float) -> dict[str, float]:
    """What a run that used ``user`` and ``system`` seconds of its own is charged, from the
    readings around it. The rest of the machine is what its CPUs were busy with beyond the
    run and the Swift: /proc/stat counts in ticks (10 ms) and the run's own time is exact, so
    it can come out a few ticks below zero on an idle machine; it is kept as measured."""
    swift_user = after.swift_user - before.swift_user
    swift_system = after.swift_system - before.swift_system
    machine_user = after.machine.user - before.machine.user
    machine_system = after.machine.system - before.machine.system
    return {
        "user": user,
        "system": system,
        "swift_user": swift_user,
        "swift_system": swift_system,
        "other_user": machine_user - user - swift_user,
        "other_system": machine_system - system - swift_system,
        "idle": after.machine.idle - before.machine.idle,
        "steal": after.machine.steal - before.machine.steal,
        "load": before.load,
    }
