"""Test trees with awkward content, and a byte-for-byte comparison of two trees."""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path


def make_awkward_tree(root: Path, *, big_mb: int = 3, seed: int = 7) -> Path:
    """Spaces, non-ASCII names, symlinks (also dangling), empty dirs, modes, a large file."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "plain.txt").write_text("plain file\n")
    (root / "with space.txt").write_text("spaces in the name\n")
    (root / "naïve ünïcode — ✓.txt").write_text("non-ASCII name\n", encoding="utf-8")
    (root / "dir one" / "nested" / "deeper").mkdir(parents=True)
    (root / "dir one" / "nested" / "deeper" / "leaf.conf").write_text("key = value\n")
    (root / "empty dir").mkdir()
    (root / "empty dir" / "also empty").mkdir()
    secret = root / "private.key"
    secret.write_text("not really a key\n")
    secret.chmod(0o600)
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    (root / "link to plain").symlink_to("plain.txt")
    (root / "dangling link").symlink_to("does/not/exist")
    (root / "dir link").symlink_to("dir one")
    (root / "big.bin").write_bytes(rng.randbytes(big_mb * 1024 * 1024))
    (root / "zero bytes").write_bytes(b"")
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Relative path -> (kind, mode, content or link target) for every entry under root."""
    result: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                result[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                result[rel] = ("dir", mode)
            else:
                result[rel] = ("file", mode, path.read_bytes())
    return result


def assert_same_tree(expected: Path, actual: Path) -> None:
    want, got = snapshot(expected), snapshot(actual)
    assert sorted(want) == sorted(got), sorted(set(want) ^ set(got))
    for rel in want:
        assert want[rel] == got[rel], f"{rel} differs"
