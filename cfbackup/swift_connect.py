"""cfbackup's own Swift connections: swiftclient Connections for a profile (v1 through
swiftclient's own auth, Keystone v3 through one keystoneauth1 session, ``keystone.py``, which
also renews the token when Swift answers 401), their timeout (the profile's duplicity
``--timeout``), a sibling per thread, and requests side by side (:func:`concurrently`). A
request that timed out is not tried again by swiftclient (``swift_timeouts.py``). Heavy imports
stay inside the functions so ``cfbackup --help`` is fast.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import sys
import threading
import time

from cfbackup import keystone, swift_keepalive, swift_timeouts
from cfbackup.config import legacy_vars
from cfbackup.config.model import Profile
from cfbackup.config.secrets import inherited_credentials, resolve_secret
from cfbackup.errors import ConfigError

TIMEOUT = 30.0  # s: connecting, and each wait for a byte of Swift's answer (one try)


def request_timeout(profile: Profile) -> float:
    """How long cfbackup's client waits for Swift (connecting, each byte of an answer): the
    profile's duplicity ``--timeout`` when its extra_options set one (the last wins, as in
    duplicity), else duplicity's default, :data:`TIMEOUT`."""
    from cfbackup.duplicity import options

    value = (options.last_value(list(profile["extra_options"]), "--timeout") or "").strip()
    return float(value) if value.isdigit() and int(value) > 0 else TIMEOUT


def load_client():
    """``swiftclient.client``, imported without python-keystoneclient.

    swiftclient imports keystoneclient (and oslo.utils) when it can, for its own Keystone v2/v3
    code: 0.2 s of every run's start (measured, ``-X importtime``). cfbackup never takes that
    path (v1 goes through swiftclient's v1 auth, Keystone through a keystoneauth1 session,
    ``keystone.py``), so the import is refused while swiftclient loads, and allowed again after
    (duplicity's own process, which does use it, is not affected).
    """
    import importlib

    refuse = "swiftclient.client" not in sys.modules and "keystoneclient" not in sys.modules
    if refuse:
        sys.modules["keystoneclient"] = None  # type: ignore[assignment]  # -> ImportError
    try:
        return importlib.import_module("swiftclient.client")
    finally:
        if refuse and sys.modules.get("keystoneclient", False) is None:
            del sys.modules["keystoneclient"]


def connect(
    profile: Profile,
    *,
    retries: int = 1,
    username: str | None = None,
    password: str | None = None,
    storage_url: str | None = None,
):
    """A swiftclient Connection for the profile's credentials (or another user's, e.g. a
    reseller admin setting an account quota: ``username``/``password`` override them, and
    ``storage_url`` points that user at the profile's account instead of its own). A request
    that timed out is not tried again by swiftclient (``swift_timeouts.py``): ``retries``
    covers what fails fast."""
    client = load_client()
    if keystone.uses_keystone(profile):
        creds = keystone.credentials(profile)
        if username:  # another Keystone user (e.g. a reseller admin), same domains and project
            creds = dataclasses.replace(
                creds, method=keystone.PASSWORD, username=username, user_id=None, password=password
            )
        return keystone_connection(
            creds, retries=retries, timeout=request_timeout(profile), storage_url=storage_url
        )
    swift = dict(profile["swift"])
    where = f"profiles.{profile.name}.swift"
    if username:
        swift["username"] = username
    password = password or resolve_secret(swift, "password", where)
    if not password and profile.legacy and profile.source_file:
        raise ConfigError(legacy_vars.swift_secret_left_empty(profile.source_file))
    if not swift.get("auth_url") or not swift.get("username") or not password:
        given = {**swift, "password": password}
        missing = [key for key in ("auth_url", "username", "password") if not given.get(key)]
        raise ConfigError(
            f"{where}: auth_url, username and a password are required (missing: "
            f"{', '.join(missing)}){inherited_credentials(missing)}."
        )
    # the login's HTTP connection serves the first request too: a round trip less across a WAN
    connection = swift_keepalive.kept_login(swift_timeouts.tried_once(client.Connection))
    if swift["interface"] == "internal":  # Rackspace ServiceNet (v1 has no catalog)
        from cfbackup import servicenet

        connection = servicenet.connection_class(connection)
    return connection(
        authurl=swift["auth_url"],
        user=swift["username"],
        key=password,
        auth_version="1",
        retries=retries,
        timeout=request_timeout(profile),
        os_options={"object_storage_url": storage_url} if storage_url else {},
    )


@functools.cache
def keystone_connection_class():
    class KeystoneConnection(swift_timeouts.tried_once(load_client().Connection)):
        """A swiftclient Connection that takes its token and storage URL from one keystoneauth1
        session. On a 401 swiftclient invalidates that session, forgets its token and calls
        get_auth() again: a fresh token from Keystone, so an expired token costs one retry."""

        def __init__(self, *args, credentials: keystone.Credentials, keystone_session, **kwargs):
            kwargs["session"] = keystone_session
            super().__init__(*args, **kwargs)
            self.credentials = credentials

        def get_auth(self):
            url, token = keystone.storage_url_and_token(self.session, self.credentials)
            self.url = self.os_options.get("object_storage_url") or url
            self.token = token
            return self.url, self.token

    return KeystoneConnection


