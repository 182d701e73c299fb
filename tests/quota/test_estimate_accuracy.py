"""The estimate is an upper bound: never below what duplicity really uploaded (the container's
bytes and objects after the backup), on generated trees, full and incremental, gpg and not."""

from __future__ import annotations

import json
import os
import random
import time

import pytest
from quota_helpers import random_files

pytestmark = [pytest.mark.quota, pytest.mark.swift]


def _mixed_tree(root, seed):
    """Small and large, compressible and not, deep, long and non-ASCII names, links, empty."""
    rng = random.Random(seed)
    random_files(root / "many", 120, 700, per_dir=40, seed=seed)
    (root / "big.bin").write_bytes(rng.randbytes(1_300_000))
    (root / "text.log").write_bytes(b"line of a log file\n" * 40_000)
    (root / "empty").write_bytes(b"")
    deep = root / "a" / "b" / ("c" * 90) / ("d" * 60)
    deep.mkdir(parents=True)
    (deep / ("long-name-" * 12)).write_bytes(rng.randbytes(70_000))
    (root / "ünïcödé — файл.txt").write_bytes(rng.randbytes(5000))
    (root / "exactly-64k").write_bytes(rng.randbytes(65536))
    (root / "link").symlink_to("big.bin")
    (root / "emptydir").mkdir()


def _check(p, expected_kind):
    nxt = p.next_backup()
    before_bytes, before_objects = p.uploaded_bytes(), len(p.objects())
    p.cli("backup", check=0)
    sent_bytes = p.uploaded_bytes() - before_bytes
    sent_objects = len(p.objects()) - before_objects
    assert nxt["plan"]["kind"] == expected_kind
    assert sent_bytes <= nxt["upload_bytes"], (sent_bytes, nxt)
    assert sent_objects <= nxt["upload_objects"], (sent_objects, nxt)
    return sent_bytes, nxt["upload_bytes"]


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "gpg"])
def test_estimate_is_never_below_the_upload(quota_profile, encrypted):
    p = quota_profile(encrypted=encrypted, volsize=1)
    _mixed_tree(p.source, seed=7)
    sent, bound = _check(p, "full")
    # an upper bound, not a wild one: compressible data (a third of this tree) is counted in
    # full, and gpg pads full volumes up to volsize (the bound keeps room for that)
    assert bound < (2.7 if encrypted else 2) * sent

    time.sleep(1.1)
    rng = random.Random(8)
    (p.source / "big.bin").write_bytes(rng.randbytes(1_300_000))  # rewritten: a full delta
    (p.source / "new.bin").write_bytes(rng.randbytes(200_000))
    os.rename(p.source / "a", p.source / "moved")  # a renamed folder: all of it is new
    for victim in list((p.source / "many" / "d000").iterdir())[:20]:
        victim.unlink()
    (p.source / "text.log").chmod(0o600)  # metadata only
    _check(p, "incremental")

    if not encrypted:
        time.sleep(1.1)
        _check(p, "incremental")  # nothing changed: headers and an empty volume


def test_estimate_counts_what_duplicity_selects_under_a_prefix(quota_profile):
    p = quota_profile(prefix="hosts/web1", exclude=["**/skip"], volsize=2)
    random_files(p.source, 40, 30_000, per_dir=10, seed=2)
    (p.source / "d001" / "skip").mkdir()
    (p.source / "d001" / "skip" / "huge").write_bytes(b"x" * 3_000_000)  # excluded
    nxt = p.next_backup()
    sent, bound = _check(p, "full")
    assert sent < 3_000_000 and bound < 3_000_000
    history = json.loads(p.cli("history", "qg", "--json", check=0).stdout)
    assert nxt["estimate"]["entries"] == history[0]["stats"]["SourceFiles"] == 45
    assert all(o["name"].startswith("hosts/web1/") for o in p.objects())
