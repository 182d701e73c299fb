"""A backup's volumes read straight from its target: which backup sets and volumes there are,
and fetching a set of volumes into a directory, several at once, each checked against the hash
its manifest records and, on request, decrypted and read as a tar.

``verify --read-data`` fetches a subset of every volume and keeps none of them; ``drill`` keeps
the volumes a sample of files needs as a local copy that duplicity restores from through a
``file://`` URL. A prefetch before a restore is the same calls::

    store = stores.open_store(chain.profile)               # the chain's swift:// or file:// target
    keys = volume_keys.Keys.for_profile(chain.profile, env)  # env: duplicity_environment(...)
    sets = volumes.chain_at(volumes.backup_sets(store), when)  # the sets duplicity would read
    volumes.read_manifests(store, sets, keys)
    wanted = volumes.needed_for(sets, [index])             # index: path in the backup, as bytes
    volumes.copy_objects(store, [s.manifest for s in sets], directory)
    outcomes = volumes.fetch(store, wanted, directory)     # Outcome per volume; .ok, .describe()
    # directory is now a target ``duplicity restore --path-to-restore PATH --time WHEN
    # file://DIRECTORY`` reads: it holds the manifests and every volume that path needs.

Names are parsed with duplicity's own ``file_naming`` and manifests with its ``Manifest``
class, so cfbackup reads them exactly as duplicity does. The hash a manifest records (SHA1 in
duplicity 3.2) is that of the encrypted object, the check duplicity makes before it restores
from a volume. Decryption is ``volume_keys.py``'s: the passphrase reaches gpg on a pipe
(``--passphrase-fd``), never its command line. ``fetch(..., clear=keys)`` keeps the volumes in
clear instead, each decrypted while it downloads (the restore prefetch's copy).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from cfbackup import workpool
from cfbackup.config.model import Profile
from cfbackup.errors import BackendError, CfbackupError, ExitCode, VerifyDifferences
from cfbackup.stores import FileSink, Missing, Stopped, Store
from cfbackup.volume_keys import Keys, Undecryptable, Unsigned, clear_name, keys_error

log = logging.getLogger("cfbackup")

# Downloads at once: Swift serves each object from one connection at a few tens of MB/s, and
# gpg decrypts a 50 MB volume in about half a second of one core (measured, docs/checks.md)
DEFAULT_WORKERS = 4

MISSING, CORRUPT, UNDECRYPTABLE, UNREADABLE = "missing", "corrupt", "undecryptable", "unreadable"
UNSIGNED = "unsigned"
PROBLEMS = {
    MISSING: "is missing at the target",
    CORRUPT: "is corrupt (its {hash} differs from the one in the manifest)",
    UNDECRYPTABLE: "does not decrypt",
    UNREADABLE: "decrypts but is not a readable tar",
    UNSIGNED: "decrypts but has no good signature by the profile's sign_key",
}


class CopyNotWritten(CfbackupError):
    """A volume's local copy could not be written (a full disk, mostly). It happens inside the
    download, where it read as "cannot reach Swift" and was tried again, and inside gpg, where
    it read as a volume that does not decrypt: neither is what a user must fix."""

    def __init__(self, path: Path, error: OSError):
        super().__init__(
            f"writing a copy of {path.name.removesuffix('.part')} under {path.parent} failed "
            f"({error.strerror or error}): free some space there or set tempdir to a larger "
            "disk (for a restore, restore_prefetch = 0 also does without the copy).",
            exit_code=ExitCode.DUPLICITY,
        )


# ---- backup sets and volumes ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VolumeRef:
    """One volume a manifest lists. ``chain`` tells split chains apart ("" for one chain);
    ``size`` is None when the object is not at the target."""

    name: str
    number: int
    set_label: str
    size: int | None
    hash: tuple[str, str] | None  # (algorithm as duplicity names it, hex digest)
    chain: str = ""

    @property
    def key(self) -> str:
        """Unique among a profile's volumes (split chains may repeat a name)."""
        return f"{self.chain}/{self.name}" if self.chain else self.name


