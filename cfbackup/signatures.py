"""What duplicity recorded about each file as it backed it up: its signatures.

A full backup's ``duplicity-full-signatures`` tar and each incremental's
``duplicity-new-signatures`` hold one member per path: ``signature/PATH`` for a regular file (a
librsync signature of the bytes duplicity read: a header naming the block length, then a
rolling checksum and an 8-byte MD4 per block), ``snapshot/PATH`` for directories, symlinks (with
their target) and special files, ``deleted/PATH`` for what an incremental saw disappear. Each
member carries the path's type, mode, owner, group and modification time (and a device's
numbers). Read in chain order they give every path's state at a backup time.

That makes them the drill's reference for a file that changed since the backup: recorded by the
process that read the data, at no cost to the backup, and at the target for a restore from
nothing. A block changed in a restored file changes its MD4 (random corruption goes unnoticed
with odds of 2^-64 per block); it is not a defence against someone forging signatures.
"""

from __future__ import annotations

import dataclasses
import math
import os
import stat
import struct
import tarfile
import time
from collections.abc import Iterable
from pathlib import Path

from cfbackup.duplicity.names import PLAIN, Naming

HEADER = struct.Struct(">III")  # magic, block length, strong checksum length
WEAK = 4  # bytes of the rolling checksum per block

FILE, SYMLINK, DIRECTORY, OTHER = "file", "symlink", "dir", "other"


