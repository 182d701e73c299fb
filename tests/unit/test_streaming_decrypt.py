"""An object decrypted as its bytes are written (``volume_keys.Keys.decrypting``), with real gpg
and real gzip: the same bytes as decrypting it whole whatever the chunks, and on a failure (a
damaged object, a wrong passphrase, an abort half way) no output and no gpg left; a gpg that
ends early never leaves the writer blocked on its full pipe."""

from __future__ import annotations

import contextlib
import gzip
import os
import random
import signal
import threading
from pathlib import Path

import gnupg
import pytest
from support.cli import PASSPHRASE, WRONG_PASSPHRASE, stop_gpg_agent

from cfbackup.stores import Stopped
from cfbackup.volume_keys import Keys, Undecryptable

MB = 1 << 20
CLEAR = random.Random(7).randbytes(3 * MB) + b"text " * 100_000


@pytest.fixture(scope="module")
def gnupghome(tmp_path_factory):
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    yield home
    stop_gpg_agent(home)


@pytest.fixture(scope="module")
def encrypted(gnupghome) -> bytes:
    gpg = gnupg.GPG(gnupghome=str(gnupghome))
    result = gpg.encrypt(CLEAR, recipients=None, symmetric="AES256", passphrase=PASSPHRASE,
                         armor=False, extra_args=["--pinentry-mode", "loopback"])
    assert result.ok, result.stderr
    return result.data


def _gpg_children() -> list[int]:
    """gpg processes this process runs (threads and processes may end while we look)."""
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):
            for pid in (task / "children").read_text().split():
                with contextlib.suppress(OSError):
                    if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"gpg"):
                        found.append(int(pid))
    return found


def _feed(sink, data: bytes, sizes: list[int]) -> None:
    position, turn = 0, 0
    while position < len(data):
        size = sizes[turn % len(sizes)]
        sink.write(data[position : position + size])
        position, turn = position + size, turn + 1


@pytest.mark.parametrize("sizes", [[MB], [1, 7, 4093, 65536], [len(CLEAR) * 2]])
def test_gpg_and_gzip_objects_decrypt_whatever_the_chunks(gnupghome, encrypted, tmp_path, sizes):
    keys = Keys("symmetric", PASSPHRASE, str(gnupghome))
    two_members = gzip.compress(CLEAR[:MB]) + gzip.compress(CLEAR[MB:])
    for name, data in (("v.difftar.gpg", encrypted), ("v.difftar.gz", two_members),
                       ("v.difftar", CLEAR)):
        output = tmp_path / f"{name}.part"
        sink = keys.decrypting(name, output)
        _feed(sink, data, sizes)
        sink.finish()
        assert output.read_bytes() == CLEAR, name
    assert _gpg_children() == []


def test_damage_a_wrong_passphrase_and_an_abort_leave_nothing(gnupghome, encrypted, tmp_path):
    output = tmp_path / "v.difftar.part"
    right = Keys("symmetric", PASSPHRASE, str(gnupghome))
    cases = [
        (right, "v.difftar.gpg", encrypted[:200] + bytes(64) + encrypted[264:], False),
        (Keys("symmetric", WRONG_PASSPHRASE, str(gnupghome)), "v.difftar.gpg",
         encrypted, True),
        (right, "v.difftar.gpg", encrypted[: len(encrypted) // 2], False),  # cut short
        (right, "v.difftar.gz", gzip.compress(CLEAR)[:-100], False),
        (right, "v.difftar.gz", gzip.compress(CLEAR)[:5000] + bytes(64) + b"x" * MB, False),
    ]
    for keys, name, data, key_problem in cases:
        sink = keys.decrypting(name, output)
        _feed(sink, data, [MB])
        with pytest.raises(Undecryptable) as raised:
            sink.finish()
        assert raised.value.keys == key_problem, raised.value
        assert str(raised.value).startswith(("gpg:", "gzip:")), raised.value
        assert not output.exists() and _gpg_children() == []

    sink = right.decrypting("v.difftar.gpg", output)
    sink.write(encrypted[: 2 * MB])
    sink.abort()
    sink.abort()  # twice: as a failed try and its cleanup both may
    assert not output.exists() and _gpg_children() == []


def test_a_gpg_that_ends_early_does_not_block_the_download(gnupghome, encrypted, tmp_path):
    """gpg reads a damaged or undecryptable object to its end; it ends early when a Ctrl-C
    reaches it (the terminal signals the whole process group). The megabytes written after
    that must not wait on gpg's full pipe: the download goes on to its end for the hash (or to
    its stop), dropping them."""
    sink = Keys("symmetric", PASSPHRASE, str(gnupghome)).decrypting("v.gpg", tmp_path / "out")
    sink.write(encrypted[:MB])
    os.kill(sink._process.pid, signal.SIGINT)
    sink._process.wait(timeout=30)
    done = threading.Event()

    def download() -> None:
        _feed(sink, encrypted[MB:], [64 << 10])
        done.set()

    writer = threading.Thread(target=download, daemon=True)
    writer.start()
    assert done.wait(60), "the writer is blocked on a gpg that ended"
    with pytest.raises(Stopped):  # killed by a signal: the run is ending, the volume is not bad
        sink.finish()
    assert not (tmp_path / "out").exists() and _gpg_children() == []


def test_a_gpg_killed_by_anything_but_a_stop_leaves_the_volume_unread(
    gnupghome, encrypted, tmp_path
):
    """The OOM killer or a crash is not the run stopping: the volume gets a problem (and the
    restore or check says so) instead of no outcome, which a restore would fetch again."""
    sink = Keys("symmetric", PASSPHRASE, str(gnupghome)).decrypting("v.gpg", tmp_path / "out")
    sink.write(encrypted[:MB])
    os.kill(sink._process.pid, signal.SIGKILL)
    sink._process.wait(timeout=30)
    _feed(sink, encrypted[MB:], [64 << 10])
    with pytest.raises(Undecryptable, match="gpg was killed by SIGKILL") as failed:
        sink.finish()
    assert not failed.value.keys
    assert not (tmp_path / "out").exists() and _gpg_children() == []