@dataclasses.dataclass
class BackupSet:
    """A full or incremental backup set as its object names describe it."""

    kind: str  # "full" or "inc"
    end: int  # the set's time (Unix time, UTC)
    start: int | None = None  # an incremental's base time
    manifest: str | None = None
    volumes: dict[int, str] = dataclasses.field(default_factory=dict)
    signatures: str | None = None
    sizes: dict[str, int] = dataclasses.field(default_factory=dict)
    info: Any = None  # duplicity's Manifest, once read_manifests ran
    chain: str = ""
    problem: str = ""  # why the manifest could not be read
    key_problem: bool = False  # ... because of the keys or passphrase, not the manifest

    @property
    def label(self) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.end))
        return f"{'full' if self.kind == 'full' else 'incremental'} backup of {stamp} UTC"

    def volume_refs(self) -> list[VolumeRef]:
        """Every volume the manifest lists, in order (read_manifests first)."""
        refs = []
        for number, info in sorted(self.info.volume_info_dict.items()):
            name = self.volumes.get(number) or self._expected_name(number)
            best = info.get_best_hash()
            refs.append(
                VolumeRef(
                    name=name,
                    number=number,
                    set_label=self.label,
                    size=self.sizes.get(name),
                    hash=(best[0], best[1]) if best else None,
                    chain=self.chain,
                )
            )
        return refs

    def _expected_name(self, number: int) -> str:
        """The name duplicity would have given a volume that is not at the target."""
        known = next(iter(self.volumes.values()), None)
        if known:
            suffix = known[known.index(".difftar") + len(".difftar") :]
        else:
            suffix = ".gpg" if (self.manifest or "").endswith(".gpg") else ".gz"
        base = self.manifest[: self.manifest.index(".manifest")] if self.manifest else "?"
        return f"{base}.vol{number}.difftar{suffix}"


_NAMING = threading.Lock()


def _file_naming():
    """duplicity's ``file_naming`` with its name patterns built. ``prepare_regex`` (which its
    ``parse`` calls) assigns them one by one and returns early once the first is set, so a
    second thread parsing meanwhile (split chains restore side by side) found one still None."""
    from duplicity import file_naming

    with _NAMING:
        file_naming.prepare_regex()
    return file_naming


def backup_sets(store: Store, *, chain: str = "") -> list[BackupSet]:
    """The backup sets at the target, oldest first (complete or not: see ``complete``)."""
    file_naming = _file_naming()
    sets: dict[tuple, BackupSet] = {}
    signatures: dict[tuple, str] = {}
    for name, size in store.list().items():
        if name.endswith(".part"):
            continue
        parsed = file_naming.parse(os.fsencode(name))
        if parsed is None:
            continue
        if parsed.type in ("full-sig", "new-sig"):
            key = (
                (parsed.time,)
                if parsed.type == "full-sig"
                else (parsed.start_time, parsed.end_time)
            )
            signatures[key] = name
            continue
        if parsed.type not in ("full", "inc"):
            continue
        key = (parsed.time,) if parsed.type == "full" else (parsed.start_time, parsed.end_time)
        found = sets.setdefault(
            key,
            BackupSet(
                kind=parsed.type,
                end=int(parsed.time if parsed.type == "full" else parsed.end_time),
                start=None if parsed.type == "full" else int(parsed.start_time),
                chain=chain,
            ),
        )
        found.sizes[name] = size
        if parsed.manifest:
            found.manifest = name
        elif parsed.volume_number:
            found.volumes[int(parsed.volume_number)] = name
    for key, backup_set in sets.items():
        backup_set.signatures = signatures.get(key)
    return sorted(sets.values(), key=lambda s: (s.end, s.kind != "full"))


