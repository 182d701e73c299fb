"""A backup's volumes read straight from its target: which backup sets and volumes there are,
what their manifests say, and which volumes a path needs. Fetching volumes and checking them is
``volume_fetch.py``'s.

``verify --read-data``, ``drill`` and the restore prefetch read a chain with these calls; a
prefetch before a restore is::

    store = stores.open_store(chain.profile)               # the chain's swift:// or file:// target
    keys = volume_keys.Keys.for_profile(chain.profile, env)  # env: duplicity_environment(...)
    sets = volumes.chain_at(volumes.backup_sets(store, naming=names.of(chain.profile)), when)
    volumes.read_manifests(store, sets, keys)
    wanted = volumes.needed_for(sets, [index])             # index: path in the backup, as bytes
    volumes.copy_objects(store, [s.manifest for s in sets], directory)
    outcomes = volume_fetch.fetch(store, wanted, directory)  # Outcome per volume; .ok, .describe()
    # directory is now a target ``duplicity restore --path-to-restore PATH --time WHEN
    # file://DIRECTORY`` reads: it holds the manifests and every volume that path needs.

Names are parsed with duplicity's own ``file_naming`` (with the profile's file prefixes:
``duplicity/names.py``) and manifests with its ``Manifest``
class, so cfbackup reads them exactly as duplicity does. Manifests and signatures are decrypted
with ``volume_keys.py``: the passphrase reaches gpg on a pipe (``--passphrase-fd``), never its
command line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from cfbackup import suggest
from cfbackup.config.model import Profile
from cfbackup.duplicity.names import PLAIN, Naming
from cfbackup.errors import VerifyDifferences
from cfbackup.stores import Missing, Store
from cfbackup.volume_keys import Keys, Undecryptable, keys_error

log = logging.getLogger("cfbackup")

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
    naming: Naming = PLAIN  # the file prefixes its names carry

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
        if not self.manifest:
            return f"?.vol{number}.difftar{suffix}"
        stem = self.manifest[len(self.naming.prefix("manifest")) : self.manifest.index(".manifest")]
        return f"{self.naming.prefix('archive')}{stem}.vol{number}.difftar{suffix}"


def backup_sets(
    store: Store,
    *,
    naming: Naming,
    chain: str = "",
    listing: dict[str, int] | None = None,
) -> list[BackupSet]:
    """The backup sets at the target, oldest first (complete or not: see ``complete``).
    ``listing``, the store's listing already fetched by the caller, saves a second one (a
    round trip per 10,000 objects across a network) and keeps both views of one moment.
    ``naming``: the profile's (``names.of(profile)``), its file prefixes included."""
    sets: dict[tuple, BackupSet] = {}
    signatures: dict[tuple, str] = {}
    for name, size in (store.list() if listing is None else listing).items():
        if name.endswith(".part"):
            continue
        parsed = naming.parse(name)
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
                naming=naming,
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
    """The sets with a manifest: the ones duplicity can restore from and verify (see
    ``lost_manifests`` for the sets without one)."""
    return [s for s in sets if s.manifest]


def lost_manifests(sets: list[BackupSet]) -> list[BackupSet]:
    """The sets without a manifest that are not the newest set at the target (``sets`` oldest
    first, as ``backup_sets`` gives them). Only the newest can be an interrupted backup (the
    next backup resumes it); a set that newer backups followed had its manifest removed or
    lost, and duplicity's restore of any time from it on dies ("No remote manifest name")."""
    return [s for s in sets[:-1] if not s.manifest]


def only_local_manifests(sets: list[BackupSet], archive_folder: Path) -> list[tuple]:
    """``(set, local manifest)`` for each set at the target that has volumes but no manifest
    while the archive dir still holds its complete one (duplicity writes it there only once the
    target has it: the target's was lost). duplicity's next command that syncs the archive dir
    deletes that copy, the last one ("not authoritative at backend")."""
    found = []
    for backup_set in sets:
        if backup_set.manifest or not backup_set.volumes:
            continue
        volume = next(iter(backup_set.volumes.values()))
        local = archive_folder / (volume[: volume.index(".vol")] + ".manifest")
        if local.is_file():
            found.append((backup_set, local))
    return found


