"""Where cfbackup talks to Swift itself: the target's listings and the checks' shared view of
it (:class:`TargetView`).

duplicity has its own client; this one serves ``check``, ``status``, the checks before a
backup and the plugins (usage and quotas are in ``swift_usage.py``). Its connections are in
``swift_connect.py``, its error sentences in ``swift_messages.py``; both are importable from
here too (``swift.connect``, ``swift.swift_errors``...), the names every caller uses.
"""

from __future__ import annotations

import threading
import time
from typing import Any, NamedTuple

from cfbackup.config.model import Profile
from cfbackup.duplicity.target import SwiftTarget, swift_target
from cfbackup.errors import ConfigError
from cfbackup.swift_connect import (
    TIMEOUT,
    concurrently,
    connect,
    keystone_connection,
    keystone_connection_class,
    load_client,
    log_in,
    request_timeout,
    sibling,
)
from cfbackup.swift_messages import (
    AUTH_URL_FIX,
    CATALOG_FIX,
    cut_short,
    password_source,
    stalled,
    status_fix,
    swift_errors,
    unreachable,
)

__all__ = [
    "AUTH_URL_FIX",
    "CATALOG_FIX",
    "LISTING_LIMIT",
    "TIMEOUT",
    "Handover",
    "TargetView",
    "concurrently",
    "connect",
    "cut_short",
    "full_listing",
    "keystone_connection",
    "keystone_connection_class",
    "list_target_objects",
    "load_client",
    "password_source",
    "request_timeout",
    "sibling",
    "stalled",
    "status_fix",
    "swift_errors",
    "target_listing",
    "target_of",
    "unreachable",
]


def target_of(profile: Profile) -> SwiftTarget:
    target = swift_target(profile.target)
    if target is None:
        raise ConfigError(
            f"profiles.{profile.name}.target: {profile.target} is not a swift:// target."
        )
    return target


LISTING_LIMIT = 10000  # Swift's default container_listing_limit and account_listing_limit


def full_listing(get, *args, **params) -> tuple[dict, list[dict]]:
    """Every entry of a container's (``get=conn.get_container``) or the account's listing.

    swiftclient's ``full_listing`` asks once more after the last page, to see it empty: a
    round trip per listing (80 ms across a WAN). With an explicit ``limit`` a shorter page is
    the last one. A cluster whose maximum is lower answers 412 to that limit: then page as
    swiftclient does.
    """
    from swiftclient.exceptions import ClientException

    try:
        headers, page = get(*args, limit=LISTING_LIMIT, **params)
    except ClientException as error:
        if error.http_status != 412:
            raise
        return get(*args, full_listing=True, **params)
    entries = list(page)
    while len(page) >= LISTING_LIMIT:
        _, page = get(*args, limit=LISTING_LIMIT, marker=entries[-1]["name"], **params)
        entries.extend(page)
    return headers, entries


def list_target_objects(profile: Profile, conn=None) -> list[dict[str, Any]]:
    """Name (relative to the target's prefix) and size of every object under the target."""
    return _target_objects(profile, conn) or []


def _target_objects(profile: Profile, conn=None) -> list[dict[str, Any]] | None:
    """:func:`list_target_objects`, None when the container does not exist (a 404)."""
    target = target_of(profile)
    with swift_errors(profile):
        conn = conn or connect(profile)
        from swiftclient.exceptions import ClientException

        try:
            objects = full_listing(
                conn.get_container, target.container, prefix=target.object_prefix or None
            )[1]
        except ClientException as error:
            if error.http_status == 404:
                return None
            raise
        cut = len(target.object_prefix)
        return [{"name": o["name"][cut:], "bytes": int(o.get("bytes", 0))} for o in objects]


