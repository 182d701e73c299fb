"""Rewrite the lines of a hosts file that name a host, and nothing else.

The rewrite works on bytes so every other byte of the file (comments, spacing, tabs, CRLF line
ends, a missing final newline, text that is not UTF-8) stays as it was. A line is a target when
one of its host names (before any ``#``) is one of ``names`` and its address is an old address
that the server no longer has; only that address token is replaced. Lines naming the host with
another address (``127.0.1.1 web1``) are left alone, and a second run changes nothing.

The file is replaced atomically (a temp file in the same directory, then ``os.replace``) with
its owner and mode kept, after a backup copy ``FILE.cfbackup.bak``; a symlinked file is
rewritten at its target so the link survives.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

_TOKEN = re.compile(rb"[^\s#]+")


@dataclasses.dataclass(frozen=True)
class Change:
    line: int  # 1-based
    old: str
    new: str


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _common_bits(a, b) -> int:
    width = a.max_prefixlen
    diff = int(a) ^ int(b)
    return width - diff.bit_length()


def address_map(old: Iterable[str], new: Iterable[str]) -> dict:
    """Each old address the server lost -> the new address of the same family sharing the
    longest prefix with it (a private address follows the new private one, a public the new
    public one), preferring addresses it gained over ones it kept; first in ``new``'s order
    on a tie."""
    olds = [a for a in (_ip(x) for x in old) if a is not None]
    news = [a for a in (_ip(x) for x in new) if a is not None]
    gained = [n for n in news if n not in olds]
    mapping = {}
    for address in olds:
        if address in news:
            continue
        same = [n for n in gained if n.version == address.version] or [
            n for n in news if n.version == address.version
        ]
        if same:
            mapping[address] = max(same, key=lambda n: (_common_bits(address, n), -news.index(n)))
    return mapping


def rewrite(
    data: bytes, names: Iterable[str], old: Iterable[str], new: Iterable[str]
) -> tuple[bytes, list[Change], list[str]]:
    """The new file content, the changes made and warnings (old addresses with no new one)."""
    wanted = {n.lower().rstrip(".") for n in names if n}
    mapping = address_map(old, new)
    lost = {a for a in (_ip(x) for x in old) if a is not None and a not in mapping}
    lost -= {a for a in (_ip(x) for x in new) if a is not None}
    lines = data.split(b"\n")
    changes: list[Change] = []
    warnings: list[str] = []
    for index, line in enumerate(lines):
        tokens = list(_TOKEN.finditer(line.split(b"#", 1)[0]))
        if len(tokens) < 2:
            continue
        hostnames = {t.group().lower().rstrip(b".") for t in tokens[1:]}
        if not any(n.encode("utf-8", "replace") in hostnames for n in wanted):
            continue
        try:
            address = _ip(tokens[0].group().decode("ascii"))
        except UnicodeDecodeError:
            continue
        if address is None:
            continue
        if address in lost:
            warnings.append(
                f"line {index + 1}: the server has no new IPv{address.version} "
                f"address to replace {address}; line left as it is"
            )
        if address not in mapping:
            continue
        replacement = str(mapping[address]).encode()
        start, end = tokens[0].span()
        lines[index] = line[:start] + replacement + line[end:]
        changes.append(Change(index + 1, str(address), replacement.decode()))
    return b"\n".join(lines), changes, warnings


def fix_file(
    path: str | os.PathLike,
    names: Iterable[str],
    old: Iterable[str],
    new: Iterable[str],
    *,
    backup: bool = True,
) -> tuple[list[Change], list[str]]:
    """Rewrite ``path`` in place (see the module doc). Returns the changes and warnings;
    the file is not touched at all when nothing changes."""
    real = Path(os.path.realpath(path))
    data = real.read_bytes()
    updated, changes, warnings = rewrite(data, names, old, new)
    if updated == data:
        return [], warnings
    info = real.stat()
    if backup:
        _atomic_write(real.with_name(real.name + ".cfbackup.bak"), data, info)
    _atomic_write(real, updated, info)
    return changes, warnings


def _atomic_write(target: Path, data: bytes, like: os.stat_result) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.cfbackup-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), stat.S_IMODE(like.st_mode))
            if (like.st_uid, like.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(handle.fileno(), like.st_uid, like.st_gid)
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
