"""A restore's prefetch driven in the test's own process against a setup's real Swift, with its
downloads held part way (``HeldStore``): what is on disk, and which gpg runs, while a volume is
still on its way. A plain module, as ``faultkit`` is."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from procwatch import children, cmdline

from cfbackup import prefetch
from cfbackup.config.load import load_config


class HeldStore:
    """A chain's real store whose downloads pause once ``hold_after`` bytes of an object have
    gone to the caller, until ``release`` is set or the download is stopped; ``ended`` has
    when each download's last byte went to the caller (monotonic time)."""

    def __init__(self, store, hold_after: int | None = None):
        self.store = store
        self.label = store.label
        self.hold_after = hold_after
        self.holding = threading.Event()
        self.release = threading.Event()
        self.ended: dict[str, float] = {}

    def list(self) -> dict[str, int]:
        return self.store.list()

    def abort(self) -> None:
        self.store.abort()

    def close(self) -> None:
        self.store.close()

    def download(self, name, into, stop) -> None:
        sent = 0

        def held(chunk: bytes) -> None:
            nonlocal sent
            into(chunk)
            sent += len(chunk)
            if self.hold_after is not None and sent >= self.hold_after:
                self.holding.set()
                while not (self.release.wait(0.02) or stop.is_set()):
                    pass

        self.store.download(name, held, stop)
        self.ended[name] = time.monotonic()


def open_prefetch(setup, folder: Path, *, passphrase: str, ahead: int = 1) -> prefetch.Prefetch:
    """A Prefetch of the setup's profile (planned for a whole restore, not started) into
    ``folder``, reading Swift through a ``HeldStore`` that holds nothing yet."""
    profile = load_config(setup.config).profiles[setup.profile]
    env = {"PASSPHRASE": passphrase, "GNUPGHOME": setup.env["GNUPGHOME"]}
    folder.mkdir(mode=0o700)
    fetcher = prefetch.Prefetch(profile, env, folder, ahead=ahead, user_folder=folder.parent)
    fetcher.store = HeldStore(fetcher.store)
    assert fetcher.plan(None, None)
    return fetcher


def gpg_children() -> list[str]:
    """The gpg processes this test process runs (gpg-agent detaches: not one of them)."""
    import os

    found = [cmdline(pid) for pid in children(os.getpid())]
    return [line for line in found if line.split(" ")[0].endswith("gpg")]


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
