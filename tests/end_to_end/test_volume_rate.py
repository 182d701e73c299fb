"""``volsize = "auto"`` across a network follows the link's rate (``cfbackup/volume_size.py`` and
the ``rate-sized-volumes`` patch), read from the volumes the backups leave in a real Swift.

The Swift is behind the tests' delay relay (30 ms a round trip: "far"), first as fast as this
machine gives, then held to 60 Mbit/s a connection (under the 100 Mbit/s that makes volumes
large). With one upload process a volume is handed over only once the one before it is
uploaded, so the third volume is the first whose size can follow this backup's own rate: a
first backup grows from 10 MB there, and the next, started at 20 MB from the rate the first
kept, shrinks there when the link has slowed."""

from __future__ import annotations

import re

import pytest
from support.trees import assert_same_tree, make_awkward_tree
from support.wanlink import delayed

from cfbackup import history, volume_size

pytestmark = pytest.mark.swift

LARGE = 15_000_000  # bytes stored: a 20 MB volume is 21.0 MB, a 10 MB one 10.5 MB


def _volumes(local_swift, container) -> dict[str, list[int]]:
    """Stored size of each volume, in volume order, by backup set (its time stamp)."""
    from swiftclient import client

    user, key = local_swift.users["admin"]
    conn = client.Connection(authurl=local_swift.auth_url, user=user, key=key, auth_version="1")
    sets: dict[str, dict[int, int]] = {}
    for obj in conn.get_container(container, full_listing=True)[1]:
        found = re.search(r"duplicity-full\.(\w+)\.vol(\d+)\.difftar", obj["name"])
        if found:
            sets.setdefault(found[1], {})[int(found[2])] = obj["bytes"]
    return {stamp: [v[n] for n in sorted(v)] for stamp, v in sorted(sets.items())}


def _log(tmp_path) -> str:
    logs = (tmp_path / "state" / "logs").glob("*backup*.log")
    return max(logs, key=lambda p: p.stat().st_mtime).read_text(errors="replace")


def _rate(tmp_path) -> float:
    rows = history.runs(tmp_path / "state", "main")
    return rows[0]["stats"][volume_size.RATE_STAT]


def test_volumes_follow_the_upload_rate_and_the_next_backup_starts_from_it(
    tmp_path, make_config, cfbackup, local_swift, container
):
    src = make_awkward_tree(tmp_path / "src", big_mb=50)  # incompressible: 5 volumes or more
    config = make_config(source=src, extra='verbosity = "debug"\n')
    plain = config.read_text()

    with delayed(local_swift.auth_url, 30) as url:  # a first backup: the rate is unknown
        config.write_text(plain.replace(local_swift.auth_url, url))
        assert cfbackup("-c", config, "backup").returncode == 0
    log = _log(tmp_path)
    assert "volume size: 10 MB first: Swift answers in " in log, log
    assert "and the link's rate is not known yet" in log, log
    first = _rate(tmp_path)
    assert f"uploads: {volume_size.mbit(first)}" in log, log
    (sizes,) = _volumes(local_swift, container).values()
    # through the relay this machine uploads at 150-400 Mbit/s, well over the 100 that make
    # volumes large, even with the suite's other tests running
    assert first >= volume_size.FAST, first
    assert all(size < LARGE for size in sizes[:2]), sizes  # before any upload had ended
    assert all(size > LARGE for size in sizes[2:-1]), sizes  # sized by this backup's uploads
    assert "rate-sized-volumes: volumes of 20 MB from now on" in log, log

    with delayed(local_swift.auth_url, 30, limit_mbit=60) as url:  # the link slows down
        config.write_text(plain.replace(local_swift.auth_url, url))
        assert cfbackup("-c", config, "backup", "--full").returncode == 0
    log = _log(tmp_path)
    assert "volume size: 20 MB first: Swift answers in " in log, log
    assert f"and the last backup uploaded at {volume_size.mbit(first)}" in log, log
    slow = _rate(tmp_path)
    assert slow < volume_size.FAST, slow
    sizes = list(_volumes(local_swift, container).values())[-1]
    assert all(size > LARGE for size in sizes[:2]), sizes  # the size the last rate gave
    assert all(size < LARGE for size in sizes[2:]), sizes  # sized by the slow uploads
    assert "rate-sized-volumes: volumes of 10 MB from now on" in log, log

    out = tmp_path / "out"  # every volume size restores, the relay gone
    config.write_text(plain)
    assert cfbackup("-c", config, "restore", "main", out).returncode == 0
    assert_same_tree(src, out)