def complete(sets: Iterable[BackupSet]) -> list[BackupSet]:
    """The sets with a manifest: a set without one is an interrupted backup, which duplicity
    neither restores from nor verifies (the next backup resumes or replaces it)."""
    return [s for s in sets if s.manifest]


def chain_at(sets: list[BackupSet], when: float | None = None) -> list[BackupSet]:
    """The sets duplicity restores from at time ``when`` (now when None): the newest full
    backup at or before it and the incrementals that follow it without a gap."""
    chosen: list[BackupSet] = []
    for backup_set in complete(sets):
        if when is not None and backup_set.end > when:
            break
        if backup_set.kind == "full":
            chosen = [backup_set]
        elif chosen and backup_set.start == chosen[-1].end:
            chosen.append(backup_set)
    return chosen


def read_manifests(store: Store, sets: Iterable[BackupSet], keys: Keys) -> list[BackupSet]:
    """Download, decrypt and parse each set's manifest (duplicity's Manifest in ``set.info``).
    Returns the sets whose manifest could not be read (``set.problem`` says why); raises
    CryptoError when the keys or the passphrase are the reason."""
    from duplicity import manifest as duplicity_manifest

    unreadable = []
    for backup_set in sets:
        data = bytearray()
        try:
            store.download(backup_set.manifest, data.extend, threading.Event())
            plain = keys.decrypt_bytes(bytes(data), backup_set.manifest)
            backup_set.info = duplicity_manifest.Manifest().from_string(plain)
        except Missing:
            backup_set.problem = "it is missing at the target"
        except Undecryptable as error:
            backup_set.problem = f"it {error.described()}"
            backup_set.key_problem = error.keys
        except (
            duplicity_manifest.ManifestError,
            duplicity_manifest.VolumeInfoError,
            ValueError,
            IndexError,
        ) as error:
            backup_set.problem = f"it is not a manifest duplicity can read ({error})"
        if backup_set.problem:
            log.warning("manifest %s is not usable: %s", backup_set.manifest, backup_set.problem)
            unreadable.append(backup_set)
    if any(s.key_problem for s in unreadable) and keys.mode != "none":
        raise keys_error(f"the manifests at {store.label} ({unreadable[0].problem})")
    return unreadable


def needed_for(sets: Iterable[BackupSet], indexes: Iterable[tuple[bytes, ...]]) -> list[VolumeRef]:
    """The volumes duplicity reads to restore each path (an index: the path's components as
    bytes, ``()`` for everything), in set order, each once: per set, the volumes whose
    recorded path range may hold the path (``Manifest.get_containing_volumes``)."""
    wanted: list[VolumeRef] = []
    seen: set[str] = set()
    indexes = list(indexes)
    for backup_set in sets:
        refs = {ref.number: ref for ref in backup_set.volume_refs()}
        numbers: set[int] = set()
        for index in indexes:
            numbers.update(backup_set.info.get_containing_volumes(index))
        for number in sorted(numbers):
            ref = refs[number]
            if ref.key not in seen:
                seen.add(ref.key)
                wanted.append(ref)
    return wanted


# ---- fetching -------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    """What became of one volume: ``problem`` is None when it arrived intact."""

    ref: VolumeRef
    problem: str | None = None
    detail: str = ""
    bytes: int = 0
    seconds: float = 0.0
    path: Path | None = None  # the kept copy (as stored, or in clear with ``clear``)
    keys: bool = False  # undecryptable because of the keys or the passphrase (gpg's words)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        """``volume NAME (volume 3 of the full backup of ...) is missing at the target``."""
        what = PROBLEMS[self.problem].format(hash=self.ref.hash[0] if self.ref.hash else "hash")
        where = f"{self.ref.chain}/" if self.ref.chain else ""
        shown = self.detail and self.problem in (UNDECRYPTABLE, UNREADABLE, UNSIGNED)  # gpg's
        detail = f" ({self.detail})" if shown else ""
        return (
            f"volume {where}{self.ref.name} (volume {self.ref.number} of the {self.ref.set_label})"
            f" {what}{detail}"
        )