def target_listing(profile: Profile, view=None) -> tuple[Any, list[dict[str, Any]]]:
    """A connection and :func:`list_target_objects` of ``profile``'s target: the run's
    :class:`TargetView`'s when there is one and it covers that target, else a fresh one."""
    if view is None:
        conn = connect(profile)
        return conn, list_target_objects(profile, conn)
    objects = view.objects(profile)
    conn = view.connection()
    return conn, objects if objects is not None else list_target_objects(profile, conn)


class Handover(NamedTuple):
    """A storage URL and token cfbackup obtained, and when (``time.monotonic()``)."""

    url: str
    token: str
    obtained: float


class TargetView:
    """What the checks before a backup read of the target, read once: one authentication and
    one listing, shared by the passphrase check and the quota guard (each of them used to
    authenticate and list on its own: 5-6 round trips more, 0.4-0.5 s at 80 ms), and
    look-ups started ahead (:meth:`start`) that overlap the passphrase check's gpg.

    A backup makes one in front of its checks and drops it when duplicity starts
    (``actions/backup.py``), so the listing is never older than the run's checks: a partial
    set that an interrupted run left is in it, and nothing after the checks reads it. Only its
    token goes on, to that backup's duplicity (:meth:`handover`).
    restore, verify, list, prune and cleanup keep theirs for the whole run
    (``actions/common.target_view``): their checks read the chains' objects through
    :meth:`store`, and a duplicity command that deletes from the target drops the listing
    (:meth:`forget`), so the next check lists again.
    Thread-safe: each thread gets its own connection with the run's token.
    """

    def __init__(self, profile: Profile, *, retries: int = 1):
        self.profile = profile
        self.retries = retries  # swiftclient's, of each request on the view's connections
        self._origin = None
        self._failed: BaseException | None = None
        self._objects: list[dict[str, Any]] | None = None
        self._missing = False  # the listing found no container (404)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._made: list = []
        self._pool = None
        self._started: dict[str, Any] = {}
        self._authenticated_at: float | None = None
        self._sockets = None  # a sockwatch.Sockets: those the look-ups connect, for close()
        self._stopping = threading.Event()  # close(abort=True): a login's back-off ends at once
        self._logged_in = threading.Event()  # the run's login is done (or failed)
        self._spares: list = []  # connections with the run's token, connected ahead (spare())
        self._spares_lock = threading.Lock()  # not _lock: the listing holds that while it waits
        self._closing = False  # close() began: connect_ahead stops waiting for the login

    def connection(self):
        """This thread's connection, with the token of the run's one authentication."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if self._failed is not None:  # e.g. Swift unreachable: not waited for twice
                raise self._failed
            if self._origin is None:
                try:
                    origin = connect(self.profile, retries=self.retries)
                    log_in(origin, wait=self._stopping.wait)
                    self._authenticated_at = time.monotonic()
                except Exception as error:
                    self._failed = error
                    self._logged_in.set()
                    raise
                self._origin = origin
                self._logged_in.set()
                conn = origin
            else:
                conn = sibling(self._origin)
            self._made.append(conn)
        self._local.conn = conn
        return conn

    def objects(self, profile: Profile | None = None) -> list[dict[str, Any]] | None:
        """:func:`list_target_objects` of the view's profile, or of one of its chains (a
        sub-prefix of the same target), listed on first use; None for a profile elsewhere."""
        sub = self._sub_prefix(profile)
        if sub is None:
            return None
        objects = self._listing()
        if not sub:
            return objects
        return [dict(o, name=o["name"][len(sub) :]) for o in objects if o["name"].startswith(sub)]

    def _listing(self) -> list[dict[str, Any]]:
        with swift_errors(self.profile):
            conn = self.connection()
        with self._lock:
            if self._objects is None:
                found = _target_objects(self.profile, conn)
                self._objects, self._missing = found or [], found is None
            return self._objects

    def _sub_prefix(self, profile: Profile | None) -> str | None:
        """The prefix of ``profile``'s target under the view's ("" for the view's own target),
        None when it is not under it."""
        if profile is None or profile.target == self.profile.target:
            return ""
        mine, theirs = target_of(self.profile), swift_target(profile.target)
        if theirs is None or theirs.container != mine.container:
            return None
        sub = theirs.object_prefix[len(mine.object_prefix) :]
        if not theirs.object_prefix.startswith(mine.object_prefix) or not sub:
            return None
        return sub

    def covers(self, profile: Profile) -> bool:
        """Whether ``profile``'s target is the view's or one of its chains'."""
        return self._sub_prefix(profile) is not None

    def exists(self) -> bool:
        """Whether the container is there, from the view's listing (a 404 is none): the
        listing answers what a HEAD would, without a request of its own."""
        self._listing()
        with self._lock:
            return not self._missing

    def forget(self) -> None:
        """Drop the listing: duplicity changed the target, and the next check lists again."""
        with self._lock:
            self._objects, self._missing = None, False

    def handover(self) -> Handover | None:
        """The storage URL and token of the view's authentication, for the backup's duplicity
        (``patches/handed_token.py``); None when the checks never authenticated."""
        with self._lock:
            origin = self._origin
            if origin is None or not origin.url or not origin.token:
                return None
            return Handover(origin.url, origin.token, self._authenticated_at or 0.0)

    def connect_ahead(self, count: int) -> None:
        """Once the run has logged in, open ``count`` connections with its token (one per
        download thread of a restore's prefetch), each connected to the storage URL with no
        request yet, while the checks list the target: the first volumes' requests then go
        without a handshake first, a round trip less each across a network
        (``swift_keepalive.preconnect``). :meth:`spare` hands them out. Never logs in itself:
        the run's login is the checks'."""
        from cfbackup import swift_keepalive

        def make(view: TargetView) -> None:
            while not view._logged_in.wait(0.05):
                if view._stopping.is_set() or view._closing:
                    return
            origin = view._origin  # set before _logged_in; not under _lock, which the listing holds
            if origin is None:
                return
            for _ in range(count):
                if view._stopping.is_set() or view._closing:
                    return
                twin = sibling(origin)
                twin._connected_ahead = swift_keepalive.preconnect(twin, twin.timeout)
                with view._spares_lock:
                    view._spares.append(twin)

        self.start("connect-ahead", make)

    def spare(self):
        """A connection :meth:`connect_ahead` made (its ``_connected_ahead``: the sockets it
        connected), or None."""
        with self._spares_lock:
            return self._spares.pop(0) if self._spares else None

    def start(self, key: str, work) -> None:
        """Run ``work(view)`` in a thread now; :meth:`take` gets its result (or its error)."""
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            from cfbackup import sockwatch

            self._sockets = sockwatch.Sockets()
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cfbackup-look")
        self._started[key] = self._pool.submit(self._watched, work)

    def _watched(self, work):
        with self._sockets.watching():  # close(abort=True) shuts what it connects
            return work(self)

    def take(self, key: str):
        """The future of the look-up started under ``key``, or None when none was."""
        return self._started.pop(key, None)

    def close(self, *, abort: bool = False) -> None:
        """Wait for look-ups still running (their requests are bounded by the client's
        timeout), then close every connection. ``abort`` (the run is interrupted, or failed):
        end the look-ups' requests at once first (their sockets shut, swiftclient retrying
        none), not after the timeout on a Swift that stopped answering."""
        self._closing = True  # connect_ahead's waiting ends
        if abort:
            self._stopping.set()  # before the lock: a login backing off holds it
        if abort and self._sockets is not None:
            with self._lock:
                for conn in self._made:
                    conn.retries = 0  # swiftclient retries while attempts <= retries
            self._sockets.shut_all()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        with self._spares_lock:  # those not taken; a taken one is its store's until the end
            spares, self._spares = self._spares, []
        with self._lock:
            for conn in self._made + spares:
                conn.close()
            self._made, self._origin, self._objects, self._missing = [], None, None, False
