"""Backup sets are read from object names with duplicity's own ``file_naming``, from several
threads at once when split chains restore side by side."""

from __future__ import annotations

import re
import sys
import threading

from duplicity import file_naming

from cfbackup import stores, volumes
from cfbackup.duplicity.names import PLAIN

NAMES = (
    "duplicity-full.20261204T101010Z.manifest.gpg",
    "duplicity-full.20261204T101010Z.vol1.difftar.gpg",
    "duplicity-full.20261204T101010Z.vol2.difftar.gpg",
    "duplicity-full-signatures.20261204T101010Z.sigtar.gpg",
    "duplicity-inc.20261204T101010Z.to.20261205T101010Z.manifest.gpg",
    "duplicity-inc.20261204T101010Z.to.20261205T101010Z.vol1.difftar.gpg",
    "duplicity-new-signatures.20261204T101010Z.to.20261205T101010Z.sigtar.gpg",
)
PATTERNS = [name for name in vars(file_naming) if name.endswith(("_re", "_re_short"))]


def test_sets_are_read_from_the_names(tmp_path):
    for name in NAMES:
        (tmp_path / name).write_bytes(b"x")
    sets = volumes.backup_sets(stores.FileStore(tmp_path), naming=PLAIN)
    assert [(s.kind, sorted(s.volumes)) for s in sets] == [("full", [1, 2]), ("inc", [1])]


def test_threads_reading_sets_at_once_all_see_duplicity_names(tmp_path):
    """duplicity builds its name patterns one by one on first use: each round unsets them, then
    starts the threads together (the race a split-chain restore met)."""
    for name in NAMES:
        (tmp_path / name).write_bytes(b"x")
    store = stores.FileStore(tmp_path)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can: the window is wide
    try:
        _rounds(store)
    finally:
        sys.setswitchinterval(interval)


def _rounds(store) -> None:
    for _ in range(30):
        re.purge()  # compiling is what takes time: not from re's cache
        for name in PATTERNS:
            setattr(file_naming, name, None)
        start = threading.Barrier(8)
        failures: list[BaseException] = []

        def read(start=start, failures=failures):
            start.wait()
            try:
                assert len(volumes.backup_sets(store, naming=PLAIN)) == 2
            except BaseException as error:  # noqa: BLE001 - reported by the test
                failures.append(error)

        threads = [threading.Thread(target=read) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures
