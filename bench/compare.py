#!/usr/bin/env python3
"""cfbackup against raw duplicity and restic: same data, same local Swift, one invocation.

    .venv/bin/python bench/compare.py [--size-mb 200] [--files 2000] [--repeat 3]
    .venv/bin/python bench/compare.py --scale [--scale-files 1000,10000,100000]

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
Medians are reported with ratios; peak RSS is the largest process of the run's tree.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import dataset
import harness
from harness import CFBACKUP, DUPLICITY, RESTIC, Sample, measure, median

PROFILE = "bench"
BACKUP_OPS = ("full", "incremental", "no-change")
RESTORE_OPS = ("restore-one", "restore-all")
OPS = BACKUP_OPS + RESTORE_OPS
TOOLS = ("cfbackup", "dup-same", "dup-def", "restic")
CHANGE_SEED = 2


@dataclasses.dataclass
class Rep:
    """One repetition: its number and its directory (configs, caches, restores)."""

    index: int
    dir: Path
    source: Path


def toml_value(value: object) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def with_source(value: object, source: Path) -> object:
    """``{src}`` in a --set value (or in the strings of a list) is the data set's tree, e.g.
    ``--set 'include=["{src}/d00","{src}/large","{src}/added"]' --set split_chains=true``
    (the 1% change adds its new file under added/)."""
    if isinstance(value, str):
        return value.replace("{src}", str(source))
    if isinstance(value, list):
        return [with_source(v, source) for v in value]
    return value


def write_config(path: Path, rep: Rep, container: str, sw: harness.Swift, extra: dict) -> Path:
    """A cfbackup config with its defaults, plus ``--set`` overrides (KEY or TABLE.KEY)."""
    tables: dict[str, dict] = {
        "": {
            "source": str(rep.source),
            "target": f"swift://{container}",
            "archive_dir": str(path.parent / "archive"),
        },
        "encryption": {"passphrase_file": str(rep.dir.parent / "passphrase")},
        "swift": {"auth_url": sw.auth_url, "username": sw.user, "password_env": "BENCH_SWIFT_KEY"},
    }
    for key, value in extra.items():
        value = with_source(value, rep.source)
        table, _, name = key.rpartition(".")
        tables.setdefault(table, {})[name] = value
    lines = ["# written by bench/compare.py", f'state_dir = "{path.parent / "state"}"', ""]
    for table, values in tables.items():
        lines.append(f"[profiles.{PROFILE}{'.' + table if table else ''}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


class Tool:
    name = ""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench

    def container(self, rep: Rep) -> str:
        return f"{self.name}-r{rep.index}"

    def dir(self, rep: Rep) -> Path:
        return rep.dir / self.name

    def setup(self, rep: Rep) -> None:
        self.dir(rep).mkdir(parents=True, exist_ok=True)

    def backup(self, rep: Rep) -> Sample:
        raise NotImplementedError

    def restore(self, rep: Rep, target: Path, rel: str | None) -> tuple[Sample, Path]:
        """Restore ``rel`` (or everything) under ``target``; returns where it landed."""
        raise NotImplementedError

    def after_backup(self, rep: Rep) -> Sample | None:
        return None

    def log(self, rep: Rep) -> Path:
        return self.dir(rep) / "output.log"


class Cfbackup(Tool):
    name = "cfbackup"

    def setup(self, rep: Rep) -> None:
        super().setup(rep)
        self.config = write_config(
            self.dir(rep) / "config.toml",
            rep,
            self.container(rep),
            self.bench.swift,
            self.bench.settings,
        )
        self.env = {**harness.base_environment(), "BENCH_SWIFT_KEY": self.bench.swift.key}

    def _run(self, rep: Rep, *args: str) -> Sample:
        argv = [CFBACKUP, "--quiet", "-c", self.config, *args]
        self.bench.note_argv(self.name, args[0], argv)
        sample = measure(argv, self.env, self.log(rep))
        for command in run_log_commands(self.dir(rep) / "state" / "logs"):
            self.bench.note_ran(command)
        self.bench.note_phases(
            args[0], run_log_phases(self.dir(rep) / "state" / "logs"), sample.wall
        )
        return sample

    def backup(self, rep: Rep) -> Sample:
        return self._run(rep, "backup", PROFILE)

    def restore(self, rep: Rep, target: Path, rel: str | None) -> tuple[Sample, Path]:
        args = ["restore", PROFILE, str(target)] + (["--path", rel] if rel else [])
        return self._run(rep, *args), target / rel if rel else target


class DupSame(Tool):
    """duplicity with the argv cfbackup's own builder makes for the same profile."""

    name = "dup-same"

    def setup(self, rep: Rep) -> None:
        super().setup(rep)
        from cfbackup.config.load import load_config
        from cfbackup.duplicity.environment import duplicity_environment

        os.environ["BENCH_SWIFT_KEY"] = self.bench.swift.key  # the profile's password_env
        path = write_config(
            self.dir(rep) / "config.toml",
            rep,
            self.container(rep),
            self.bench.swift,
            self.bench.settings,
        )
        self.profile = load_config(path).profile(PROFILE)
        self.env = {**harness.base_environment(), **duplicity_environment(self.profile)}

    def _run(self, rep: Rep, build, what: str) -> Sample:
        log_fd = os.open(os.devnull, os.O_WRONLY)  # --log-fd as cfbackup passes it
        try:
            argv = [str(a) for a in build(log_fd)]
            if argv[0] == "duplicity":  # the runner starts the duplicity beside cfbackup
                argv = [str(DUPLICITY), *argv[1:]]
            self.bench.note_argv(self.name, what, argv)
            return measure(argv, self.env, self.log(rep), pass_fds=(log_fd,))
        finally:
            os.close(log_fd)

    def backup(self, rep: Rep) -> Sample:
        from cfbackup.duplicity import commands

        return self._run(rep, lambda fd: commands.backup_argv(self.profile, log_fd=fd), "backup")

    def after_backup(self, rep: Rep) -> Sample | None:
        """The retention cfbackup runs after each backup (retention.after_backup)."""
        from cfbackup.duplicity import commands

        if not self.profile["retention"]["after_backup"]:
            return None
        total = None
        for rule in commands.retention_rules(self.profile):
            sample = self._run(
                rep,
                lambda fd, rule=rule: commands.retention_argv(self.profile, rule, log_fd=fd),
                "retention",
            )
            if total is None:
                total = sample
            else:
                total = Sample(
                    total.wall + sample.wall,
                    total.cpu + sample.cpu,
                    max(total.peak_rss, sample.peak_rss),
                    sample.returncode,
                )
        return total

    def restore(self, rep: Rep, target: Path, rel: str | None) -> tuple[Sample, Path]:
        from cfbackup.duplicity import commands

        destination = target / rel if rel else target
        destination.parent.mkdir(parents=True, exist_ok=True)
        sample = self._run(
            rep,
            lambda fd: commands.restore_argv(self.profile, str(destination), path=rel, log_fd=fd),
            "restore",
        )
        return sample, destination


class DupDefaults(Tool):
    name = "dup-def"

    def setup(self, rep: Rep) -> None:
        super().setup(rep)
        self.env = {
            **harness.base_environment(),
            **self.bench.swift.env_v1(),
            "PASSPHRASE": self.bench.passphrase,
        }
        self.common = [f"--archive-dir={self.dir(rep) / 'archive'}"]
        self.url = f"swift://{self.container(rep)}"

    def backup(self, rep: Rep) -> Sample:
        argv = [DUPLICITY, "backup", *self.common, str(rep.source), self.url]
        self.bench.note_argv(self.name, "backup", argv)
        return measure(argv, self.env, self.log(rep))

    def restore(self, rep: Rep, target: Path, rel: str | None) -> tuple[Sample, Path]:
        destination = target / rel if rel else target
        destination.parent.mkdir(parents=True, exist_ok=True)
        path = [f"--path-to-restore={rel}"] if rel else []
        argv = [DUPLICITY, "restore", *self.common, *path, self.url, str(destination)]
        self.bench.note_argv(self.name, "restore", argv)
        return measure(argv, self.env, self.log(rep)), destination


class Restic(Tool):
    name = "restic"

    def setup(self, rep: Rep) -> None:
        super().setup(rep)
        sw = self.bench.swift
        self.env = {
            **harness.base_environment(),
            "ST_AUTH": sw.auth_url,
            "ST_USER": sw.user,
            "ST_KEY": sw.key,
            "RESTIC_PASSWORD": self.bench.passphrase,
            "RESTIC_CACHE_DIR": str(self.dir(rep) / "cache"),
        }
        self.repo = ["-r", f"swift:{self.container(rep)}:/"]
        measure([RESTIC, *self.repo, "init"], self.env, self.log(rep))

    def backup(self, rep: Rep) -> Sample:
        argv = [RESTIC, *self.repo, "backup", "--quiet", str(rep.source)]
        self.bench.note_argv(self.name, "backup", argv)
        return measure(argv, self.env, self.log(rep))

    def restore(self, rep: Rep, target: Path, rel: str | None) -> tuple[Sample, Path]:
        include = ["--include", str(rep.source / rel)] if rel else []
        argv = [RESTIC, *self.repo, "restore", "latest", "--target", str(target), *include]
        self.bench.note_argv(self.name, "restore", argv)
        landed = target / rep.source.relative_to("/")
        return measure(argv, self.env, self.log(rep)), landed / rel if rel else landed