def chain_at(sets: list[BackupSet], when: float | None = None) -> list[BackupSet]:
    """The sets duplicity restores from at time ``when`` (now when None): the newest full
    backup at or before it and the incrementals that follow it without a gap. An interrupted
    backup (the newest set, without a manifest) is left out; a set that lost its manifest
    (``lost_manifests``) stays in, as duplicity reads it: check ``set.manifest`` before
    reading the chain, or the chain would silently stop at an older state."""
    chosen: list[BackupSet] = []
    lost = {id(s) for s in lost_manifests(sets)}
    for backup_set in sets:
        if not backup_set.manifest and id(backup_set) not in lost:
            continue
        if when is not None and backup_set.end > when:
            break
        if backup_set.kind == "full":
            chosen = [backup_set]
        elif chosen and backup_set.start == chosen[-1].end:
            chosen.append(backup_set)
    return chosen


def lost_manifest_problem(backup_set: BackupSet, store: Store) -> str:
    """What a set whose manifest is lost means, for a check's message."""
    volumes = len(backup_set.volumes)
    return (
        f"the {backup_set.label} has {volumes} volume(s) but no manifest at {store.label}, and "
        "newer backups follow it (not an interrupted backup: its manifest was lost), so "
        "duplicity cannot restore it or any later backup of its chain"
    )


def read_manifests(
    store: Store, sets: Iterable[BackupSet], keys: Keys, stop: threading.Event | None = None
) -> list[BackupSet]:
    """Download, decrypt and parse each set's manifest (duplicity's Manifest in ``set.info``).
    Returns the sets whose manifest could not be read (``set.problem`` says why); raises
    CryptoError when the keys or the passphrase are the reason. ``stop``: the caller's
    (a drill's --max-duration; the download raises Stopped once it is set)."""
    stop = stop or threading.Event()
    from duplicity import manifest as duplicity_manifest

    unreadable = []
    for backup_set in sets:
        data = bytearray()
        try:
            store.download(backup_set.manifest, data.extend, stop)
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
        if backup_set.problem:  # one the keys cannot open: the error below says why, once
            (log.info if backup_set.key_problem and keys.mode != "none" else log.warning)(
                "manifest %s is not usable: %s", backup_set.manifest, backup_set.problem
            )
            unreadable.append(backup_set)
    if any(s.key_problem for s in unreadable) and keys.mode != "none":
        raise keys_error(f"the manifests at {store.label} ({unreadable[0].problem})", keys)
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


def copy_objects(
    store: Store, names: Iterable[str], directory: Path, stop: threading.Event | None = None
) -> None:
    """Copy objects as they are (manifests, signatures) into ``directory``; ``stop`` as in
    :func:`read_manifests`."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stop = stop or threading.Event()
    for name in names:
        with open(directory / name, "wb") as handle:
            store.download(name, handle.write, stop)


@contextlib.contextmanager
def clear_copy(
    store: Store,
    name: str,
    keys: Keys,
    directory: Path,
    *,
    profile: str = "PROFILE",
    stop: threading.Event | None = None,
) -> Iterator[Path]:
    """Object ``name`` (e.g. a signature tar) decrypted into ``directory``, deleted after;
    ``profile`` names the profile in the fix a damaged object's message gives; ``stop`` as in
    :func:`read_manifests`."""
    encrypted = directory / name
    plain = directory / f"{name}.clear"
    try:
        with open(encrypted, "wb") as handle:
            store.download(name, handle.write, stop or threading.Event())
        try:
            keys.decrypt_file(encrypted, name, plain)
        except Undecryptable as error:
            raise VerifyDifferences(
                f"{name} at {store.label} {error.described()}: the backup's signatures are "
                "damaged or not signed as the profile says; start a sound chain with "
                f"{suggest.command('backup', profile, '--full')}."
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
    return dataclasses.replace(profile, data=data)
