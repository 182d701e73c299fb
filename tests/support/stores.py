"""A store as tests reach it: an object downloaded the way the restore prefetch downloads it,
from a thread of its own (``stores.SwiftStore`` gives each thread a connection of its own); and
the local Swift read or changed behind cfbackup's back (its admin user, v1 auth)."""

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


def admin_connection(local_swift):
    """A swiftclient connection to the local Swift as its admin user."""
    from swiftclient import client

    user, key = local_swift.users["admin"]
    return client.Connection(authurl=local_swift.auth_url, user=user, key=key, auth_version="1")


def object_names(local_swift, container: str) -> list[str]:
    """The names in ``container``'s listing, in Swift's order."""
    listing = admin_connection(local_swift).get_container(container, full_listing=True)[1]
    return [o["name"] for o in listing]


def full_backups(names: list[str], prefix: str) -> int:
    """How many full backups ``names`` holds under ``prefix`` (one manifest each)."""
    return sum(1 for n in names if n.startswith(prefix + "duplicity-full.") and ".manifest" in n)
