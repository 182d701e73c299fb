"""A restore drill: restore a random sample of files with duplicity and compare them.

The drill is a function of a loaded profile, its duplicity environment and a scratch folder
(:func:`run`), nothing else on this machine: with another HOME, GNUPGHOME and config it drills
a backup from nothing (the local signature cache is used when present, the target's copy
otherwise).

Steps: read the manifests and signatures of the backup chain at the requested time (per chain
of a split profile); pick the sample from the files the signatures list (``sampling.py``);
plan the duplicity restores (``drillplan.py``); fetch the volumes they need into a local copy,
several at once, each checked against its manifest hash (``volume_fetch.py``): a missing or
corrupt volume fails exactly the files that need it; run the restores from that copy
(``file://``, duplicity's own restore code, several at once: ``drill_restore.py``), and compare
each restored file (``drill_compare.py``):

- with the source file, byte for byte, when its modification time and size are as the backup
  recorded them;
- otherwise with the signature duplicity recorded when it read the file (``signatures.py``), so
  a file changed since the backup is no mismatch, nor one the drill cannot read;

and every path (but a symlink) by its type and the metadata a restore brings back, as the
signatures recorded it: permission bits, mtime to the second, owner as root.

What it says when it cannot drill, or cannot check a file, is built in ``drill_messages.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import random
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from cfbackup import (
    chains,
    drill_restore,
    drillplan,
    execute,
    sampling,
    signatures,
    stores,
    volume_fetch,
    volume_keys,
    volumes,
    workpool,
)
from cfbackup import drill_messages as messages
from cfbackup.config.model import Profile
from cfbackup.drill_compare import FAILED, MATCH, MISMATCH, SKIPPED, FileResult, compare
from cfbackup.duplicity import commands, names
from cfbackup.errors import (
    BackupDamaged,
    CfbackupError,
)

log = logging.getLogger("cfbackup")


@dataclasses.dataclass
class Report:
    seed: int
    sample: str
    files_in_backup: int = 0
    files: list[FileResult] = dataclasses.field(default_factory=list)
    restores: int = 0
    bytes_restored: int = 0
    volumes_fetched: int = 0
    bytes_fetched: int = 0
    bad_volumes: list[str] = dataclasses.field(default_factory=list)
    stopped: bool = False  # --max-duration reached
    drilled: list[str] = dataclasses.field(default_factory=list)  # the backup each chain is at
    # duplicity restores that failed for a cause other than damage (a crash, a full disk): the
    # files they held are not checked, and the drill fails with that cause, not "damaged"
    errors: list[CfbackupError] = dataclasses.field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    def named(self, status: str) -> list[FileResult]:
        return [f for f in self.files if f.status == status]

    @property
    def checked(self) -> int:
        return self.count(MATCH) + self.count(MISMATCH)

    def stats(self) -> dict:
        """What the run history keeps (and the metrics read)."""
        return {
            "seed": self.seed,
            "sample": self.sample,
            "files_in_backup": self.files_in_backup,
            "files_sampled": len(self.files),
            "files_checked": self.checked,
            "matches": self.count(MATCH),
            "matched_source": sum(1 for f in self.files if f.reference == "source"),
            "mismatches": self.count(MISMATCH),
            "failures": self.count(FAILED),
            "skipped": self.count(SKIPPED),
            "bytes_restored": self.bytes_restored,
            "restores": self.restores,
            "volumes_fetched": self.volumes_fetched,
            "bytes_fetched": self.bytes_fetched,
            "bad_volumes": self.bad_volumes,
            "drilled": self.drilled,
            "stopped_at_max_duration": self.stopped,
            "restore_errors": [e.message for e in self.errors][:10],
            "problems": [
                {"path": f.path, "status": f.status, "reason": f.reason}
                for f in self.files
                if f.status in (MISMATCH, FAILED)
            ][:100],
        }


@dataclasses.dataclass
class _Chain:
    """What the drill knows of one duplicity chain."""

    chain: chains.Chain
    store: stores.Store
    sets: list[volumes.BackupSet]
    entries: dict[str, signatures.Entry]
    sigtars: list[Path]
    copy: Path
    _cache: dict = dataclasses.field(default_factory=dict)

    def volumes_for(self, index: tuple[bytes, ...]) -> list[volumes.VolumeRef]:
        if index not in self._cache:
            self._cache[index] = volumes.needed_for(self.sets, [index])
        return self._cache[index]


def run(
    profile: Profile,
    env: dict[str, str],
    workdir: Path,
    *,
    sample: sampling.Sample,
    seed: int,
    when: float | None = None,
    deadline: float | None = None,
    same: Sequence[str] = (),
) -> Report:
    """Drill ``profile`` (its chain at ``when``, Unix time; the newest when None) in
    ``workdir``, an empty private folder the caller removes; stop at ``deadline``
    (time.monotonic()). ``same``: the options that chose the backup drilled (``--time T``,
    ``--from-nothing``), kept by a drill command a message suggests."""
    report = Report(seed=seed, sample=sample.describe())
    return _Drill(profile, env, workdir, report, deadline, same).run(sample, when)


class _Drill:
    """One drill's state: what it found so far, and how to stop it (deadline, Ctrl-C)."""

    def __init__(
        self,
        profile: Profile,
        env: dict[str, str],
        workdir: Path,
        report: Report,
        deadline: float | None,
        same: Sequence[str] = (),
    ):
        self.profile, self.env, self.workdir, self.report = profile, env, workdir, report
        self.deadline, self.same = deadline, list(same)
        self.keys = volume_keys.Keys.for_profile(profile, env)
        self.stop = threading.Event()
        self.stores: list[stores.Store] = []  # the chains' stores: _halt ends their downloads
        self.group = execute.ProcessGroup()
        self.results: dict[tuple[int, str], FileResult] = {}
        self.lock = threading.Lock()

    def run(self, sample: sampling.Sample, when: float | None) -> Report:
        timer = None
        if self.deadline is not None:
            timer = threading.Timer(max(0.0, self.deadline - time.monotonic()), self._time_up)
            timer.daemon = True
            timer.start()
        try:
            with contextlib.ExitStack() as cleanup:
                self._drill(sample, when, cleanup)
        except KeyboardInterrupt:
            self._halt()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        return self.report

    def _time_up(self) -> None:
        log.info("drill: max-duration reached, stopping")
        self._halt()

    def _halt(self) -> None:
        with self.lock:
            self.stop.set()
            opened = list(self.stores)
        for store in opened:  # a listing or a manifest's download stalled on the network
            store.abort()
        self.group.stop_all()

    def _open_store(self, profile: Profile) -> stores.Store:
        """The chain's store, which :meth:`_halt` aborts (at once when it ran already)."""
        store = stores.open_store(profile)
        with self.lock:
            self.stores.append(store)
            halted = self.stop.is_set()
        if halted:
            store.abort()
        return store

    def _drill(self, sample: sampling.Sample, when: float | None, cleanup) -> None:
        report = self.report
        found = []
        for chain in chains.of(self.profile):
            try:
                c = self._read_chain(chain, cleanup, when)
            except stores.Stopped:  # max-duration ran out while it read the chain
                if not self.stop.is_set():
                    raise
                c = None
            if self.stop.is_set():
                report.stopped = self.deadline is not None
                return
            if c is not None:
                found.append(c)
        if not found:
            raise messages.no_backup(self.profile, when)
        population = [(c, e) for c in found for e in _sampleable(c.entries)]
        report.files_in_backup = len(population)
        picked = sampling.pick_files(
            population, sample, random.Random(report.seed), size=lambda item: item[1].size
        )
        log.info(
            "drill: %d of %d files sampled (seed %d)", len(picked), len(population), report.seed
        )
        for c in found:
            members = [e for chain, e in picked if chain is c]
            if members:  # their signatures, read again (all of them would not fit)
                kept = signatures.read(c.sigtars, keep={e.path for e in members})
                members = [kept[e.path] for e in members]
                for entry in members:
                    self.results[(id(c), entry.path)] = FileResult(entry.path, entry.size)
                self._drill_chain(c, members)
        report.files = [self.results[(id(c), e.path)] for c, e in picked]
        report.stopped = self.stop.is_set() and self.deadline is not None
        why = "max-duration reached before it was restored" if report.stopped else "not restored"
        for result in report.named(SKIPPED):
            result.reason = result.reason or why

    def _read_chain(
        self, chain: chains.Chain, cleanup: contextlib.ExitStack, when: float | None
    ) -> _Chain | None:
        store = self._open_store(chain.profile)
        every = volumes.backup_sets(store, naming=names.of(chain.profile), chain=chain.slug)
        sets = volumes.chain_at(every, when)
        if not sets:
            self._refuse_unfinished(every, store, when, interrupted_ok=bool(chain.root))
            fulls = [s for s in volumes.complete(every) if s.kind == "full"]
            if chain.root and when is not None and fulls:  # backed up, after --time only
                log.warning(
                    "chain %s has no backup at or before --time (its oldest is the %s): left out",
                    chain.label,
                    fulls[0].label,
                )
            elif chain.root:
                log.warning("chain %s has no backup yet: left out", chain.label)
            return None
        lost = [s for s in sets if not s.manifest]
        if lost:  # duplicity's restore dies there: drilling an older state would hide it
            raise messages.lost_manifests(lost, store, self.profile.name)
        self.report.drilled.append(
            (f"{chain.label}: " if chain.root else "") + f"the {sets[-1].label}"
        )
        unreadable = volumes.read_manifests(store, sets, self.keys, self.stop)
        if unreadable:
            raise messages.unreadable_manifest(unreadable[0], self.profile.name)
        private = self.workdir / "signatures" / (chain.slug or "main")
        private.mkdir(parents=True, exist_ok=True, mode=0o700)
        sigtars = []
        for backup_set in sets:
            if not backup_set.signatures:
                raise messages.no_signatures(backup_set, store, self.profile.name)
            local = _cached_signatures(chain.profile, backup_set.signatures)
            sigtars.append(
                local
                or cleanup.enter_context(
                    volumes.clear_copy(
                        store,
                        backup_set.signatures,
                        self.keys,
                        private,
                        profile=self.profile.name,
                        stop=self.stop,
                    )
                )
            )
        copy = self.workdir / "copy" / (chain.slug or "main")
        return _Chain(chain, store, sets, signatures.read(sigtars), sigtars, copy)

    def _refuse_unfinished(
        self,
        every: list[volumes.BackupSet],
        store: stores.Store,
        when: float | None,
        *,
        interrupted_ok: bool,
    ) -> None:
        """Nothing to drill at ``when``, but a set without a manifest is there: say which, not
        "no backup". duplicity uploads a backup's signatures, then its manifest: with the
        signatures there the manifest was lost (``verify``'s damage), without them the backup
        was interrupted (the next backup resumes it; ``interrupted_ok``: an include root whose
        first backup was interrupted is left out as one never backed up)."""
        unfinished = [s for s in every if not s.manifest and (when is None or s.end <= when)]
        if not unfinished:
            return
        newest = unfinished[-1]
        if not newest.signatures:
            if interrupted_ok:
                return
            raise messages.interrupted(newest, store, self.profile.name, when)
        raise messages.manifest_lost(newest, store, self.profile)

    def _drill_chain(self, c: _Chain, members: list[signatures.Entry]) -> None:
        """Fetch what the sample of one chain needs, restore it, compare. With a time limit no
        restore is planned to take more than a quarter of the time left."""
        limit = (self.deadline - time.monotonic()) / 4 if self.deadline is not None else None
        sizes = drillplan.Sizes(list(c.entries.values()))
        fetched: dict[str, volume_fetch.Outcome] = {}
        remaining = list(members)
        try:
            volumes.copy_objects(c.store, [s.manifest for s in c.sets], c.copy, self.stop)
        except stores.Stopped:  # max-duration ran out: its files stay skipped
            if not self.stop.is_set():
                raise
            return
        units: list[drillplan.Unit] = []
        while remaining and not self.stop.is_set():
            bad = {key for key, outcome in fetched.items() if not outcome.ok}
            units = drillplan.plan(
                remaining,
                c.volumes_for,
                sizes,
                usable=lambda unit, bad=bad: not any(v.key in bad for v in unit.volumes),
                max_unit_seconds=limit,
            )
            need = {v.key: v for u in units for v in u.volumes if v.key not in fetched}
            if not need:
                break
            self._check_space(c.copy, list(need.values()), units)
            for outcome in volume_fetch.fetch(
                c.store,
                need.values(),
                c.copy,
                stop=self.stop,
                retry=commands.retry_policy(self.profile),
                action="drill",
            ):
                fetched[outcome.ref.key] = outcome
                self.report.volumes_fetched += 1
                self.report.bytes_fetched += outcome.bytes
                if not outcome.ok:
                    self.report.bad_volumes.append(outcome.describe())
                    log.info("drill: %s (%s)", outcome.describe(), outcome.detail)
            still = [e for e in remaining if not self._fail_if_broken(c, e, fetched)]
            if len(still) == len(remaining):
                break
            remaining = still
        runnable = [
            u for u in units if all(v.key in fetched and fetched[v.key].ok for v in u.volumes)
        ]
        self._restore_units(c, runnable)

    def _check_space(self, folder: Path, need: list[volumes.VolumeRef], units: list) -> None:
        """Enough room for the volumes and the largest restore (deleted after its
        comparison)."""
        largest = max((sum(e.size for e in u.files) for u in units), default=0)
        wanted = sum(v.size or 0 for v in need) + largest
        free = shutil.disk_usage(folder).free
        if wanted * 1.1 > free:
            raise messages.no_room(folder, len(need), wanted, free, self.profile.name, self.same)

    def _fail_if_broken(self, c: _Chain, entry: signatures.Entry, fetched: dict) -> bool:
        """Mark a file that needs a bad volume as failed, naming the volume."""
        broken = [fetched[v.key] for v in c.volumes_for(entry.index) if v.key in fetched]
        broken = [outcome for outcome in broken if not outcome.ok]
        if broken:
            result = self.results[(id(c), entry.path)]
            result.status = FAILED
            result.reason = "; ".join(f"its {o.describe()}" for o in broken)
        return bool(broken)

    def _restore_units(self, c: _Chain, units: list[drillplan.Unit]) -> None:
        """Run the units' restores (``parallel`` at once, each worker its own archive dir:
        duplicity locks it) and compare what they restored."""
        archives = drill_restore.WorkerFolders(self.workdir / "archive")
        workpool.run_all(
            [
                functools.partial(self._restore_unit, c, i, u, len(units), archives)
                for i, u in enumerate(units)
            ],
            workers=chains.workers(self.profile, len(units)),
            name="drill",
            halt=self._halt,
        )

    def _restore_unit(
        self,
        c: _Chain,
        number: int,
        unit: drillplan.Unit,
        count: int,
        archives: drill_restore.WorkerFolders,
    ) -> None:
        if self.stop.is_set():
            return
        local = volumes.copy_profile(c.chain.profile, c.copy, archives.mine())
        out = self.workdir / "restored" / f"{c.chain.slug or 'main'}-{number}"
        env = {k: v for k, v in self.env.items() if k in drill_restore.RESTORE_VARIABLES}
        try:
            refused = drill_restore.restore(local, unit, out, env, self.group, self.workdir)
        except CfbackupError as error:
            if not self.stop.is_set():  # cut short by the deadline: skipped, not failed
                self._restore_failed(c, unit, error)
            return
        finally:
            with self.lock:
                self.report.restores += 1
        try:
            for entry in unit.files:
                result = self.results[(id(c), entry.path)]
                if entry.path in refused:
                    self._not_restored_here(result, entry.path, refused[entry.path])
                    continue
                compare(
                    entry,
                    drill_restore.restored_path(unit, entry, out),
                    self.profile.source,
                    result,
                )
                with self.lock:
                    self.report.bytes_restored += result.size
        finally:
            shutil.rmtree(out, ignore_errors=True)
        log.info("drill: restore %d of %d done (%s)", number + 1, count, unit.path or "/")

    def _not_restored_here(self, result: FileResult, path: str, reason: str) -> None:
        """duplicity could not write ``path`` here and went on (a device file without
        CAP_MKNOD): this machine's limit, not the backup's damage, so the file is left
        unchecked and the drill fails with that cause (exit 9), as a restore does; "did not
        produce it" made it a mismatch, exit 8, "the backup is damaged"."""
        result.reason, error = messages.not_restorable_here(path, reason)
        with self.lock:
            self.report.errors.append(error)

    def _restore_failed(self, c: _Chain, unit: drillplan.Unit, error: CfbackupError) -> None:
        """Only a failure duplicity's output shows to be damage (``classify_failure``) makes
        the unit's files ones that cannot be restored; any other (duplicity crashed, no space)
        leaves them unchecked and is the drill's own error: a false "damaged" would send the
        user to a full backup that cannot help."""
        damaged = isinstance(error, BackupDamaged)
        for entry in unit.files:
            result = self.results[(id(c), entry.path)]
            if damaged:
                result.status = FAILED
                result.reason = f"duplicity restore failed: {error.message}"
            else:
                result.reason = f"not checked: duplicity restore failed: {error.message}"
        if not damaged:
            with self.lock:
                self.report.errors.append(error)


def _sampleable(entries: dict[str, signatures.Entry]) -> list[signatures.Entry]:
    """What a drill can sample, in duplicity's order: files, symlinks, FIFOs, devices and empty
    folders, each of which a restore brings back alone. A folder with something in it would be
    a restore of all that (its own metadata is restored with what is sampled in it); the
    source folder itself is the whole backup."""
    parents = {e.index[:-1] for e in entries.values()}
    return [
        e
        for e in sorted(entries.values(), key=lambda e: e.index)
        if e.path and (e.kind != signatures.DIRECTORY or e.index not in parents)
    ]


def _cached_signatures(profile: Profile, name: str) -> Path | None:
    """duplicity's own clear copy of a signature tar in the archive dir, if it has one."""
    local = name[: -len(".gpg")] + ".gz" if name.endswith(".gpg") else name
    path = profile.archive_dir / profile.backup_name / local
    return path if path.is_file() else None
