"""A restore's volumes fetched ahead while duplicity restores: from Swift, several at once, each
checked against its manifest hash and decrypted, into a local copy duplicity reads (``file://``).

duplicity downloads, checks and decrypts one volume, restores from it, and only then asks for the
next: the link idles while it restores, the CPU idles while it downloads, and gpg's key
derivation (a quarter of a second a volume with a passphrase, docs/performance.md) runs in
series. Here up to ``restore_prefetch`` volumes are on their way or waiting, on ``WORKERS``
threads, in the order duplicity reads them; duplicity takes each one when it gets to it (the
``prefetched-volumes`` patch makes its file backend wait for a volume still on its way and move
it rather than copy it). Only the volumes the restore needs are fetched: for ``--path``, those
whose manifest range holds the path (``volumes.needed_for``, duplicity's own rule).

Decrypted ahead when gpg alone opens the volumes: duplicity then reads clear tar volumes
(``--no-encryption``), and restoring takes one core instead of gpg's and duplicity's together.
gpg decrypts each volume while it downloads (``volume_fetch.fetch(clear=...)``): a volume is
ready as its last byte arrives, not a decryption later, and its encrypted bytes never touch the
disk.
With ``encryption.sign_key`` they stay as they are: duplicity decrypts them and checks their
signatures, as always.

Disk: the copy holds at most ``restore_prefetch`` volumes at once (50 MB each by default; more
when decrypted from compressed volumes), in a private folder under the profile's ``tempdir``
(else under ``state_dir``) that is removed on every way out (Ctrl-C included; one left by a
killed run is removed by the next). duplicity's own temp dir is there too (it moves each volume
out of the copy, no second copy), so its own check applies there: it wants room for 2.3 volumes
of its default 200 MB before it restores anything. Before each download the free space is
checked, less what the downloads under way have still to write; when even the volume duplicity
waits for does not fit, the restore stops with one sentence saying how much is needed where.

The chain is read with ``volumes.py`` (object names and manifests parsed by duplicity's own code)
and each volume fetched with ``volume_fetch.py``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from cfbackup import stores, volume_fetch, volume_keys, volume_size, volumes
from cfbackup.config.model import Profile
from cfbackup.duplicity import commands, names
from cfbackup.duplicity.patches import prefetched_volumes as protocol
from cfbackup.duplicity.target import swift_target
from cfbackup.errors import CfbackupError, ExitCode

log = logging.getLogger("cfbackup")

# Downloads (and decryptions) at once. Two keep a link busy while one volume decrypts, and on
# two cores leave one to duplicity (the gain at 2: docs/performance.md; other counts untried).
WORKERS = 2
RESERVE = 64 << 20  # free space a prefetch never takes (the restored files need room too)
POLL = protocol.POLL


@dataclasses.dataclass
class _Volume:
    ref: volumes.VolumeRef
    name: str  # its name in the copy (without .gpg/.gz when decrypted ahead)
    order: int | None  # its place in duplicity's reading order; None: fetched only if asked
    state: str = "queued"  # queued, fetching, ready (in the copy), taken (by duplicity), failed


@dataclasses.dataclass
class Plan:
    """What one chain's restore reads: the profile pointed at the copy, and the environment
    (the patch's settings) duplicity needs on top of the run's."""

    profile: Profile
    env: dict[str, str]
    prefetch: Prefetch


def enabled(profile: Profile) -> bool:
    """Prefetch applies to Swift targets when ``restore_prefetch`` is above 0."""
    return bool(profile.get("restore_prefetch")) and swift_target(profile.target) is not None


@contextlib.contextmanager
def restore_source(
    profile: Profile,
    env: dict[str, str],
    folder: Path,
    *,
    path: str | None,
    when: float | None,
    user_folder: Path,
    store: stores.Store | None = None,
) -> Iterator[Plan | None]:
    """The local copy a restore of ``path`` (everything when None) at ``when`` (Unix time,
    now when None) reads, filled
    while the restore runs; None when duplicity should read the target itself (nothing to
    restore there, or manifests it must report on). ``folder``: an empty private folder the
    caller removes; ``user_folder``: the folder it is in that the user chose and can make room
    in (the profile's tempdir, else state_dir), named when there is no room. A failure inside
    the block that the prefetch explains (a damaged volume, Swift gone, no space) is replaced
    by the prefetch's own sentence. ``store``: the chain's store (the run's target view's,
    which has listed it already), else one of its own."""
    fetcher = Prefetch(
        profile,
        env,
        folder,
        ahead=int(profile["restore_prefetch"]),
        user_folder=user_folder,
        store=store,
    )
    try:
        if not fetcher.plan(path, when):
            yield None
            return
        local = _local_profile(profile, fetcher)
        extra = environment(profile, folder)
        with fetcher:
            try:
                yield Plan(local, extra, fetcher)
            except CfbackupError as error:
                fetcher.close()
                better = fetcher.failure()
                if better is None:
                    raise
                better.detail = error.detail
                raise better from None
    finally:
        fetcher.close()  # the store's connections, also when the plan read only manifests


def environment(profile: Profile, folder: Path) -> dict[str, str]:
    """What duplicity's environment gets for a restore from the copy :func:`restore_source`
    fills in ``folder`` (known before the plan: a duplicity started warm gets it)."""
    clear = not profile["encryption"].get("sign_key")  # as Prefetch decides
    return {protocol.ENV: str(folder / "copy"), protocol.CLEAR: "1" if clear else "0"}


def _local_profile(profile: Profile, fetcher: Prefetch) -> Profile:
    """The chain's profile pointed at the copy, with a private archive dir (its manifests are
    the copy's) and the scratch folder as temp dir (volumes move there, not copied)."""
    (fetcher.folder / "tmp").mkdir(mode=0o700, exist_ok=True)
    local = volumes.copy_profile(
        profile, fetcher.copy, fetcher.folder / "archive", tempdir=fetcher.folder / "tmp"
    )
    if fetcher.clear:
        local.data["encryption"] = {**local.data["encryption"], "mode": "none"}
    return local


class Prefetch:
    """One chain's volumes on their way into ``copy`` while duplicity restores from it; a
    context manager whose exit stops the downloads (the caller removes the folder).
    ``user_folder``: where the user can make room (see :func:`restore_source`)."""

    def __init__(
        self,
        profile: Profile,
        env: dict[str, str],
        folder: Path,
        *,
        ahead: int,
        user_folder: Path,
        store: stores.Store | None = None,
    ):
        self.profile = profile
        self.folder = folder
        self.user_folder = user_folder
        self.copy = folder / "copy"  # environment() names it
        self.work = folder / "fetching"
        self.ahead = max(1, ahead)
        # a download that fails on Swift is tried again as duplicity tries its own requests
        self.retry = commands.retry_policy(profile)
        self.store = store or stores.open_store(profile)
        self.keys = volume_keys.Keys.for_profile(profile, env)
        enc = profile["encryption"]
        self.clear = not enc.get("sign_key")  # environment() decides the same
        self.stop = threading.Event()  # downloads stop (set by close, and by a failed fetch)
        self.closing = threading.Event()  # the restore is over: the scheduler stops
        self.volumes: dict[str, _Volume] = {}  # by name in the copy
        self.failed: list[volume_fetch.Outcome] = []
        self.error: BaseException | None = None
        self.fetched_bytes = 0
        self._thread: threading.Thread | None = None

    # ---- planning ---------------------------------------------------------------------------
    def plan(self, path: str | None, when: float | None) -> bool:
        """Read the chain at ``when`` and write the copy's manifests and listing; False when
        duplicity should see the target itself."""
        found = volumes.backup_sets(self.store, naming=names.of(self.profile))
        sets = volumes.chain_at(found, when)
        if not sets:
            return False
        lost = [s for s in sets if not s.manifest]
        if lost:  # duplicity would die on it with "AssertionError: No remote manifest name"
            from cfbackup.duplicity.failures import damaged

            raise damaged(volumes.lost_manifest_problem(lost[0], self.store), self.profile)
        uncached = [s for s in sets if not self._cached_manifest(s)]
        if volumes.read_manifests(self.store, uncached, self.keys):
            return False  # a damaged manifest: duplicity names it as it always did
        index = tuple(os.fsencode(p) for p in path.split("/")) if path else ()
        needed = {(r.set_label, r.number) for r in volumes.needed_for(sets, [index])}
        self.copy.mkdir(parents=True, mode=0o700)
        self.work.mkdir(mode=0o700)
        reading: list[tuple[tuple, str]] = []
        listing = []
        for position, backup_set in enumerate(sets):
            manifest = self._local_name(backup_set.manifest)
            listing.append(manifest)
            if self.clear:
                (self.copy / manifest).write_bytes(backup_set.info.to_string())
            else:
                volumes.copy_objects(self.store, [backup_set.manifest], self.copy)
            for ref in backup_set.volume_refs():
                name = self._local_name(ref.name)
                listing.append(name)
                self.volumes[name] = _Volume(ref, name, None)
                if (ref.set_label, ref.number) in needed:
                    start = backup_set.info.volume_info_dict[ref.number].start_index or ()
                    reading.append(((start, position, ref.number), name))
        for order, (_, name) in enumerate(sorted(reading)):
            self.volumes[name].order = order
        gone = [v.ref for v in self.volumes.values() if v.order is not None and v.ref.size is None]
        if gone:  # as duplicity does, before anything is restored
            from cfbackup.duplicity.failures import damaged

            raise damaged(
                volume_fetch.Outcome(gone[0], volume_fetch.MISSING).describe(), self.profile
            )
        (self.copy / protocol.LISTING).write_bytes(
            b"".join(os.fsencode(name) + b"\n" for name in listing)
        )
        log.debug(
            "prefetch: %d of %d volumes needed, %d ahead, %s",
            len(needed),
            len(self.volumes),
            self.ahead,
            "decrypted ahead" if self.clear else "as stored",
        )
        return True

    def _cached_manifest(self, backup_set: volumes.BackupSet) -> bool:
        """Read the set's manifest from duplicity's archive dir, which keeps each in clear and
        restores from it too (a download and a key derivation saved per set); False when it
        is not there."""
        from duplicity import manifest

        local = self.profile.archive_dir / self.profile.backup_name
        name = volume_keys.clear_name(backup_set.manifest)
        try:
            backup_set.info = manifest.Manifest().from_string((local / name).read_bytes())
        except (OSError, manifest.ManifestError, manifest.VolumeInfoError, ValueError):
            return False
        return True

    def _local_name(self, name: str) -> str:
        return volume_keys.clear_name(name) if self.clear else name

    # ---- running ----------------------------------------------------------------------------
    def __enter__(self) -> Prefetch:
        self._thread = threading.Thread(target=self._schedule, name="prefetch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.closing.set()
        self.stop.set()
        self.store.abort()  # a download stalled on the link must not hold up Ctrl-C or SIGTERM
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.store.close()  # its connections: the downloads are over (a spare's too)

    def _schedule(self) -> None:
        """Keep up to ``ahead`` volumes on their way or waiting, in reading order, and any
        volume duplicity asks for at once; until stopped."""
        running: dict[concurrent.futures.Future, _Volume] = {}
        pool = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="prefetch")
        try:
            # not self.stop: volume_fetch.fetch sets it when a download fails, and that failure
            # must still be seen here (else duplicity waits for a volume nobody fetches)
            while not self.closing.is_set():
                for future in [f for f in running if f.done()]:
                    self._finished(running.pop(future), future)
                if self.error is not None:
                    return
                self._notice_taken()
                for volume in self._to_start(len(running)):
                    volume.state = "fetching"
                    running[pool.submit(self._fetch, volume)] = volume
                if running:
                    concurrent.futures.wait(
                        running, timeout=POLL, return_when=concurrent.futures.FIRST_COMPLETED
                    )
                else:
                    self.closing.wait(POLL)
        except BaseException as error:  # noqa: BLE001 - reported through failure()
            self._fail_all(error)
        finally:
            self.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)

    def _to_start(self, running: int) -> list[_Volume]:
        """Volumes duplicity waits for, then the next in reading order while there is room (the
        free space less what the downloads under way have still to write). Once a volume has
        failed, only the ones duplicity asks for: it stops at the failed one (its sentence is
        the one the restore reports, not a later volume's), and nothing more is downloaded
        for a restore that is ending."""
        asked = self._asked()
        waiting = sum(1 for v in self.volumes.values() if v.state == "ready")
        queued = sorted(
            (v for v in self.volumes.values() if v.state == "queued" and v.order is not None),
            key=lambda v: v.order,
        )
        if self.failed:
            queued = []
        start = []
        free = self._free() - self._unwritten()
        for volume in asked + queued:
            if volume in start:
                continue
            urgent = volume in asked
            if not urgent and running + waiting + len(start) >= self.ahead:
                break
            need = self._room_for(volume)
            if free - need < RESERVE and urgent and running + len(start) == 0 and waiting:
                # duplicity waits for this one, and the volumes fetched ahead of it fill the
                # room: nothing would ever move (it takes none of them first). They go, and
                # are fetched again when their turn comes.
                free += self._evict(asked)
                waiting = 0
            if free - need < RESERVE:
                if urgent and running + waiting + len(start) == 0:
                    raise _NoSpace(need, free, self.user_folder)
                break
            free -= need
            start.append(volume)
        return start

    def _room_for(self, volume: _Volume) -> int:
        """What ``volume`` takes in the copy: its stored size, or decrypted ahead up to the
        size its backup wrote it at (a compressed volume decrypts larger than it is stored)."""
        stored = volume.ref.size or 0
        if not self.clear:
            return stored
        return max(stored, volume_size.largest(self.profile) << 20)  # duplicity: MiB

    def _unwritten(self) -> int:
        """What the downloads under way will still write: the free space does not show it yet,
        and two downloads started on the same room would together overrun the reserve. Each
        counts its room less its ``.part`` file so far (``volume_fetch`` writes it in the work
        folder; when it is not there, all of its room counts)."""
        pending = 0
        for volume in self.volumes.values():
            if volume.state != "fetching":
                continue
            try:
                written = (self.work / f"{volume.name}.part").stat().st_size
            except OSError:
                written = 0
            pending += max(0, self._room_for(volume) - written)
        return pending

    def _evict(self, asked: list[_Volume]) -> int:
        """Remove the volumes fetched ahead that duplicity is not waiting for; the bytes
        freed. duplicity, blocked on a volume it asked for, takes none of them meanwhile (and
        one it finds gone it asks for again)."""
        freed = 0
        for volume in self.volumes.values():
            if volume.state != "ready" or volume in asked:
                continue
            volume.state = "queued"  # first: _notice_taken must not count it as taken
            path = self.copy / volume.name
            with contextlib.suppress(OSError):
                freed += path.stat().st_size
                path.unlink()
        log.debug("prefetch: %d bytes fetched ahead removed to make room", freed)
        return freed

    def _asked(self) -> list[_Volume]:
        asked = []
        with os.scandir(self.copy) as entries:
            for entry in entries:
                if entry.name.endswith(".want"):
                    volume = self.volumes.get(entry.name[: -len(".want")])
                    if volume is None:
                        self._mark_failed(entry.name[: -len(".want")], "is not part of the chain")
                    elif volume.state == "queued":
                        asked.append(volume)
        return sorted(asked, key=lambda v: -1 if v.order is None else v.order)

    def _notice_taken(self) -> None:
        for volume in self.volumes.values():
            if volume.state == "ready" and not (self.copy / volume.name).exists():
                volume.state = "taken"

    def _free(self) -> int:
        return shutil.disk_usage(self.folder).free

    def _fetch(self, volume: _Volume) -> volume_fetch.Outcome | None:
        """Download and check one volume (decrypted as it arrives, for a clear copy), then put
        it into the copy."""
        outcomes = volume_fetch.fetch(
            self.store,
            [volume.ref],
            self.work,
            stop=self.stop,
            workers=1,
            retry=self.retry,
            action="restore",
            clear=self.keys if self.clear else None,
        )
        if not outcomes:
            return None  # stopped
        outcome = outcomes[0]
        if outcome.keys:  # the passphrase or the key, not the volume
            what = f"{volume.ref.name} at {self.store.label} ({outcome.detail})"
            raise volume_keys.keys_error(what, self.keys)
        if outcome.ok:
            os.replace(outcome.path, self.copy / volume.name)
        return outcome

    def _finished(self, volume: _Volume, future: concurrent.futures.Future) -> None:
        error = future.exception()
        if error is not None:  # volume_fetch.fetch tried it again as often as duplicity would
            log.debug("prefetch: %s: %s", volume.name, error)
            raise error
        outcome = future.result()
        if outcome is None:
            volume.state = "queued"
            return
        self.fetched_bytes += outcome.bytes
        if outcome.ok:
            volume.state = "ready"
            return
        volume.state = "failed"
        self.failed.append(outcome)
        self._mark_failed(volume.name, outcome.describe())

    def _mark_failed(self, name: str, problem: str) -> None:
        (self.copy / f"{name}{protocol.FAILED}").write_text(problem + "\n", encoding="utf-8")

    def _fail_all(self, error: BaseException) -> None:
        self.error = error
        text = error.message if isinstance(error, CfbackupError) else f"{error}"
        with contextlib.suppress(OSError):
            (self.copy / protocol.FAILED).write_text(f"{text}\n", encoding="utf-8")

    # ---- outcome ----------------------------------------------------------------------------
    def failure(self) -> CfbackupError | None:
        """The error that explains duplicity's failure, if the prefetch has one."""
        if isinstance(self.error, CfbackupError):
            return self.error
        if self.error is not None and not isinstance(self.error, Exception):
            return None  # KeyboardInterrupt and friends travel on their own
        if self.error is not None:
            return CfbackupError(f"fetching the volumes failed: {self.error}")
        if self.failed:
            from cfbackup.duplicity.failures import damaged

            return damaged(self.failed[0].describe(), self.profile)
        return None


class _NoSpace(CfbackupError):
    """No room for the volume duplicity waits for. ``where`` is the folder the user chose (the
    profile's tempdir, else state_dir), not the run's own folder inside it, which is gone by
    the time the user reads this."""

    def __init__(self, need: int, free: int, where: Path):
        from cfbackup.progress import human_bytes

        super().__init__(
            f"no space left for the next volume of the restore under {where}: it needs "
            f"about {human_bytes(need + RESERVE)} and {human_bytes(free)} is free: free some "
            "space there, set tempdir to a larger disk, or set restore_prefetch = 0 (duplicity "
            "then downloads one volume at a time into its temp dir).",
            exit_code=ExitCode.DUPLICITY,
        )