def keystone_connection(
    creds: keystone.Credentials,
    *,
    keystone_session=None,
    storage_url: str | None = None,
    retries: int = 1,
    timeout: float | None = None,
    **kwargs,
):
    """A swiftclient Connection authenticated through Keystone (lazily, on first request)."""
    return keystone_connection_class()(
        credentials=creds,
        keystone_session=keystone_session or keystone.session(creds),
        retries=retries,
        timeout=TIMEOUT if timeout is None else timeout,
        os_options={"object_storage_url": storage_url} if storage_url else {},
        **kwargs,
    )


MAX_BACKOFF = 64  # s: swiftclient's own cap between tries


def log_in(conn, *, wait=None) -> None:
    """``conn.get_auth()``, tried as swiftclient tries the login of a request it makes: after
    a network error or a 5xx/408 answer again in 1, 2, 4 ... s, ``conn.retries`` more times at
    most. A login made on its own (the run's one login that every check shares) went without
    them: one 503 or reset connection of the auth service failed a whole restore that the
    checks' own logins used to ride out. A timeout is not tried again (``swift_timeouts.py``),
    nor any other answer (a 401: the credentials) or a mistake of the setup (TLS, the URL).
    ``wait(seconds)`` waits between tries (default: sleeps); when it returns True the run is
    stopping (Ctrl-C: ``TargetView.close``) and the last failure is raised at once."""
    backoff = getattr(conn, "starting_backoff", 1) or 1
    tries = max(0, int(getattr(conn, "retries", 0) or 0)) + 1
    for attempt in range(1, tries + 1):
        try:
            conn.get_auth()
            return
        except Exception as error:
            if attempt == tries or not _passing(error):
                raise
            if wait(backoff) if wait is not None else time.sleep(backoff):
                raise
        backoff = min(backoff * 2, MAX_BACKOFF)


def _passing(error: BaseException) -> bool:
    """Whether a failed login may well work when tried again: no answer (connection refused,
    reset, cut: swiftclient's requests errors; Keystone unreachable) or the auth service's
    5xx/408; not a timeout, not a 401 or any other answer, not TLS or a malformed URL (which
    swiftclient does not try again either)."""
    import requests.exceptions

    if swift_timeouts.timed_out(error, swift_timeouts.timeout_errors() + _keystone_timeouts()):
        return False
    status = getattr(error, "http_status", None)
    if isinstance(status, int):
        return status >= 500 or status == 408
    if isinstance(error, requests.exceptions.SSLError):
        return False
    if isinstance(error, keystone.KeystoneUnreachable):  # explain() of a connection error
        return True
    return isinstance(error, (ConnectionError, requests.exceptions.ConnectionError))


def _keystone_timeouts() -> tuple[type[BaseException], ...]:
    try:
        from keystoneauth1 import exceptions as ks
    except ImportError:
        return ()
    return (ks.ConnectTimeout,)


def sibling(conn):
    """Another connection with ``conn``'s token, for another thread (a swiftclient Connection
    is not thread-safe): it opens its own HTTP connection and authenticates again only when
    Swift rejects the token. ``conn`` itself is never logged in here: it may be in use on its
    own thread, where swiftclient forgets its token on a 401 and, 1 s later, logs in again; a
    twin made meanwhile (or of a connection that never logged in) has no token and logs in on
    its first request, on its own thread. A caller that wants every twin to share one login
    logs ``conn`` in first (:func:`concurrently`, ``stores.SwiftStore``)."""
    twin = copy.copy(conn)  # one snapshot: conn's url and token are read together
    twin.http_conn = None
    if not twin.url or not twin.token:  # half of a pair that is being replaced: neither
        twin.url = twin.token = None
    swift_keepalive.forget_kept(twin)
    return twin


def concurrently(conn, work, items: list, *, workers: int = 4) -> list:
    """``work(connection, item)`` for each item, in order, on up to ``workers`` threads with a
    connection each (:func:`sibling`): Swift requests that do not depend on each other cost
    one round trip together instead of one each. On Ctrl-C or SIGTERM, or the first failure,
    the requests in flight end at once (their sockets shut, swiftclient retrying none), not
    after the client's timeout on a Swift that stopped answering (as ``stores.SwiftStore``'s
    HEADs)."""
    if len(items) <= 1:
        return [work(conn, item) for item in items]
    from cfbackup import sockwatch, workpool

    if not conn.url or not conn.token:  # here, not in each thread
        log_in(conn)

    local = threading.local()
    sockets = sockwatch.Sockets()  # those the threads' connections connect, for halt()
    made: list = []
    results: list = [None] * len(items)

    def run(index: int, item) -> None:
        with sockets.watching():
            if not hasattr(local, "conn"):
                local.conn = sibling(conn)
                made.append(local.conn)
            results[index] = work(local.conn, item)

    def halt() -> None:
        for twin in list(made):
            twin.retries = 0  # swiftclient tries a failed request again while attempts <= retries
        sockets.shut_all()

    workpool.run_all(
        [functools.partial(run, index, item) for index, item in enumerate(items)],
        workers=min(workers, len(items)),
        name="swift",
        halt=halt,
    )
    return results
