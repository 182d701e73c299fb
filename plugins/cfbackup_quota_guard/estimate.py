"""An upper bound of what the next duplicity backup will upload, from metadata only.

One pass of ``os.scandir`` over the source with duplicity's selection rules (``selection.py``);
no file is opened. Memory is one frame per directory level being walked, never a list of files.

What duplicity 3.2 uploads (read from its diffdir.py, gpg.py, dup_main.py, _librsync):
- volumes: a tar stream cut into ``volsize`` MiB volumes, gzip- or gpg-compressed. Every entry
  has a 512-byte header (a PAX extension of 1 KiB or more for names over 100 bytes or not
  ASCII); file data is sent in 64 KiB tar members, each with its own header, padded to 512;
  every volume ends with a footer of up to 10 KiB; a gpg volume that is not the last is topped
  off with incompressible data up to ``volsize - 50 KiB``;
- one signature file: a tar of one member per entry holding, for a file of size S, an rdiff
  signature of 12 + 12 * ceil(S / B) bytes, B = max(512, isqrt(S) rounded up to 512);
- one manifest: per volume its first and last path and a SHA1, plus one line per changed entry.
A full backup sends every selected entry. An incremental sends entries whose mtime or ctime is
not older than the last backup (a rename changes the ctime of what was renamed; for a renamed
or moved folder, whose ctime changes but not its mtime, the whole subtree is counted), deltas
being bounded by the file size, and a header for every file deleted since.
Compression never expands data by more than a few parts in ten thousand; ``EXPANSION`` allows
20 times that.
"""

from __future__ import annotations

import dataclasses
import grp
import math
import os
import pwd
import stat as stat_module
import time
from collections.abc import Callable

from cfbackup.selection import EXCLUDE, INCLUDE, SCAN, Selector

MIB = 1024 * 1024
BLOCK = 512
RECORD = 10240  # tar record: a volume's footer pads up to this
READ_SIZE = 64 * 1024  # duplicity cuts file data into tar members of this size
EXPANSION = 1.002  # compressed size <= raw size * EXPANSION (deflate stored blocks, gpg packets)
OBJECT_OVERHEAD = 4096  # gpg/gzip headers and trailers of one object (more per key, see below)
GPG_VOLUME_SLACK = 384 * 1024  # a full gpg volume's top-off plus gpg's buffering (115 KiB seen)
VOLUME_MARGIN = 192 * 1024  # a volume closes at most this far below volsize (50+16+64 KiB + ...)
DELTA_SLACK = 1 / 64  # an rdiff delta of a changed file of size S is below S * (1 + this) + 64
MAX_OPEN_DIRS = 256  # scandir iterators kept open at once (one per folder level)
TIME_SLACK = 2.0  # seconds: timestamp granularity and clock steps around the last backup


