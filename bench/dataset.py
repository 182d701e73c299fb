#!/usr/bin/env python3
"""A reproducible benchmark tree: compressible text and incompressible binary, many small files
and a few large ones. The same seed, size and count give byte-identical trees (mtimes included).

    .venv/bin/python bench/dataset.py make DIR [--size-mb 200] [--files 2000] [--seed 1]
    .venv/bin/python bench/dataset.py change DIR [--percent 1] [--seed 2]   # prints an undo file
    .venv/bin/python bench/dataset.py undo DIR UNDO_FILE

Layout: ``large_fraction`` of the bytes (default 40%) in a few large files (one per 1000 files,
at least 2), the rest in small files (log-normal sizes, median about 1/3 of the mean) spread
100 per folder two levels deep. ``text_fraction`` of the files (default half, by bytes) are
text made of words drawn from a fixed vocabulary (zlib shrinks it about 3x, like logs and
config); the rest are random bytes (like media, archives, already-compressed data). Text is
generated fresh everywhere (never repeated slices), so deduplication finds nothing a real tree
would not have.

``change`` rewrites ``percent`` of the files (same size, new content, mtime +1 h) and overwrites
``percent`` of each large file in place (one block in the middle), so about ``percent`` of the
bytes and of the files change, plus one new file. ``undo`` restores the tree byte for byte
(contents, sizes and mtimes), so every tool in a benchmark backs up the same states.
"""

from __future__ import annotations

import argparse
import array
import hashlib
import json
import math
import os
import random
import sys
from pathlib import Path

MTIME = 1_700_000_000  # a fixed modification time: the tree is identical from run to run
PER_FOLDER = 100
BLOCK = 1 << 20


def _vocabulary(rng: random.Random) -> list[bytes]:
    """4096 tokens: recurring phrases, single words, numbers and line starts. Drawn uniformly,
    they make text that zlib shrinks about 2.9x at level 6 and 2.5x at level 1."""
    letters = "etaoinshrdlucmfwypvbgkqjxz"

    def word(mean: float) -> str:
        return "".join(rng.choices(letters, k=max(1, min(12, int(rng.gauss(mean, 2))))))

    base = [word(5) for _ in range(512)]
    tokens = []
    for i in range(4096):
        if i < 2048:
            tokens.append(" ".join(rng.choices(base, k=rng.randint(2, 5))))
        elif i < 3584:
            tokens.append(word(6))
        elif i < 3840:
            tokens.append(str(rng.randrange(10**6)))
        else:
            tokens.append("\n" + str(rng.randrange(10**4)))
    return [t.encode() for t in tokens]


