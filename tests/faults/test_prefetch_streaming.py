"""A prefetched volume is decrypted while it downloads (``volume_keys.Keys.decrypting``): gpg's
clear output grows while the download is held half way, and the encrypted bytes never touch
the disk. Stopped half way, damaged in Swift, or read with a wrong passphrase, it leaves no
file and no gpg behind, and ends as before the change: nothing, CORRUPT (before anything gpg
says), the keys error; broken half way on Swift, it is tried again with a new gpg. The
prefetch runs in the test's process against the real Swift, real gpg and a backup real
duplicity made (``prefetchkit``)."""

from __future__ import annotations

import os
import re
import time

import pytest
from faultkit import wait_for, write_tree
from prefetchkit import files_under, gpg_children, open_prefetch
from support.cli import PASSPHRASE, WRONG_PASSPHRASE
from support.trees import assert_same_tree

from cfbackup import volume_keys
from cfbackup.errors import CryptoError

pytestmark = [pytest.mark.faults, pytest.mark.swift]

MB = 1 << 20


@pytest.fixture
def backed_up(make_setup, monkeypatch):
    """A backup whose first volume is about 4 MB (4 chunks of the download); the Swift key in
    this process's environment, where the in-process prefetch reads it."""
    setup = make_setup()
    setup.config.write_text(setup.config.read_text().replace("volsize = 1", "volsize = 4"))
    write_tree(setup.source, mb=4)
    assert setup.run("backup").returncode == 0
    monkeypatch.setenv("T_SWIFT_KEY", setup.env["T_SWIFT_KEY"])
    return setup


def _first(fetcher):
    return min((v for v in fetcher.volumes.values() if v.order is not None),
               key=lambda v: v.order)


def _clear_bytes(setup, name: str) -> bytes:
    data = setup.connection().get_object(setup.container, name)[1]
    keys = volume_keys.Keys("symmetric", PASSPHRASE, setup.env["GNUPGHOME"])
    return keys.decrypt_bytes(data, name)


def _nothing_left(fetcher, volume=None) -> None:
    """No file on its way, no gpg, and no volume in the copy (not ``volume``, when given: the
    prefetch goes on to the next after a damaged one)."""
    assert files_under(fetcher.work) == []
    in_copy = [n for n in files_under(fetcher.copy) if n.endswith((".difftar", ".part"))]
    assert (volume.name not in in_copy) if volume else in_copy == [], in_copy
    assert gpg_children() == []


def test_a_volume_decrypts_while_it_downloads_and_a_stop_leaves_nothing(backed_up, tmp_path):
    setup = backed_up
    fetcher = open_prefetch(setup, tmp_path / "held", passphrase=PASSPHRASE)
    volume = _first(fetcher)
    assert volume.ref.size > 3 * MB, volume.ref
    fetcher.store.hold_after = 2 * MB
    part = fetcher.work / f"{volume.name}.part"
    with fetcher:
        wait_for(fetcher.store.holding.is_set, 60, "the download to be held half way")
        # gpg is at work before the volume's last byte has arrived: its clear output grows
        wait_for(lambda: part.exists() and part.stat().st_size > MB, 20,
                 "gpg's clear output while the download is held")
        assert volume.ref.name not in fetcher.store.ended, "the download was not held"
        assert not (fetcher.copy / volume.name).exists()  # nothing half-written in the copy
        assert files_under(fetcher.work) == [part.name]  # the encrypted bytes are not on disk
        assert len(gpg_children()) == 1
        fetcher.store.release.set()
        wait_for(lambda: (fetcher.copy / volume.name).exists(), 60, "the volume in the copy")
    assert (fetcher.copy / volume.name).read_bytes() == _clear_bytes(setup, volume.ref.name)
    assert fetcher.failure() is None
    assert files_under(fetcher.work) == []
    assert gpg_children() == []

    fetcher = open_prefetch(setup, tmp_path / "stopped", passphrase=PASSPHRASE)
    fetcher.store.hold_after = 2 * MB
    with fetcher:
        wait_for(fetcher.store.holding.is_set, 60, "the download to be held half way")
        assert len(gpg_children()) == 1
    # stopped (close, as Ctrl-C and the restore's end do) half way: no volume, file or gpg
    _nothing_left(fetcher)
    assert fetcher.failure() is None


