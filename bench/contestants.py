"""The four contestants of ``compare.py``: what each runs for a backup and a restore.

- ``cfbackup``: the installed CLI with its defaults (``cfbackup --quiet -c CONFIG backup bench``);
- ``dup-same``: raw duplicity with the argv cfbackup's own builder makes for the same profile;
- ``dup-def``: raw duplicity with its defaults (plus ``--archive-dir``);
- ``restic``: restic with its defaults, swift backend.

Each has its own container and directory per repetition; ``bench`` is the running
``loop.Bench`` (its Swift, settings and passphrase, and where the argv are noted).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import harness
from harness import CFBACKUP, DUPLICITY, RESTIC, Sample, measure
from runlog import run_log_commands, run_log_phases

PROFILE = "bench"
TOOLS = ("cfbackup", "dup-same", "dup-def", "restic")


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

    def __init__(self, bench: Any) -> None:
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

        profile = self._as_cfbackup_decides(rep)
        return self._run(rep, lambda fd: commands.backup_argv(profile, log_fd=fd), "backup")

    def _as_cfbackup_decides(self, rep: Rep):
        """The profile with what cfbackup's "auto" settings become for this run
        (``cfbackup/link_choices.py``: the same probe, the same sample, the upload rate
        cfbackup's last backup of this repetition measured), decided before the timing. Only
        the first volume's size: raw duplicity keeps it for every volume, where cfbackup's
        follows its uploads."""
        from cfbackup import compression, link, link_choices, swift, volume_size

        if not link_choices.is_auto(self.profile):
            return self.profile
        conn = swift.connect(self.profile)
        try:
            seconds = link.round_trip(conn)
            objects = swift.list_target_objects(self.profile, conn)
        finally:
            conn.close()
        since = compression.since_of(self.profile, objects, force_full=False)
        # cfbackup's first backup of a repetition knows no rate (a fresh state dir), whether
        # or not its run came before this one; its later ones start from the full's
        learned = (
            volume_size.learned_rate(rep.dir / Cfbackup.name / "state", PROFILE)
            if objects
            else None
        )
        return link_choices.choose(self.profile, seconds, since=since, learned=learned).applied(
            self.profile
        )

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
            total = sample if total is None else total.plus(sample)
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