@dataclasses.dataclass
class Entry:
    """One path of the backup (relative to the source, as duplicity names it)."""

    path: str
    kind: str
    mtime: int
    # as the tar member records them: type and permission bits (st_mode), owner, a device's
    # numbers; what a restore gives back, and the drill compares (duplicity keeps the mtime to
    # the second, owners when it restores as root, and no symlink's own mode or mtime)
    mode: int = 0
    uid: int = -1
    gid: int = -1
    device: tuple[int, int] | None = None
    block_len: int = 0
    blocks: int = 0
    linkname: str = ""
    signature: bytes | None = None  # kept only for the paths asked for (a sample)

    @property
    def index(self) -> tuple[bytes, ...]:
        """The path as duplicity indexes it: its components as bytes."""
        return tuple(os.fsencode(self.path).split(b"/")) if self.path else ()

    @property
    def size(self) -> int:
        """The file's size at backup time, to within one block (the signature has one entry
        per block): the middle of that range."""
        if self.kind != FILE or not self.blocks:
            return 0
        return max(1, self.blocks * self.block_len - self.block_len // 2)

    def could_be(self, size: int) -> bool:
        """True when a file of ``size`` bytes has as many blocks as this signature."""
        return self.block_len > 0 and math.ceil(size / self.block_len) == self.blocks


def read(sigtars: Iterable[Path], keep: set[str] | None = None) -> dict[str, Entry]:
    """Every path in the state the signature tars leave it, in chain order (full first).
    ``keep``: the paths whose signatures to hold in memory (a full backup's can be a few
    percent of the data); the others keep only their header."""
    entries: dict[str, Entry] = {}
    for sigtar in sigtars:
        with tarfile.open(sigtar, "r:*") as archive:
            for member in _members(archive):
                kind, _, path = member.name.partition("/")
                if kind == "deleted":
                    entries.pop(path, None)
                    continue
                entry = Entry(
                    path=path,
                    kind=_kind(member),
                    mtime=int(member.mtime),
                    mode=_TYPES.get(member.type, stat.S_IFREG) | (member.mode & 0o7777),
                    uid=member.uid,
                    gid=member.gid,
                    device=(member.devmajor, member.devminor) if member.isdev() else None,
                )
                if kind == "signature":
                    _read_signature(archive, member, entry, keep)
                elif member.issym():
                    entry.linkname = member.linkname
                entries[path] = entry
    return entries


_TYPES = {
    tarfile.DIRTYPE: stat.S_IFDIR,
    tarfile.SYMTYPE: stat.S_IFLNK,
    tarfile.FIFOTYPE: stat.S_IFIFO,
    tarfile.CHRTYPE: stat.S_IFCHR,
    tarfile.BLKTYPE: stat.S_IFBLK,
}  # any other member (a signature) is a regular file's


def _kind(member: tarfile.TarInfo) -> str:
    if member.name.startswith("signature/"):
        return FILE
    if member.issym():
        return SYMLINK
    if member.isdir():
        return DIRECTORY
    return OTHER


def _read_signature(archive, member, entry: Entry, keep: set[str] | None) -> None:
    handle = archive.extractfile(member)
    wanted = keep is not None and entry.path in keep
    data = handle.read() if wanted else handle.read(HEADER.size)
    if len(data) < HEADER.size:
        return
    _magic, entry.block_len, strong = HEADER.unpack_from(data)
    entry.blocks = (member.size - HEADER.size) // (WEAK + strong) if strong else 0
    if wanted:
        entry.signature = data


def of_file(path: Path, block_len: int) -> bytes:
    """The librsync signature duplicity would record for ``path`` (its own librsync binding,
    the same block length, so equal bytes give equal signatures)."""
    from duplicity import librsync

    generator = librsync.SigGenerator(block_len)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            generator.update(chunk)
    return generator.getsig()


NAMES_MAX_BYTES = 256 << 20  # local signature tars read for a hint's sake, at most


def _sigtars(
    folder: Path, when: float | None, naming: Naming
) -> tuple[list[tuple[float, Path]], list[tuple[float, float, Path]]]:
    """The signature tars' clear copies in ``folder`` of the backups at or before ``when``
    (every one when None): the fulls as (time, path), the incrementals as (start, end, path)."""
    fulls, incs = [], []
    for path in folder.glob("*duplicity-*-signatures.*.sigtar.gz"):
        parsed = naming.parse(path.name)
        if parsed is None:
            continue
        if parsed.type == "full-sig" and (when is None or parsed.time <= when):
            fulls.append((parsed.time, path))
        elif parsed.type == "new-sig" and (when is None or parsed.end_time <= when):
            incs.append((parsed.start_time, parsed.end_time, path))
    return fulls, incs


def local_chain(
    folder: Path, when: float | None = None, naming: Naming = PLAIN
) -> list[Path] | None:
    """duplicity's clear copies, in ``folder`` (the archive dir), of the signature tars of the
    chain a restore at ``when`` (now when None) reads: the newest full at or before it, then
    the incrementals that follow it; None when there is none, or more than
    ``NAMES_MAX_BYTES`` to read. ``naming``: the profile's file prefixes (``names.of``)."""
    fulls, incs = _sigtars(folder, when, naming)
    if not fulls:
        return None
    end, chain = max(fulls)[0], [max(fulls)[1]]
    for start, stop, path in sorted(incs):
        if start == end:
            chain.append(path)
            end = stop
    if sum(path.stat().st_size for path in chain) > NAMES_MAX_BYTES:
        return None
    return chain


def names(sigtars: Iterable[Path]) -> set[str]:
    """The paths in the state the signature tars leave (``read``'s keys, without reading the
    signatures)."""
    found: set[str] = set()
    for sigtar in sigtars:
        with tarfile.open(sigtar, "r:*") as archive:
            for member in _members(archive):
                kind, _, path = member.name.partition("/")
                (found.discard if kind == "deleted" else found.add)(path)
    return found


def holds(sigtars: Iterable[Path], path: str, within: float) -> bool | None:
    """Whether the state the signature tars leave holds ``path``; None when reading them takes
    more than ``within`` seconds (300,000 paths: about 10 s), so that a caller that only
    saves time with the answer never loses more. A tar has one member per path: each is read
    up to it (a full backup's, on average half of it), and to its end when it is not there."""
    stop = time.monotonic() + within
    present = False
    for sigtar in sigtars:
        with tarfile.open(sigtar, "r:*") as archive:
            for count, member in enumerate(_members(archive)):
                if count % 1000 == 0 and time.monotonic() > stop:
                    return None
                kind, _, name = member.name.partition("/")
                if name == path:
                    present = kind != "deleted"
                    break
    return present


def last_holding(
    folder: Path,
    path: str,
    when: float | None = None,
    naming: Naming = PLAIN,
    within: float = 1.0,
) -> float | None:
    """The time of the newest backup at or before ``when`` whose state holds ``path``, read
    from duplicity's clear copies of the signature tars of every chain in ``folder`` (the
    archive dir); None when none does, none are here, they are more than ``NAMES_MAX_BYTES``,
    or reading them takes more than ``within`` seconds: a hint, never a wait."""
    fulls, incs = _sigtars(folder, when, naming)
    if sum(p.stat().st_size for _t, p in fulls) + sum(i[2].stat().st_size for i in incs) > (
        NAMES_MAX_BYTES
    ):
        return None
    stop, newest = time.monotonic() + within, None
    for end, full in sorted(fulls):
        chain = [(end, full)]
        for start, later, sigtar in sorted(incs):
            if start == end:
                chain.append((later, sigtar))
                end = later
        present = False
        for set_time, sigtar in chain:
            mentioned = _mentions(sigtar, path, stop)
            if mentioned == "timeout":
                return None
            if mentioned is not None:
                present = mentioned
            if present and (newest is None or set_time > newest):
                newest = set_time
    return newest


def _mentions(sigtar: Path, path: str, stop: float) -> bool | str | None:
    """Whether one signature tar says ``path`` is there (True) or deleted (False); None when
    it does not name it (an incremental names only what changed), "timeout" past ``stop``."""
    with tarfile.open(sigtar, "r:*") as archive:
        for count, member in enumerate(_members(archive)):
            if count % 1000 == 0 and time.monotonic() > stop:
                return "timeout"
            kind, _, name = member.name.partition("/")
            if name == path:
                return kind != "deleted"
    return None


def _members(archive: tarfile.TarFile) -> Iterable[tarfile.TarInfo]:
    """The members of ``archive`` one at a time, none kept: iterating a TarFile keeps every
    TarInfo in ``archive.members`` (300,000 paths, a small signature tar: 290 MB of memory)."""
    while (member := archive.next()) is not None:
        archive.members.clear()
        yield member