TOOL_CLASSES = {"cfbackup": Cfbackup, "dup-same": DupSame, "dup-def": DupDefaults, "restic": Restic}

_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ \S+: (.*)$")


def run_log_phases(log_dir: Path) -> dict[str, float] | None:
    """Where a cfbackup run's time went, from the timestamps of its newest run log."""
    logs = sorted(log_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)
    if not logs:
        return None
    events = []
    for line in logs[-1].read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if match:
            stamp = datetime.datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            events.append((stamp, match[2]))

    def first(test) -> float | None:
        return next((t for t, m in events if test(m)), None)

    started = first(lambda m: m.startswith("cfbackup ") and m.endswith(" started"))
    runs = [t for t, m in events if m.startswith("running: ") and "duplicity" in m]
    finished = first(lambda m: " finished: " in m)
    if started is None or not runs or finished is None:
        return None
    # a retention rule that ran (a skipped one only logs); with split_chains the chains
    # overlap, so the split between the phases is approximate
    retention = first(lambda m: m.startswith("retention: ") and " skipped" not in m)
    done = first(lambda m: m.startswith("backup of ") and " done" in m)
    end_of_duplicity = retention or done or finished
    phases = {
        "in-run total": finished - started,
        "pre (pre-check, hooks)": runs[0] - started,
        "duplicity": end_of_duplicity - runs[0],
        "retention": (done - retention) if retention and done else 0.0,
        "post": finished - (done or end_of_duplicity),
    }
    return phases


def run_log_commands(log_dir: Path) -> list[str]:
    """The commands cfbackup's newest run log says it ran ("running: ..." lines)."""
    logs = sorted(log_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)
    if not logs:
        return []
    found = []
    for line in logs[-1].read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if match and match[2].startswith("running: "):
            found.append(match[2][len("running: ") :])
    return found