def test_a_damaged_volume_or_a_wrong_passphrase_leaves_nothing_behind(backed_up, tmp_path):
    setup = backed_up
    fetcher = open_prefetch(setup, tmp_path / "wrong", passphrase=WRONG_PASSPHRASE)
    volume = _first(fetcher)
    with fetcher:
        wait_for(lambda: fetcher.error, 60, "the wrong passphrase to end the prefetch")
    error = fetcher.failure()
    assert isinstance(error, CryptoError), error
    assert "wrong passphrase" in error.message and volume.ref.name in error.message
    _nothing_left(fetcher)

    conn = setup.connection()
    data = bytearray(conn.get_object(setup.container, volume.ref.name)[1])
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # same size, other bytes
    conn.put_object(setup.container, volume.ref.name, bytes(data))
    for passphrase in (PASSPHRASE, WRONG_PASSPHRASE):  # the hash speaks first
        fetcher = open_prefetch(setup, tmp_path / f"damaged-{len(passphrase)}",
                                passphrase=passphrase)
        with fetcher:
            wait_for(lambda fetcher=fetcher: fetcher.failed, 60, "the damaged volume's outcome")
            time.sleep(1)  # long enough for a next volume's wrong passphrase to speak
        # nothing is fetched ahead once a volume failed: duplicity stops at it, and its
        # sentence is the restore's, not the next volume's wrong passphrase
        assert list(fetcher.store.ended) == [volume.ref.name], fetcher.store.ended
        error = fetcher.failure()
        assert "is corrupt (its SHA1 differs" in error.message, error.message
        assert volume.ref.name in error.message
        assert (fetcher.copy / f"{volume.name}.failed").exists()  # what duplicity is told
        _nothing_left(fetcher, volume)


def test_an_unencrypted_profile_restores_through_the_same_path(make_setup, tmp_path):
    """gzip volumes (``mode = "none"``) are undone as they download, chunk by chunk."""
    setup = make_setup(encryption='mode = "none"')
    write_tree(setup.source, mb=3)
    assert setup.run("backup").returncode == 0
    assert all(name.endswith(".difftar.gz") for name in setup.volumes("full"))
    out = tmp_path / "restored"
    assert setup.run("restore", out).returncode == 0
    assert_same_tree(setup.source, out)
    log = max((setup.state_dir / "logs").glob("*-restore-*.log"), key=os.path.getmtime)
    assert re.search(r"prefetch: (\d+) of \1 volumes needed, \d+ ahead, decrypted ahead",
                     log.read_text())


def test_a_download_broken_half_way_is_tried_again_with_a_fresh_gpg(
    make_setup, tmp_path, monkeypatch, caplog
):
    """Swift's proxy stops while a volume is half way through gpg: the try fails on Swift
    (swiftclient's own resumes find no proxy), and the next try starts a new gpg with a new
    output; the volume in the copy is then exactly the clear volume, and no gpg is left."""
    setup = make_setup(extra='extra_options = ["--num-retries=3", "--backend-retry-delay", "2"]\n')
    setup.config.write_text(setup.config.read_text().replace("volsize = 1", "volsize = 16"))
    write_tree(setup.source, mb=16)
    assert setup.run("backup").returncode == 0
    monkeypatch.setenv("T_SWIFT_KEY", setup.env["T_SWIFT_KEY"])
    fetcher = open_prefetch(setup, tmp_path / "retried", passphrase=PASSPHRASE)
    volume = _first(fetcher)
    assert volume.ref.size > 12 * MB, volume.ref
    fetcher.store.hold_after = MB
    part = fetcher.work / f"{volume.name}.part"
    with fetcher:
        wait_for(fetcher.store.holding.is_set, 60, "the download to be held half way")
        wait_for(lambda: part.exists() and part.stat().st_size > 0, 20, "gpg's first output")
        assert len(gpg_children()) == 1
        setup.swift.stop_proxy()
        try:
            fetcher.store.hold_after = None
            fetcher.store.release.set()
            wait_for(lambda: "trying again in 2 s (try 2 of 3)" in caplog.text, 90,
                     "the broken download to be tried again")
        finally:
            setup.swift.start_proxy()
        wait_for(lambda: (fetcher.copy / volume.name).exists(), 90, "the volume in the copy")
    assert (fetcher.copy / volume.name).read_bytes() == _clear_bytes(setup, volume.ref.name)
    assert fetcher.failure() is None
    assert files_under(fetcher.work) == []
    assert gpg_children() == []
