"""How a drill judges one restored path against what the backup recorded.

A file's bytes are compared with the source file when its mtime and size are as the backup
recorded them and it can be read, otherwise with the signature duplicity recorded when it read
the file (``signatures.py``), so a file changed since the backup is no mismatch; every path
(but a symlink) is also compared by its type and the metadata a restore brings back:
permission bits, mtime to the second, a device's numbers, owner as root. Kept apart from
``drill.py`` (sampling, fetching, restoring) because it needs none of that: a restored path and
an entry are enough.
"""

from __future__ import annotations

import dataclasses
import filecmp
import logging
import os
import stat
import time
from pathlib import Path

from cfbackup import signatures
from cfbackup.units import printable_name

log = logging.getLogger("cfbackup")

MATCH, MISMATCH, FAILED, SKIPPED = "match", "mismatch", "failed", "skipped"


@dataclasses.dataclass
class FileResult:
    path: str
    size: int
    status: str = SKIPPED
    reference: str = ""  # "source", "signature" or "link target"
    reason: str = ""

    def describe(self) -> str:
        path = printable_name(self.path)  # a name that is not UTF-8 is shown as caf\\xe9
        return f"{path}: {self.reason}" if self.reason else path


def compare(entry: signatures.Entry, restored: Path, source: Path, result: FileResult) -> None:
    """Set ``result`` from what was restored at ``restored``: its type, its content (a file's
    bytes, a symlink's target, a device's numbers) and its metadata."""
    try:
        st = restored.lstat()
    except FileNotFoundError:
        result.status, result.reason = MISMATCH, "duplicity's restore did not produce it"
        return
    if entry.kind == signatures.SYMLINK:  # its own mode and mtime are not restored
        target = os.readlink(restored) if restored.is_symlink() else None
        if target == entry.linkname:
            result.status, result.reference = MATCH, "link target"
        else:
            result.status = MISMATCH
            result.reason = (
                f"restored as {target!r}, the backup recorded a link to {entry.linkname!r}"
            )
        return
    want = stat.S_IFMT(entry.mode) or stat.S_IFREG
    if stat.S_IFMT(st.st_mode) != want:
        result.status = MISMATCH
        got = _TYPE_NAMES.get(stat.S_IFMT(st.st_mode), "something else")
        result.reason = f"restored as {got}, the backup recorded {_TYPE_NAMES[want]}"
        return
    differences = _metadata_differences(entry, st)
    if entry.kind != signatures.FILE:
        if differences:
            result.status, result.reason = MISMATCH, "; ".join(differences)
        else:
            result.status, result.reference = MATCH, "metadata"
        return
    result.size = st.st_size
    original = source / entry.path
    if _unchanged(original, entry, st.st_size) and _same_bytes(restored, original):
        result.status, result.reference = MATCH, "source"
    elif (
        entry.signature is not None
        and signatures.of_file(restored, entry.block_len) == entry.signature
    ):
        result.status, result.reference = MATCH, "signature"
    else:
        result.status = MISMATCH
        result.reason = "the restored bytes differ from what the backup read (its signature)"
        return
    if differences:  # the bytes are right, what a restore must also bring back is not
        result.status, result.reason = MISMATCH, "; ".join(differences)


_TYPE_NAMES = {
    stat.S_IFREG: "a regular file",
    stat.S_IFDIR: "a folder",
    stat.S_IFLNK: "a symlink",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _metadata_differences(entry: signatures.Entry, st: os.stat_result) -> list[str]:
    """What of the metadata duplicity restores differs from what the backup recorded: the
    permission bits (set-uid included), the mtime to the second (duplicity keeps no more), a
    device's numbers, and the owner and group when the drill may set them (root with
    CAP_CHOWN, ``restore_target.can_chown``: only then does its restore give owners)."""
    from cfbackup.restore_target import can_chown

    owners = can_chown()
    found = []
    if stat.S_IMODE(st.st_mode) != stat.S_IMODE(entry.mode):
        found.append(
            f"restored with mode {stat.S_IMODE(st.st_mode):04o}, the backup recorded "
            f"{stat.S_IMODE(entry.mode):04o}"
        )
    if owners and entry.uid >= 0 and (st.st_uid, st.st_gid) != (entry.uid, entry.gid):
        found.append(
            f"restored with owner {st.st_uid}:{st.st_gid}, the backup recorded "
            f"{entry.uid}:{entry.gid}"
        )
    if int(st.st_mtime) != entry.mtime:
        found.append(
            f"restored with mtime {_when(int(st.st_mtime))}, the backup recorded "
            f"{_when(entry.mtime)}"
        )
    if entry.device is not None and (os.major(st.st_rdev), os.minor(st.st_rdev)) != entry.device:
        found.append(
            f"restored as device {os.major(st.st_rdev)},{os.minor(st.st_rdev)}, the backup "
            f"recorded {entry.device[0]},{entry.device[1]}"
        )
    return found


def _when(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def _same_bytes(restored: Path, original: Path) -> bool:
    """The restored file holds the source file's bytes; False when the source cannot be read
    (no permission for the drill's user, an I/O error): the signature is the reference then."""
    try:
        return filecmp.cmp(restored, original, shallow=False)
    except OSError as error:
        log.info(
            "drill: source file %s unreadable (%s): compared with its signature", original, error
        )
        return False


def _unchanged(original: Path, entry: signatures.Entry, size: int) -> bool:
    """The source file looks as the backup recorded it: same mtime (whole seconds, as the
    backup has it) and a size the signature allows."""
    try:
        st = original.lstat()
    except OSError:
        return False
    return (
        original.is_file()
        and not original.is_symlink()
        and int(st.st_mtime) == entry.mtime
        and st.st_size == size
        and entry.could_be(st.st_size)
    )