@dataclasses.dataclass
class Estimate:
    """The bound and how it was reached (all sizes in bytes)."""

    kind: str  # "full" or "incremental"
    since: float | None  # the last backup's time, for an incremental
    bytes: int = 0  # upper bound of the bytes uploaded
    objects: int = 0  # volumes + signatures + manifest
    volumes: int = 0
    entries: int = 0  # selected entries (files, folders, links), like duplicity's SourceFiles
    changed: int = 0  # entries whose data or metadata will be sent
    data_bytes: int = 0  # sizes of the changed regular files
    deleted_reserve: int = 0  # entries assumed deleted since the last backup
    errors: int = 0  # folders that could not be listed, entries that could not be stat'ed
    seconds: float = 0.0
    resume_credit: int = 0  # bytes of an interrupted set already uploaded (not counted again)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def round512(n: int) -> int:
    return -(-n // BLOCK) * BLOCK


def _text_bytes(length: int, ascii_only: bool) -> int:
    return length if ascii_only else 4 * length


def header_size(name_bytes: int, link_bytes: int = 0, ascii_only: bool = True, owner_pax=False):
    """A PAX tar header (Python's tarfile, duplicity's format) for a name of that many bytes."""
    records = 0
    if name_bytes > 100 or not ascii_only:
        records += name_bytes + 16
    if link_bytes > 100 or (link_bytes and not ascii_only):
        records += link_bytes + 20
    if owner_pax:
        records += 128
    if not records:
        return BLOCK
    return 2 * BLOCK + round512(records + 32)


def signature_size(size: int) -> int:
    """librsync's MD4 signature as duplicity 3 makes it (8-byte strong sums)."""
    block = max(BLOCK, round512(math.isqrt(size)))
    return 12 + 12 * -(-size // block)


class _Owners:
    """Whether a uid/gid needs a PAX record (long or non-ASCII name, or too large a number)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int], bool] = {}

    def __call__(self, uid: int, gid: int) -> bool:
        key = (uid, gid)
        known = self._cache.get(key)
        if known is None:
            known = uid > 0o7777777 or gid > 0o7777777
            for lookup, ident in ((pwd.getpwuid, uid), (grp.getgrgid, gid)):
                try:
                    name = lookup(ident)[0]
                except (KeyError, OverflowError):
                    continue
                known = known or len(name) > 32 or not name.isascii()
            if len(self._cache) < 4096:
                self._cache[key] = known
        return known


@dataclasses.dataclass
class _Tally:
    """Running sums of the raw (uncompressed) tar streams."""

    volume_tar: int = 0
    signature_tar: int = 0
    manifest: int = 0
    entries: int = 0
    changed: int = 0
    data_bytes: int = 0
    errors: int = 0
    longest_name: int = 0


_IS_REG = stat_module.S_ISREG
_IS_LNK = stat_module.S_ISLNK


def _count(tally: _Tally, rel_len: int, ascii_only: bool, st, changed: bool, owners, full: bool):
    """Add one selected entry (``rel_len`` characters below the source) to the tally."""
    tally.entries += 1
    if not changed:
        return
    tally.changed += 1
    name = rel_len if ascii_only else 4 * rel_len
    if name > tally.longest_name:
        tally.longest_name = name
    tally.manifest += 16 + name
    owner_pax = owners(st.st_uid, st.st_gid)
    if _IS_REG(st.st_mode):
        size = st.st_size
        tally.data_bytes += size
        if full and size < READ_SIZE and name <= 90 and ascii_only and not owner_pax:
            # the common case, inlined: one plain header, a signature of 512-byte blocks
            padded = (size + 511) & ~511
            tally.volume_tar += BLOCK + padded
            tally.signature_tar += BLOCK + ((12 + 12 * (padded >> 9) + 511) & ~511)
            return
        sent = size if full else size + int(size * DELTA_SLACK) + 64
        members = sent // READ_SIZE + 1
        if members == 1:
            volume_header = header_size(name + 9, 0, ascii_only, owner_pax)
        else:
            digits = len(str(members))
            volume_header = header_size(name + 19 + digits, 0, ascii_only, owner_pax)
        tally.volume_tar += members * volume_header + round512(sent)
        tally.signature_tar += header_size(name + 10, 0, ascii_only, owner_pax) + round512(
            signature_size(size)
        )
        return
    link = _text_bytes(st.st_size, ascii_only) if _IS_LNK(st.st_mode) else 0
    header = header_size(name + 10, link, ascii_only, owner_pax)
    tally.volume_tar += header
    tally.signature_tar += header


def scan(
    root: str,
    selector: Selector,
    since: float | None = None,
    *,
    on_error: Callable[[str, OSError], None] | None = None,
    visit: Callable[[str], None] | None = None,
) -> _Tally:
    """Walk ``root`` as duplicity would and tally what a backup sends.

    ``since``: None for a full backup, else the last backup's time (entries not changed since
    then send nothing). Folders are kept on a stack of open ``scandir`` iterators, one per level.
    ``visit`` gets the path (relative to ``root``, "" for it) of every entry duplicity selects.
    """
    tally = _Tally()
    owners = _Owners()
    full = since is None
    threshold = (since or 0.0) - TIME_SLACK
    select = None if selector.selects_everything else selector
    prefix = len(root) + (0 if root.endswith("/") else 1)

    def changed_since(st) -> bool:
        return full or st.st_mtime >= threshold or st.st_ctime >= threshold

    try:
        root_stat = os.lstat(root)
    except OSError as error:
        tally.errors += 1
        if on_error:
            on_error(root, error)
        return tally
    _count(tally, 0, True, root_stat, changed_since(root_stat), owners, full)
    if visit is not None:
        visit("")
    # a frame: [iterator, path, pending (scan: counted only if something below is), stat,
    #           subtree counted as changed (renamed/moved folder)]
    stack: list[list] = []

    def push(path: str, pending: bool, st, moved: bool) -> None:
        if len(stack) >= MAX_OPEN_DIRS:  # very deep: read the level above whole, free its fd
            above = stack[-1]
            close = getattr(above[0], "close", None)
            if close is not None:
                rest = list(above[0])
                close()
                above[0] = iter(rest)
        try:
            iterator = os.scandir(path)
        except OSError as error:
            tally.errors += 1
            if on_error:
                on_error(path, error)
            iterator = iter(())
        stack.append([iterator, path, pending, st, moved])

    push(root, False, root_stat, False)
    while stack:
        frame = stack[-1]
        try:
            entry = next(frame[0])
        except StopIteration:
            close = getattr(frame[0], "close", None)
            if close:
                close()
            stack.pop()
            continue
        except OSError as error:
            tally.errors += 1
            if on_error:
                on_error(frame[1], error)
            stack.pop()
            continue
        path = entry.path
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        verdict = select(path, is_dir) if select is not None else INCLUDE
        if verdict == EXCLUDE or (verdict == SCAN and not is_dir):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as error:
            tally.errors += 1
            if on_error:
                on_error(path, error)
            continue
        moved = frame[4]
        if not full and is_dir and not moved:
            moved = st.st_ctime >= threshold and st.st_mtime < threshold
        if verdict == SCAN:
            push(path, True, st, moved)
            continue
        if frame[2]:  # scanned folders above become part of the backup now
            for above in reversed(stack):
                if not above[2]:
                    break
                above[2] = False
                name = above[1][prefix:]
                changed = above[4] or changed_since(above[3])
                _count(tally, len(name), name.isascii(), above[3], changed, owners, full)
                if visit is not None:
                    visit(name)
        name = path[prefix:]
        _count(tally, len(name), name.isascii(), st, moved or changed_since(st), owners, full)
        if visit is not None:
            visit(name)
        if is_dir:
            push(path, False, st, moved)
    return tally


def canonical(path: str) -> str:
    """The source path as duplicity names it (``get_canonical``: no '.', no empty parts)."""
    parts = [p for p in path.split("/") if p and p != "."]
    return ("/" if path.startswith("/") else "") + "/".join(parts)


def estimate(
    root: str,
    selector: Selector,
    *,
    volsize_mb: int,
    since: float | None = None,
    encrypted: bool = True,
    keys: int = 0,
    previous_entries: int | None = None,
    on_error: Callable[[str, OSError], None] | None = None,
) -> Estimate:
    """The upper bound for a full (``since`` None) or incremental backup of ``root``.

    ``keys``: public keys encrypted to plus a signing key (each adds a packet per object).
    ``previous_entries``: duplicity's SourceFiles of the last backup, to bound deletions.
    """
    started = time.perf_counter()
    tally = scan(root, selector, since, on_error=on_error)
    full = since is None
    deleted = 0
    if not full and previous_entries is not None:
        deleted = max(0, previous_entries - (tally.entries - tally.changed))
    longest = max(tally.longest_name, 255)
    deleted_header = header_size(longest + 8, 0, True, True)
    volume_tar = tally.volume_tar + deleted * deleted_header
    signature_tar = tally.signature_tar + deleted * deleted_header + RECORD + 2 * BLOCK
    per_object = OBJECT_OVERHEAD + 1024 * keys
    volsize = volsize_mb * MIB
    usable = max(volsize - VOLUME_MARGIN, volsize // 2)
    volumes = max(1, math.ceil(volume_tar * EXPANSION / usable))
    volume_tar += (volumes + 1) * (RECORD + 2 * BLOCK)
    volumes = max(volumes, math.ceil(volume_tar * EXPANSION / usable))
    volume_bytes = math.ceil(volume_tar * EXPANSION) + volumes * per_object
    if encrypted:
        volume_bytes += (volumes - 1) * GPG_VOLUME_SLACK
    manifest = (
        256
        + 4 * len(root)
        + volumes * (128 + 2 * (longest + 32))
        + tally.manifest
        + deleted * (16 + longest)
    )
    total = (
        volume_bytes
        + math.ceil(signature_tar * EXPANSION)
        + per_object
        + math.ceil(manifest * EXPANSION)
        + per_object
    )
    return Estimate(
        kind="full" if full else "incremental",
        since=since,
        bytes=total,
        objects=volumes + 2,
        volumes=volumes,
        entries=tally.entries,
        changed=tally.changed,
        data_bytes=tally.data_bytes,
        deleted_reserve=deleted,
        errors=tally.errors,
        seconds=time.perf_counter() - started,
    )