class Source:
    """Deterministic text and binary payloads from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words = _vocabulary(random.Random(seed ^ 0x5EED))

    def binary(self, size: int) -> bytes:
        return self.rng.randbytes(size)

    def text(self, size: int) -> bytes:
        # ~18 bytes per token: draw a few more than needed, then cut to size
        count = size // 12 + 16
        indexes = array.array("H", self.rng.randbytes(2 * count))
        words = self.words
        out = b" ".join([words[i & 4095] for i in indexes])
        while len(out) < size:  # rare: short words everywhere
            out += b" " + self.text(size - len(out))
        return out[:size]

    def payload(self, size: int, text: bool) -> bytes:
        return self.text(size) if text else self.binary(size)


def plan(size_bytes: int, files: int, seed: int, large_fraction: float, text_fraction: float):
    """(relative path, size, is_text) for every file, deterministic."""
    rng = random.Random(seed)
    n_large = max(2, files // 1000) if files >= 10 and large_fraction > 0 else 0
    n_small = files - n_large
    large_total = int(size_bytes * large_fraction) if n_large else 0
    small_total = size_bytes - large_total
    raw = [rng.lognormvariate(0.0, 1.5) for _ in range(n_small)]
    scale = small_total / sum(raw) if raw else 0
    sizes = [max(1, int(r * scale)) for r in raw]
    entries = []
    for i, size in enumerate(sizes):
        folder = f"d{i // (PER_FOLDER * PER_FOLDER):02d}/s{(i // PER_FOLDER) % PER_FOLDER:02d}"
        is_text = rng.random() < text_fraction
        entries.append((f"{folder}/f{i:06d}.{'txt' if is_text else 'bin'}", size, is_text))
    for i in range(n_large):
        is_text = i % 2 == 0 if text_fraction not in (0.0, 1.0) else text_fraction == 1.0
        size = large_total // n_large
        entries.append((f"large/big{i:02d}.{'log' if is_text else 'img'}", size, is_text))
    return entries


def make(
    root: Path,
    size_mb: float,
    files: int,
    seed: int = 1,
    *,
    large_fraction: float = 0.4,
    text_fraction: float = 0.5,
) -> dict:
    """Write the tree under ``root`` (which must not exist or be empty); returns a summary."""
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise SystemExit(f"dataset: {root} is not empty")
    source = Source(seed)
    entries = plan(int(size_mb * 1_000_000), files, seed, large_fraction, text_fraction)
    total = 0
    for rel, size, is_text in entries:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            left = size
            while left:
                chunk = min(left, 8 * BLOCK)
                out.write(source.payload(chunk, is_text))
                left -= chunk
        os.utime(path, (MTIME, MTIME))
        total += size
    for folder in sorted({p.parent for p in root.rglob("*")}, reverse=True):
        os.utime(folder, (MTIME, MTIME))
    os.utime(root, (MTIME, MTIME))
    return {"root": str(root), "files": len(entries), "bytes": total}


def files_of(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def change(root: Path, percent: float = 1.0, seed: int = 2) -> dict:
    """Change about ``percent`` of the files and bytes; returns what ``undo`` needs."""
    rng = random.Random(seed)
    source = Source(seed)
    paths = files_of(root)
    small = [p for p in paths if p.parent.name != "large"]
    large = [p for p in paths if p.parent.name == "large"]
    picked = rng.sample(small, max(1, math.ceil(len(small) * percent / 100))) if small else []
    undo: dict = {"rewritten": [], "blocks": [], "added": [], "mtimes": {}}
    for path in picked:
        data = path.read_bytes()
        st = path.stat()
        undo["rewritten"].append([str(path.relative_to(root)), data.hex()])
        undo["mtimes"][str(path.relative_to(root))] = [st.st_atime, st.st_mtime]
        path.write_bytes(source.payload(len(data), path.suffix == ".txt"))
        os.utime(path, (st.st_mtime + 3600, st.st_mtime + 3600))
    for path in large:
        st = path.stat()
        length = max(1, int(st.st_size * percent / 100))
        offset = (st.st_size - length) // 2
        with open(path, "r+b") as handle:
            handle.seek(offset)
            old = handle.read(length)
            handle.seek(offset)
            handle.write(source.payload(length, path.suffix == ".log"))
        undo["blocks"].append([str(path.relative_to(root)), offset, old.hex()])
        undo["mtimes"][str(path.relative_to(root))] = [st.st_atime, st.st_mtime]
        os.utime(path, (st.st_mtime + 3600, st.st_mtime + 3600))
    added = root / "added" / f"new-{seed}.txt"
    added.parent.mkdir(exist_ok=True)
    added.write_bytes(source.text(64 * 1024))
    undo["added"].append(str(added.relative_to(root)))
    changed = sum(len(bytes.fromhex(h)) for _, h in undo["rewritten"])
    changed += sum(len(bytes.fromhex(h)) for _, _, h in undo["blocks"])
    undo["summary"] = {
        "files_rewritten": len(picked),
        "large_blocks": len(large),
        "bytes_changed": changed,
        "files_added": 1,
    }
    return undo


def undo_change(root: Path, undo: dict) -> None:
    """Put the tree back exactly as it was before ``change``."""
    for rel, hexdata in undo["rewritten"]:
        (root / rel).write_bytes(bytes.fromhex(hexdata))
    for rel, offset, hexdata in undo["blocks"]:
        with open(root / rel, "r+b") as handle:
            handle.seek(offset)
            handle.write(bytes.fromhex(hexdata))
    for rel in undo["added"]:
        (root / rel).unlink()
        try:
            (root / rel).parent.rmdir()
        except OSError:
            pass
    for rel, (atime, mtime) in undo["mtimes"].items():
        os.utime(root / rel, (atime, mtime))
    os.utime(root, (MTIME, MTIME))


def tree_digest(root: Path) -> str:
    """One hash over every file's relative path and content (symlinks and modes ignored)."""
    digest = hashlib.sha256()
    for path in files_of(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with open(path, "rb") as handle:
            while chunk := handle.read(4 * BLOCK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make", help="generate a tree")
    p.add_argument("dir", type=Path)
    p.add_argument("--size-mb", type=float, default=200)
    p.add_argument("--files", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--large-fraction", type=float, default=0.4)
    p.add_argument("--text-fraction", type=float, default=0.5)
    c = sub.add_parser("change", help="change about PERCENT of the tree; prints the undo record")
    c.add_argument("dir", type=Path)
    c.add_argument("--percent", type=float, default=1.0)
    c.add_argument("--seed", type=int, default=2)
    u = sub.add_parser("undo", help="revert a change")
    u.add_argument("dir", type=Path)
    u.add_argument("undo_file", type=Path)
    d = sub.add_parser("digest", help="hash a tree (paths and contents)")
    d.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "make":
        summary = make(
            args.dir,
            args.size_mb,
            args.files,
            args.seed,
            large_fraction=args.large_fraction,
            text_fraction=args.text_fraction,
        )
        print(json.dumps(summary))
    elif args.command == "change":
        print(json.dumps(change(args.dir, args.percent, args.seed)))
    elif args.command == "undo":
        undo_change(args.dir, json.loads(args.undo_file.read_text()))
    else:
        print(tree_digest(args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