def duplicity_words(command: str) -> list[str]:
    """A duplicity command line from its command word on: cfbackup starts duplicity through its
    launcher (``cfbackup-duplicity``, or ``python -m cfbackup.duplicity.launcher``), dup-same
    runs the ``duplicity`` executable."""
    words = command.split()
    if words[1:3] == ["-m", "cfbackup.duplicity.launcher"]:
        return words[3:]
    return words[1:]


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

    def argv_check(self) -> str:
        """Compare what dup-same ran with what cfbackup ran, paths and names normalized."""
        if "dup-same" not in self.argv or not self.ran:
            return ""

        def normal(text: str, tool: str) -> str:
            text = text.replace(str(self.work), "<work>").replace(tool, "<tool>")
            return re.sub(r"--log-fd=\d+", "--log-fd=N", text)

        same = {
            w: normal(" ".join(duplicity_words(" ".join(a))), "dup-same")
            for w, a in self.argv["dup-same"].items()
        }
        lines = []
        for what, mine in same.items():
            word = mine.split()[0]
            theirs = self.ran.get(word)
            if theirs is None:
                lines.append(f"- {what}: cfbackup ran no `duplicity {word}`")
            elif normal(theirs, "cfbackup") != mine:
                lines.append(
                    f"- {what} DIFFERS:\n  cfbackup: `{normal(theirs, 'cfbackup')}`\n"
                    f"  dup-same: `{mine}`"
                )
        if lines:
            return "argv check: dup-same did NOT run exactly what cfbackup ran:\n" + "\n".join(
                lines
            )
        return (
            "argv check: dup-same ran exactly the duplicity command lines cfbackup ran "
            f"({', '.join(same)}; from the command word on, cfbackup's through its launcher; "
            "paths, container names and the log descriptor normalized)."
        )

    def note_phases(self, what: str, phases: dict | None, wall: float) -> None:
        if phases:
            phases = {"start-up and config": wall - phases["in-run total"], **phases}
            self.phases.setdefault(self._op, []).append(phases)

    def run(self, source: Path) -> None:
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
                for tool in order:
                    self._op = op
                    sample = tool.backup(rep)
                    self.samples[tool.name][op].append(sample)
                    self.stored[tool.name][op].append(
                        self.swift.container_bytes(tool.container(rep))[0]
                    )
                    extra = tool.after_backup(rep)
                    if extra is not None:
                        self.retention[op].append(extra)
                    self.log(
                        f"  {op:<12} {tool.name:<9} {sample.wall:7.2f} s"
                        + (f" (+ retention {extra.wall:.2f} s)" if extra else "")
                    )
            changed = {rel for rel, _ in undo["rewritten"]} if undo else set()
            rel = pick_file(rep.source, changed)
            want_file = file_digest(rep.source / rel)
            want_tree = dataset.tree_digest(rep.source)
            for op in RESTORE_OPS:
                for tool in order:
                    self._op = op
                    target = rep.dir / f"restore-{op}-{tool.name}"
                    sample, landed = tool.restore(rep, target, rel if op == "restore-one" else None)
                    got = (
                        file_digest(landed) if op == "restore-one" else dataset.tree_digest(landed)
                    )
                    if got != (want_file if op == "restore-one" else want_tree):
                        raise harness.BenchError(
                            f"{tool.name} {op}: restored data differ from the source ({landed})"
                        )
                    self.samples[tool.name][op].append(sample)
                    # restored trees stay until the repetition ends: ext4 scans recently
                    # deleted inodes when it allocates new ones, and creating 100k files
                    # right after deleting 100k took 10-25x the system time (measured)
                    self.log(f"  {op:<12} {tool.name:<9} {sample.wall:7.2f} s (verified)")
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

    def with_retention(self, op: str) -> float:
        backups = self.samples.get("dup-same", {}).get(op, [])
        extra = self.retention.get(op, [])
        if not backups or op not in BACKUP_OPS:
            return float("nan")
        if not extra:
            return median([s.wall for s in backups])
        return median([b.wall + r.wall for b, r in zip(backups, extra, strict=True)])

    def report(self, title: str = "") -> str:
        names = [t.name for t in self.tools]
        out = []
        if title:
            out.append(f"### {title}\n")
        headers = ["operation (median s)"] + names
        has_same = "dup-same" in names
        if has_same:
            headers.insert(headers.index("dup-same") + 1, "dup-same+ret")
        ratios = []
        if "cfbackup" in names:
            for other in ("dup-same", "dup-same+ret", "dup-def", "restic"):
                if other in names or (other == "dup-same+ret" and has_same):
                    ratios.append(other)
        headers += [f"cfb/{r}" for r in ratios]
        rows = []
        for op in OPS:
            values = {n: self.medians(n, op) for n in names}
            if has_same:
                values["dup-same+ret"] = self.with_retention(op)
            row = [op] + [
                harness.seconds(values[h]) for h in headers[1 : len(headers) - len(ratios)]
            ]
            row += [harness.ratio(values["cfbackup"], values[r]) for r in ratios]
            rows.append(row)
        if self.startup:
            start = {
                "cfbackup": median(self.startup["cfbackup"]),
                "restic": median(self.startup["restic"]),
            }
            for n in ("dup-same", "dup-same+ret", "dup-def"):
                start[n] = median(self.startup["duplicity"])
            row = ["start-up (--help)"] + [
                harness.seconds(start.get(h, float("nan")))
                for h in headers[1 : len(headers) - len(ratios)]
            ]
            row += [harness.ratio(start["cfbackup"], start[r]) for r in ratios]
            rows.append(row)
        out.append(harness.table(headers, rows))
        out.append("")
        rows = []
        for op in OPS:
            row = [op]
            for n in names:
                found = self.samples[n][op]
                cpu = median([s.cpu for s in found])
                swift_cpu = median([s.swift_cpu for s in found])
                peak = max((s.peak_rss for s in found), default=float("nan"))
                row.append(
                    f"{harness.seconds(cpu)} + {harness.seconds(swift_cpu)} / {harness.mib(peak)}"
                )
            rows.append(row)
        out.append(
            harness.table(["CPU s: tool + Swift (median) / peak RSS MiB (max)"] + names, rows)
        )
        out.append("")
        source_bytes = self.source_bytes
        rows = []
        for op in ("full", "incremental"):
            rows.append(
                [f"after {op}"]
                + [
                    f"{harness.mb(median(self.stored[n][op]))} MB "
                    f"({median(self.stored[n][op]) / source_bytes:.2f}x)"
                    for n in names
                ]
            )
        out.append(
            harness.table([f"stored in Swift (source {source_bytes / 1e6:.0f} MB)"] + names, rows)
        )
        if self.phases:
            out.append("")
            keys = list(next(iter(self.phases.values()))[0])
            rows = []
            for op in OPS:
                found = self.phases.get(op)
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

    def as_json(self) -> dict:
        return {
            "samples": {
                n: {op: [dataclasses.asdict(s) for s in v] for op, v in ops.items()}
                for n, ops in self.samples.items()
            },
            "retention_after_backup": {
                op: [dataclasses.asdict(s) for s in v] for op, v in self.retention.items()
            },
            "stored_bytes": self.stored,
            "cfbackup_phases": self.phases,
            "startup": self.startup,
            "argv": self.argv,
            "settings": self.settings,
        }


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
    work: Path, size_mb: float, files: int, seed: int, large_fraction: float
) -> Path:
    """The tree for these parameters, generated once and reused while intact."""
    name = f"data-{files}f-{size_mb:g}mb-s{seed}-l{large_fraction:g}"
    root = work / name / "src"
    marker = work / name / "intact.json"
    if marker.exists():
        return root
    shutil.rmtree(root.parent, ignore_errors=True)
    started = time.monotonic()
    summary = dataset.make(root, size_mb, files, seed, large_fraction=large_fraction)
    summary["seconds"] = round(time.monotonic() - started, 1)
    marker.write_text(json.dumps(summary))
    print(f"dataset: {summary}", file=sys.stderr)
    return root


