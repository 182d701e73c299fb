"""A volume's local copy (a restore's prefetch, read-data, a drill) on a disk that fills up
while it is written (a real 2 MB tmpfs): one sentence about the local disk, no retries, no
part file left. Before, the error raised inside the download read as "cannot reach Swift" and
was tried again, and gpg's own "No space left on device" read as a volume that does not
decrypt, which at 3 a.m. says "the backup is damaged"."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest

from cfbackup import volume_fetch, volumes
from cfbackup.errors import ExitCode
from cfbackup.volume_keys import Keys

pytestmark = [pytest.mark.faults]

VOLUME = "duplicity-full.20261205T000000Z.vol1.difftar"


class _Store:
    """One object's bytes, fed in 64 KiB chunks; counts the downloads."""

    label = "memory"

    def __init__(self, data: bytes):
        self.data, self.downloads = data, 0

    def list(self):
        return {}

    def download(self, name, into, stop):
        self.downloads += 1
        for start in range(0, len(self.data), 65536):
            into(self.data[start : start + 65536])

    def abort(self):
        pass


def _fill(disk, leave: int) -> None:
    stats = os.statvfs(disk)
    (disk / "filler").write_bytes(bytes(stats.f_bavail * stats.f_frsize - leave))


def _fetch(store, name, disk, clear=None):
    ref = volumes.VolumeRef(name, 1, "full", len(store.data), None)
    return volume_fetch.fetch(
        store, [ref], disk, clear=clear, retry=(3, 0.1), stop=threading.Event()
    )


def test_a_plain_copy_on_a_full_disk(small_disk):
    disk = small_disk("copy")
    _fill(disk, leave=256 << 10)
    store = _Store(os.urandom(1 << 20))
    with pytest.raises(volume_fetch.CopyNotWritten) as raised:
        _fetch(store, VOLUME, disk)
    message = raised.value.message
    assert f"writing a copy of {VOLUME} under {disk} failed (No space left on device)" in message
    assert "set tempdir to a larger disk" in message and "Swift" not in message
    assert raised.value.exit_code == ExitCode.DUPLICITY
    assert store.downloads == 1  # a full disk is not tried again
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_a_decrypted_copy_on_a_full_disk(small_disk, tmp_path):
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    passphrase = "copy-" + os.urandom(8).hex()
    clear = tmp_path / "clear"
    clear.write_bytes(os.urandom(1 << 20))
    encrypted = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
         "--passphrase-fd", "0", "--symmetric", "--compress-algo", "none",
         "--output", "-", str(clear)],
        input=passphrase.encode(), capture_output=True, check=True,
    ).stdout  # fmt: skip
    disk = small_disk("copy")
    _fill(disk, leave=256 << 10)
    store = _Store(encrypted)
    keys = Keys(mode="passphrase", passphrase=passphrase, gnupghome=str(home))
    with pytest.raises(volume_fetch.CopyNotWritten) as raised:
        _fetch(store, VOLUME + ".gpg", disk, clear=keys)
    message = raised.value.message
    assert f"writing a copy of {VOLUME} under {disk} failed (No space left on device)" in message
    assert "not decrypt" not in message and "damaged" not in message, message
    assert store.downloads == 1
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]