def fetch(
    store: Store,
    refs: Iterable[VolumeRef],
    directory: Path,
    *,
    keys: Keys | None = None,
    keep: bool = True,
    clear: Keys | None = None,
    workers: int = DEFAULT_WORKERS,
    stop: threading.Event | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    retry: tuple[int, float] = (1, 0.0),
    action: str = "fetch",
) -> list[Outcome]:
    """Download ``refs`` into ``directory`` (up to ``workers`` at once), check each against
    its manifest hash, and with ``keys`` decrypt it and read it as a tar. ``keep``: leave the
    intact volumes there under their own names (a copy duplicity can restore from); otherwise
    delete each once checked. ``clear`` (not with ``keys``): keep each in clear instead
    (without its .gpg/.gz), decrypted with these keys as it downloads; it is there only once
    its hash matched and it decrypted (else UNDECRYPTABLE). Outcomes come back in the order
    of ``refs``; a volume not fetched because ``stop`` was set has no outcome. A Swift failure
    (unreachable, refused) is tried again, ``retry`` = (tries, seconds between them;
    ``commands.retry_policy``, as duplicity would), announced for ``action``; then it raises.
    A bad volume does not."""
    if keys is not None and clear is not None:
        raise ValueError("fetch: keys (read as a tar) and clear (kept in clear) exclude each other")
    refs = list(refs)
    stop = stop or threading.Event()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    results: dict[int, Outcome] = {}

    def one(position: int, ref: VolumeRef) -> None:
        tries, delay = retry
        for attempt in range(1, tries + 1):
            if stop.is_set():
                return
            try:
                outcome = _fetch_one(store, ref, directory, keys, keep, clear, stop)
                break
            except BackendError as error:
                if attempt == tries:
                    raise
                announce_retry(action, ref.name, delay, attempt + 1, tries, error)
                if stop.wait(delay):
                    return
        if outcome is not None:
            results[position] = outcome
            if on_outcome:
                on_outcome(outcome)

    workpool.run_all(
        [functools.partial(one, i, ref) for i, ref in enumerate(refs)],
        workers=workers,
        name="fetch",
        halt=stop.set,
    )
    return [results[i] for i in sorted(results)]


def announce_retry(
    action: str, name: str, delay: float, attempt: int, tries: int, error: Exception
) -> None:
    """On stderr, as duplicity announces its own retries: a slow run is never a silent one."""
    log.warning("%s: fetching %s failed, trying again in %g s (try %d of %d): %s",
                action, name, delay, attempt, tries, error)


