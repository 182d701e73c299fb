"""A store's object downloaded the way the restore prefetch downloads it: from a thread of its
own (``stores.SwiftStore`` gives each thread a connection of its own)."""

from __future__ import annotations

import threading


def download_in_another_thread(store, name: str, timeout: float = 120) -> bytes:
    """Object ``name``'s bytes, downloaded by a new thread; its error raised here."""
    got, errors = [], []

    def run():
        try:
            store.download(name, got.append, threading.Event())
        except Exception as error:  # noqa: BLE001 - re-raised below, in the caller's thread
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"downloading {name} took more than {timeout} s"
    if errors:
        raise errors[0]
    return b"".join(got)