def run_one(
    args, swift, work: Path, size_mb: float, files: int, large_fraction: float, startup: bool
) -> Bench:
    source = ensure_dataset(work, size_mb, files, args.seed, large_fraction)
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
    if extra:
        lines.append(extra)
    return "\n".join(lines)


def print_argv(bench: Bench) -> str:
    out = ["Exactly what each side ran (first repetition; secrets are in the environment):", ""]
    for tool, commands in bench.argv.items():
        for what, argv in commands.items():
            out.append(f"- {tool} {what}: `{' '.join(argv)}`")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=200, help="data set size (MB)")
    parser.add_argument("--files", type=int, default=2000, help="number of files")
    parser.add_argument(
        "--large-fraction", type=float, default=0.4, help="share of the bytes in a few large files"
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

    work = args.work or Path(tempfile.mkdtemp(prefix="cfbackup-bench-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    before = harness.uptime()
    results: dict = {"started": before}
    try:
        with harness.Swift(args.bandwidth * 1e6 if args.bandwidth else None) as swift:
            if not args.scale:
                bench = run_one(
                    args, swift, work, args.size_mb, args.files, args.large_fraction, startup=True
                )
                after = harness.uptime()
                print(
                    f"## cfbackup vs duplicity vs restic: {args.size_mb:g} MB, {args.files} files\n"
                )
                print(header(args, before, after) + "\n")
                print(bench.report())
                print("\n" + print_argv(bench))
                print("\n" + bench.argv_check())
                results.update(bench.as_json(), finished=after)
            else:
                counts = [int(n) for n in args.scale_files.split(",")]
                benches = {}
                for count in counts:
                    size = count * args.scale_kb / 1000
                    print(f"scale: {count} files, {size:g} MB", file=sys.stderr, flush=True)
                    benches[count] = run_one(args, swift, work, size, count, 0.0, startup=False)
                after = harness.uptime()
                print(
                    f"## Scale: {', '.join(map(str, counts))} files of {args.scale_kb:g} KB "
                    "on average\n"
                )
                print(header(args, before, after) + "\n")
                print(scale_report(benches, args.tools))
                for count, bench in benches.items():
                    print("\n" + bench.report(f"{count} files"))
                results.update({str(c): b.as_json() for c, b in benches.items()}, finished=after)
    finally:
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