def _fetch_one(
    store: Store,
    ref: VolumeRef,
    directory: Path,
    keys: Keys | None,
    keep: bool,
    clear: Keys | None,
    stop: threading.Event,
) -> Outcome | None:
    """One try at one volume: its bytes go to a sink (as they are, or decrypted as they arrive
    with ``clear``) while they are hashed, under a ``.part`` name that becomes the volume's
    only when the hash matched and the sink finished well. A new try starts a new sink."""
    started = time.monotonic()
    outcome = Outcome(ref)
    final = directory / (clear_name(ref.name) if clear else ref.name)
    part = final.with_name(f"{final.name}.part")
    digest = hashlib.new(ref.hash[0].lower()) if ref.hash else None
    sink = clear.decrypting(ref.name, part) if clear else FileSink(part)
    downloaded = None
    try:

        def write(chunk: bytes) -> None:
            if digest is not None:
                digest.update(chunk)
            try:
                sink.write(chunk)
            except OSError as error:  # raised inside the download: not Swift's fault
                raise CopyNotWritten(part, error) from None
            outcome.bytes += len(chunk)

        store.download(ref.name, write, stop)
        downloaded = time.monotonic()
        if digest is not None and digest.hexdigest() != ref.hash[1].lower():
            outcome.problem = CORRUPT  # before what gpg says: damaged bytes may not decrypt
            outcome.detail = f"{ref.hash[0]} {digest.hexdigest()}, manifest {ref.hash[1]}"
        else:
            try:
                sink.finish()
            except OSError as error:
                raise CopyNotWritten(part, error) from None
            except Undecryptable as error:
                if stop.is_set():  # a Ctrl-C reaches gpg too
                    raise Stopped from None
                outcome.problem, outcome.detail = UNDECRYPTABLE, str(error)
                outcome.keys = error.keys
            else:
                if keys is not None:
                    _check_contents(keys, part, ref.name, outcome)
    except Missing:
        outcome.problem = MISSING
    except Stopped:
        sink.abort()
        return None
    except BaseException:
        sink.abort()
        raise
    outcome.seconds = time.monotonic() - started
    if keep and outcome.ok:
        outcome.path = final
        os.replace(part, final)
    else:
        sink.abort()
    ready = time.monotonic() - downloaded if outcome.ok else None
    after = f", ready {ready:.3f} s after its last byte" if ready is not None else ""
    log.debug(
        "volume %s: %s (%d bytes, %.1f s%s) %s",
        ref.key,
        outcome.problem or "intact",
        outcome.bytes,
        outcome.seconds,
        after,
        outcome.detail,
    )
    return outcome


def _check_contents(keys: Keys, path: Path, name: str, outcome: Outcome) -> None:
    """Decrypt the volume and walk its tar to the end; the clear copy is deleted at once."""
    plain = path.with_name(path.name + ".tar")
    try:
        try:
            keys.decrypt_file(path, name, plain)
        except Undecryptable as error:
            if isinstance(error, Unsigned):
                outcome.problem, outcome.detail = UNSIGNED, error.found
            else:
                outcome.problem, outcome.detail = UNDECRYPTABLE, str(error)
            return
        try:
            with tarfile.open(plain, "r:") as archive:
                for _member in archive:
                    pass
        except (tarfile.TarError, OSError, EOFError) as error:
            outcome.problem, outcome.detail = UNREADABLE, str(error)
    finally:
        plain.unlink(missing_ok=True)


def copy_objects(store: Store, names: Iterable[str], directory: Path) -> None:
    """Copy objects as they are (manifests, signatures) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in names:
        with open(directory / name, "wb") as handle:
            store.download(name, handle.write, threading.Event())


@contextlib.contextmanager
def clear_copy(store: Store, name: str, keys: Keys, directory: Path) -> Iterator[Path]:
    """Object ``name`` (e.g. a signature tar) decrypted into ``directory``, deleted after."""
    encrypted = directory / name
    plain = directory / f"{name}.clear"
    try:
        with open(encrypted, "wb") as handle:
            store.download(name, handle.write, threading.Event())
        try:
            keys.decrypt_file(encrypted, name, plain)
        except Undecryptable as error:
            raise VerifyDifferences(
                f"{name} at {store.label} {error.described()}: the backup's signatures are "
                "damaged or not signed as the profile says; start a sound chain with a full "
                "backup."
            ) from None
        encrypted.unlink()
        yield plain
    finally:
        encrypted.unlink(missing_ok=True)
        plain.unlink(missing_ok=True)


def copy_profile(
    profile: Profile, copy: Path, archive: Path, *, tempdir: Path | None = None
) -> Profile:
    """The (chain's) profile pointed at a local copy made by ``fetch``, with its own archive
    dir (the copy's manifests, not the target's cache), for a duplicity restore from it."""
    data = dict(profile.data)
    data["target"] = f"file://{copy}"
    data["archive_dir"] = str(archive)
    if tempdir is not None:
        data["tempdir"] = str(tempdir)
    return Profile(profile.name, data, profile.source_file)
