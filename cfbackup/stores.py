"""Where a backup's objects are read from: a Swift container (under the target's prefix) or a
local folder (a ``file://`` target, or a copy cfbackup fetched), behind one small interface:
list the chain's objects, stream one into a callback, end the downloads in progress at once,
and tell which named objects are still there (retention's check of duplicity's deletes).

``volumes.py`` reads backup sets and ``volume_fetch.py`` fetches volumes through it; restore
prefetch, ``verify --read-data`` and drills open one per chain with :func:`open_store`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from cfbackup import sockwatch, workpool
from cfbackup.config.model import Profile
from cfbackup.duplicity.target import file_folder, swift_target
from cfbackup.errors import CfbackupError, ConfigError

CHUNK = 1 << 20


class Stopped(Exception):
    """A download given up because the caller asked (deadline, Ctrl-C)."""


class Missing(Exception):
    """The object is not at the target."""


class Unconfirmed(Exception):
    """:meth:`Store.remaining` could not ask the target about some of the names (Swift
    unreachable, a 5xx after swiftclient's retries, a 401 a new login did not fix): ``kept``
    those seen still there, ``unknown`` those not answered, ``reason`` the target's answer."""

    def __init__(self, kept: list[str], unknown: list[str], reason: str):
        super().__init__(reason)
        self.kept, self.unknown, self.reason = kept, unknown, reason


class Sink(Protocol):
    """Where a download's bytes go as they arrive: ``write`` each chunk, then ``finish`` once
    the object is whole and its hash checked, or ``abort`` (nothing of it stays behind; safe
    after either, and more than once)."""

    def write(self, chunk: bytes) -> None: ...

    def finish(self) -> None: ...

    def abort(self) -> None: ...


class FileSink:
    """The bytes as they are, into ``path``."""

    def __init__(self, path: Path):
        self.path = path
        self._handle = open(path, "wb")  # noqa: SIM115 - closed by finish or abort

    def write(self, chunk: bytes) -> None:
        self._handle.write(chunk)

    def finish(self) -> None:
        self._handle.close()

    def abort(self) -> None:
        self._handle.close()
        self.path.unlink(missing_ok=True)


class Store(Protocol):
    label: str

    def list(self) -> dict[str, int]: ...  # object name -> size, for the chain's own objects

    def download(self, name: str, into: Callable[[bytes], None], stop: threading.Event) -> None:
        """Feed the object's bytes to ``into``; Missing when it is not there."""

    def abort(self) -> None:
        """End the downloads in progress now (a stalled one too): the caller is leaving."""

    def close(self) -> None:
        """Close its connections: the caller is done with it (after :meth:`abort` too)."""

    def remaining(self, names) -> list[str]:
        """Those of ``names`` (the chain's objects) still at the target, in their order;
        Unconfirmed when the target could not answer for some of them."""

    def exists(self) -> bool:
        """Whether the target itself (the folder, the container) is there: duplicity creates
        a missing one as a side effect of any command, so commands that only read or remove
        ask first."""


HEADS_AT_ONCE = 4  # remaining()'s HEADs in flight: one round trip for several objects
DOWNLOAD_RETRIES = 3  # swiftclient's retries when swift.retries is unset (~7 s; not of a timeout)


def request_retries(profile: Profile) -> int:
    """swiftclient's retries of each request of a store: ``swift.retries``, else
    :data:`DOWNLOAD_RETRIES`."""
    retries = profile["swift"].get("retries")
    return DOWNLOAD_RETRIES if retries is None else retries


class SwiftStore:
    """A chain's objects in a Swift container (under its prefix), one connection per thread
    (a swiftclient Connection is not thread-safe). The first thread's connection logs in as it
    is made, before another thread can copy it (a thread that copied it while its own thread's
    login was under way logged it in a second time, from the wrong thread); the others are
    its siblings (``swift.sibling``), so a download thread does not log in again
    before a restore's first volume can start (a request on a connection of its own, two round
    trips or more across a network). With Keystone a sibling takes its token from the shared
    keystoneauth session, which renews it before it expires; otherwise it starts with the
    newest token a connection of the store got (one renewed after a 401 included, so each new
    thread does not meet the same 401). On a 401 a connection logs in again, as swiftclient
    always does.

    ``view``: the run's ``swift.TargetView`` (restore, verify, list, prune, cleanup): the
    first connection starts with its token, and :meth:`list` and :meth:`exists` answer from
    its one listing of the target (:meth:`remaining`, after duplicity deleted, lists anew). A
    thread takes a connection the view opened ahead when it has one
    (``TargetView.connect_ahead``, a restore's): no handshake before its first volume."""

    def __init__(self, profile: Profile, view=None):
        self.profile = profile
        self.view = view
        self.target = swift_target(profile.target)
        self.label = profile.target
        self._local = threading.local()
        self._reading: dict[int, Any] = {}  # thread -> its connection (a download, a HEAD)
        self._sockets = sockwatch.Sockets()  # those the downloads and HEADs connect, for abort()
        self._aborted = False
        self._stop = threading.Event()  # abort(): a login's back-off ends at once
        self._first = None  # the first thread's connection: the others are its siblings
        self._making = threading.Lock()
        self._login: tuple[str, str] | None = None  # the newest (storage URL, token) seen
        self._conns: list = []  # those it made or took (a spare): close() closes them
        self.retries = request_retries(profile)  # swiftclient's own, per request

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            from cfbackup import swift

            with self._making:
                spare = self.view.spare() if self.view is not None else None
                if spare is not None:  # the run's token, connected while the checks listed
                    conn = spare
                    conn.retries = self.retries
                    if conn.session is None and self._login is not None:  # a newer login
                        conn.url, conn.token = self._login
                    if self._first is None:
                        self._first = conn
                elif self._first is None:
                    with swift.swift_errors(self.profile):
                        if self.view is not None:  # the run's login
                            conn = swift.sibling(self.view.connection())
                            conn.retries = self.retries
                        else:
                            conn = swift.connect(self.profile, retries=self.retries)
                        if not conn.url or not conn.token:  # before another thread copies it
                            swift.log_in(conn, wait=self._stop.wait)
                    self._first = conn
                else:
                    conn = swift.sibling(self._first)
                    if conn.session is not None:  # Keystone: the session's token, kept fresh
                        conn.url = conn.token = None
                    elif self._login is not None:
                        conn.url, conn.token = self._login
                self._conns.append(conn)
            self._local.conn = conn
        return conn

    def _logged_in(self, conn) -> None:
        if conn.url and conn.token:
            self._login = (conn.url, conn.token)

    def abort(self) -> None:
        """Shut the sockets of the downloads (and :meth:`remaining`'s HEADs) in progress, and
        let swiftclient retry none of them: a download that waits on a stalled link
        (connecting, for the response headers, or in the body; up to ``timeout`` per retry,
        minutes in all) ends at once, so Ctrl-C or SIGTERM mid-restore is not held up by the
        network. For good: a download started afterwards stops at once too."""
        self._aborted = True
        self._stop.set()
        for conn in list(self._reading.values()):
            conn.retries = 0  # swiftclient tries a failed request again while attempts <= retries
        self._sockets.shut_all()

    def close(self) -> None:
        """Close the connections it made or took from the view (a spare): the view closes only
        its own and the spares nobody took. Its user calls it when done (a prefetch's end)."""
        with self._making:
            conns, self._conns, self._first = self._conns, [], None
        self._local = threading.local()  # a later call (none expected) connects anew
        for conn in conns:
            conn.close()

    def list(self) -> dict[str, int]:
        if self.view is None:
            return self._listed()
        objects = self.view.objects(self.profile)
        return {o["name"]: int(o["bytes"]) for o in objects if "/" not in o["name"]}

    def _listed(self) -> dict[str, int]:
        """The chain's objects, listed now."""
        from cfbackup import swift

        prefix = self.target.object_prefix
        with self._watched() as conn, swift.swift_errors(self.profile):  # abort() ends it too
            client = swift.load_client()
            try:
                if self._aborted:
                    raise Stopped
                listing = conn.get_container(
                    self.target.container, prefix=prefix, full_listing=True
                )[1]
                self._logged_in(conn)
            except client.ClientException as error:
                if error.http_status == 404:
                    return {}
                raise
            except Exception:
                if self._aborted:
                    raise Stopped from None
                raise
        names = {o["name"][len(prefix) :]: int(o["bytes"]) for o in listing}
        return {name: size for name, size in names.items() if "/" not in name}

    def exists(self) -> bool:
        """A HEAD of the container: 404 is no container (no backup), not a Swift error.
        With a view, its listing answers (a 404 there is no container either)."""
        from cfbackup import swift

        if self.view is not None:
            return self.view.exists()

        with swift.swift_errors(self.profile):
            client = swift.load_client()
            conn = self._conn()
            try:
                conn.head_container(self.target.container)
            except client.ClientException as error:
                if error.http_status == 404:
                    return False
                raise
            self._logged_in(conn)
        return True

    def remaining(self, names) -> list[str]:
        """A container listing lags acknowledged DELETEs (container updates are asynchronous):
        only the listed names are asked again, each with a HEAD that asks every replica
        (``X-Newest``); only a 200 is still there, a 404 is gone. Any other outcome (after
        swiftclient's retries) is no answer: Unconfirmed, with those seen still there."""
        from cfbackup import swift

        names = list(dict.fromkeys(names))
        try:
            listed = self._listed()  # never a view's: it is older than the deletes
        except CfbackupError as error:
            raise Unconfirmed([], names, error.message) from None
        asked = [name for name in names if name in listed]
        if not asked:
            return []
        prefix = self.target.object_prefix
        client = swift.load_client()
        found: dict[int, bool | CfbackupError] = {}

        def there(position: int, name: str) -> None:
            try:
                with swift.swift_errors(self.profile), self._watched() as conn:
                    try:
                        conn.head_object(
                            self.target.container, prefix + name, headers={"X-Newest": "true"}
                        )
                    except client.ClientException as error:
                        if error.http_status != 404:
                            raise
                        found[position] = False
                    else:
                        found[position] = True
            except CfbackupError as error:
                found[position] = error

        # on threads whose sockets abort() shuts: a Ctrl-C or SIGTERM while a HEAD waits on a
        # Swift that stopped answering ends it at once, not after swiftclient's timeout (30 s)
        workpool.run_all(
            [functools.partial(there, i, name) for i, name in enumerate(asked)],
            workers=HEADS_AT_ONCE,
            name="head",
            halt=self.abort,
        )
        answers = [found[i] for i in range(len(asked))]
        kept = [name for name, yes in zip(asked, answers, strict=True) if yes is True]
        failed = [
            (name, e) for name, e in zip(asked, answers, strict=True) if not isinstance(e, bool)
        ]
        if failed:
            raise Unconfirmed(kept, [name for name, _ in failed], failed[-1][1].message)
        return kept

    @contextlib.contextmanager
    def _watched(self) -> Iterator[Any]:
        """This thread's connection, its sockets (from the login on) and its retries
        :meth:`abort`'s while the block runs: Stopped when it was aborted before, with no
        login (a DNS look-up that does not answer would hold up the stop)."""
        me = threading.get_ident()
        if self._aborted:
            raise Stopped
        with self._sockets.watching():
            try:
                conn = self._reading[me] = self._conn()  # a new thread's may log in first
                # a connection made ahead (TargetView.connect_ahead): abort() shuts it too
                self._sockets.adopt(getattr(conn, "_connected_ahead", ()))
                conn._connected_ahead = ()
            except Exception:
                if self._aborted:
                    raise Stopped from None
                raise
            try:
                yield conn
            finally:
                self._reading.pop(me, None)

    def download(self, name: str, into: Callable[[bytes], None], stop: threading.Event) -> None:
        with self._watched() as conn:
            self._download(conn, name, into, stop)

    def _download(self, conn, name: str, into: Callable[[bytes], None], stop) -> None:
        from cfbackup import swift

        with swift.swift_errors(self.profile):
            client = swift.load_client()
            try:
                if self._aborted:
                    raise Stopped
                _, body = conn.get_object(
                    self.target.container, self.target.object_prefix + name, resp_chunk_size=CHUNK
                )
                self._logged_in(conn)
                for chunk in body:
                    if stop.is_set() or self._aborted:
                        raise Stopped
                    into(chunk)
            except Exception as error:
                if isinstance(error, client.ClientException) and error.http_status == 404:
                    raise Missing(name) from None
                if self._aborted:
                    raise Stopped from None
                raise


class FileStore:
    """A chain's objects in a local folder (a ``file://`` target, or a copy made by fetch)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.label = f"file://{folder}"

    def list(self) -> dict[str, int]:
        if not self.folder.is_dir():
            return {}
        return {e.name: e.stat().st_size for e in os.scandir(self.folder) if e.is_file()}

    def download(self, name: str, into: Callable[[bytes], None], stop: threading.Event) -> None:
        try:
            handle = open(self.folder / name, "rb")
        except FileNotFoundError:
            raise Missing(name) from None
        with handle:
            while chunk := handle.read(CHUNK):
                if stop.is_set():
                    raise Stopped
                into(chunk)

    def abort(self) -> None:
        """Local reads never stall: the stop event between chunks is enough."""

    def close(self) -> None:
        """Nothing held open between reads."""

    def remaining(self, names) -> list[str]:
        return [name for name in dict.fromkeys(names) if os.path.lexists(self.folder / name)]

    def exists(self) -> bool:
        return self.folder.is_dir()


def readable(target: str) -> bool:
    """Whether :func:`open_store` reads this target (swift:// and file://)."""
    return swift_target(target) is not None or urllib.parse.urlsplit(target).scheme == "file"


def target_exists(profile: Profile, view=None) -> bool | None:
    """Whether the (chain's) profile target exists: its folder (file://) or its container
    (swift://; a prefix is no object of its own); None for a target cfbackup does not read.
    ``view``: as :func:`open_store`'s."""
    if not readable(profile.target):
        return None
    return open_store(profile, view).exists()


def open_store(profile: Profile, view=None) -> Store:
    """The store of a (chain's) profile target: swift:// or file://. ``view``: the run's
    ``swift.TargetView`` (or None): a Swift target it covers is read through it, one login and
    one listing for every check of the run."""
    if swift_target(profile.target) is not None:
        if view is not None and view.covers(profile):
            return SwiftStore(profile, view=view)  # lists from the view, with its token
        return SwiftStore(profile)
    parsed = urllib.parse.urlsplit(profile.target)
    if parsed.scheme == "file":
        return FileStore(Path(file_folder(profile.target)))
    raise ConfigError(
        f"profiles.{profile.name}.target: {profile.target}: cfbackup reads volumes itself only "
        "from swift:// and file:// targets; use cfbackup verify (duplicity's own check) here."
    )
