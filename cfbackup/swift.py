"""Where cfbackup talks to Swift itself: authentication, errors in one sentence, listings.

duplicity has its own client; this one serves ``check``, ``status``, the checks before a
backup and the plugins (usage and quotas are in ``swift_usage.py``). v1 (tempauth, Rackspace)
goes through swiftclient's own auth, Keystone v3 (password, application credential,
clouds.yaml) through one keystoneauth1 session (``keystone.py``), which also renews the token
when Swift answers 401. Heavy imports stay inside the functions so
``cfbackup --help`` is fast.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import os
import re
import sys
import threading
import time
from typing import Any, NamedTuple

from cfbackup import keystone, swift_timeouts
from cfbackup.config import legacy_vars
from cfbackup.config.model import Profile
from cfbackup.config.secrets import inherited_credentials, resolve_secret, secret_source
from cfbackup.duplicity.target import SwiftTarget, swift_target
from cfbackup.errors import BackendError, CfbackupError, ConfigError

TIMEOUT = 30.0  # s: connecting, and each wait for a byte of Swift's answer (one try)


def request_timeout(profile: Profile) -> float:
    """How long cfbackup's client waits for Swift (connecting, each byte of an answer): the
    profile's duplicity ``--timeout`` when its extra_options set one (the last wins, as in
    duplicity), else duplicity's default, :data:`TIMEOUT`."""
    from cfbackup.duplicity import options

    value = (options.last_value(list(profile["extra_options"]), "--timeout") or "").strip()
    return float(value) if value.isdigit() and int(value) > 0 else TIMEOUT


def target_of(profile: Profile) -> SwiftTarget:
    target = swift_target(profile.target)
    if target is None:
        raise ConfigError(
            f"profiles.{profile.name}.target: {profile.target} is not a swift:// target."
        )
    return target


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
    connection = swift_timeouts.tried_once(client.Connection)
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


@contextlib.contextmanager
def swift_errors(profile: Profile):
    """Turn client exceptions into one sentence naming the cause and the fix."""
    ClientException = load_client().ClientException  # noqa: N806

    url = profile["swift"].get("auth_url")
    try:
        yield
    except ClientException as error:
        status = getattr(error, "http_status", None)
        if keystone.uses_keystone(profile) and status in (401, 403, None):
            raise _keystone_swift_error(profile, error) from None
        if status == 401:
            raise BackendError(
                f"Swift at {url} rejected the credentials of {profile['swift'].get('username')} "
                f"(401): check swift.username and {password_source(profile)}."
            ) from None
        if status == 403:
            raise BackendError(
                "Swift refused access (403): the user lacks a role that Swift accepts."
            ) from None
        if status is None:
            raise unreachable(url, str(error)) from None
        raise BackendError(
            f"Swift answered {status} {error.http_reason} ({_short(error)}): {status_fix(status)}."
        ) from None
    except (OSError, ConnectionError) as error:
        if _CUT_SHORT.search(str(error)):  # requests' ChunkedEncodingError
            raise cut_short() from None
        if keystone.uses_keystone(profile):  # Keystone answered; the storage URL is the catalog's
            raise unreachable(None, str(error), fix=CATALOG_FIX) from None
        raise _unreachable_v1(profile, error) from None
    except Exception as error:  # keystoneauth1 raises its own hierarchy
        if type(error).__module__.startswith("keystoneauth1"):
            raise BackendError(f"Keystone authentication failed ({_short(error)}).") from None
        if _broken_answer(error):  # a download's body, read from urllib3 by swiftclient
            text = str(error)
            raise (cut_short() if _CUT_SHORT.search(text) else stalled(text)) from None
        raise


def _broken_answer(error: BaseException) -> bool:
    """An answer that broke off while swiftclient read it, after its own resumes (urllib3's
    ProtocolError around an IncompleteRead, a read timeout): not OSError, not requests'."""
    import http.client

    import urllib3.exceptions

    return isinstance(error, (urllib3.exceptions.HTTPError, http.client.HTTPException))


def cut_short() -> BackendError:
    """Swift began an answer and the connection ended (an unreliable link or proxy): a backend
    error, so that what retries downloads (``volume_fetch.fetch``) tries it again."""
    return BackendError(
        "the connection to Swift was closed before its answer was complete (after swiftclient "
        "resumed it): the network or a proxy on the way drops it; run the command again, and "
        "if it keeps happening check the link to Swift or ask Swift's operator."
    )


def stalled(text: str) -> BackendError:
    """Swift answered and then stopped sending the body (a read timeout in a download, after
    swiftclient's resumes): the auth and the storage URL were reached, so neither is to blame
    by name; a backend error, so that what retries downloads tries it again."""
    reason = next((plain for pattern, plain in _REASONS if pattern.search(text)), "")
    return BackendError(
        f"Swift stopped sending in the middle of an answer ({reason or 'broken off'}, after "
        "swiftclient resumed it): the link to Swift's storage URL or a proxy on the way stalls; "
        "run the command again, and if it keeps happening check that link or ask Swift's operator."
    )


def status_fix(status: int) -> str:
    """What to do about an HTTP status Swift answered (401 and 403 have their own sentences)."""
    if status >= 500:
        return (
            "Swift's proxy or its storage servers are failing (swiftclient already retried); "
            "try again later, and ask Swift's operator if it persists"
        )
    if status == 404:
        return "the container or the account is not there: check the target and swift.auth_url"
    if status in (429, 498):
        return (
            "Swift limits this account's request rate; try again later, or ask Swift's "
            "operator to raise the limit"
        )
    return "Swift refused the request: ask Swift's operator what its proxy's log says about it"


def _unreachable_v1(profile: Profile, error: BaseException) -> BackendError:
    """v1: the auth URL cannot be reached, or (the auth answered) the storage URL it returned,
    told apart by the URL of the request that failed (requests keeps it on its errors)."""
    url = profile["swift"].get("auth_url")
    failed = getattr(getattr(error, "request", None), "url", None)
    if not failed or not url or _origin(failed) == _origin(url):
        return unreachable(url, str(error))
    account = re.match(r"[^?#]*?/v1/[^/?#]+", failed)  # the storage URL ends at its account
    internal = profile["swift"].get("interface") == "internal"
    return unreachable(
        account[0] if account else _origin(failed),
        str(error),
        fix=(
            f"Swift's auth at {url} answered and returned this storage URL, which this machine "
            "cannot reach: check DNS and firewalls on the way to its host"
            + (
                ' (swift.interface = "internal" asks for the provider\'s internal host, '
                'reachable only from inside its network: set "public" elsewhere)'
                if internal
                else ""
            )
            + ", or ask Swift's operator for a storage URL reachable from here"
        ),
    )


def _origin(url: str) -> str:
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _keystone_swift_error(profile: Profile, error) -> BackendError:
    """Swift's refusal of a Keystone token, naming the identity (Keystone itself accepted it)."""
    try:
        creds = keystone.credentials(profile)
        who = f"{creds.who}" + (f" on {creds.project}" if creds.project else "")
    except CfbackupError:
        who = "the profile's Keystone identity"
    status = error.http_status
    if status == 403:
        return BackendError(
            f"Swift refused access (403) to {who}: Keystone authenticated it, but none of its "
            "roles is one Swift accepts (the proxy's operator_roles, often member or "
            "swiftoperator): ask the cloud's admin to grant one on the project."
        )
    if status == 401:
        return BackendError(
            f"Swift rejected the token Keystone issued to {who} (401) even after a fresh one: "
            "Swift's authtoken middleware cannot validate it (its service user or its Keystone "
            "URL); ask the cloud's admin."
        )
    return unreachable(None, str(error), fix=CATALOG_FIX)


AUTH_URL_FIX = "check swift.auth_url and that the proxy is up and reachable from here"
CATALOG_FIX = (  # Keystone answered: the storage URL is its catalog's
    "check the proxy at the storage URL Keystone's catalog gives and, with several regions, "
    "swift.region_name and swift.interface"
)
_REASONS = (  # what a connection failure says, in every client's words -> a few plain ones
    (re.compile(r"Connection refused|ConnectionRefused|Errno 111", re.I), "connection refused"),
    (
        re.compile(
            r"Name or service not known|Temporary failure in name resolution|"
            r"nodename nor servname|getaddrinfo failed|No address associated",
            re.I,
        ),
        "host name not found",
    ),
    (re.compile(r"Network is unreachable", re.I), "network unreachable"),
    (re.compile(r"No route to host", re.I), "no route to host"),
    (re.compile(r"timed out|timeout", re.I), "timed out"),
    (
        re.compile(r"CERTIFICATE_VERIFY_FAILED|certificate verify failed", re.I),
        "its TLS certificate is not trusted",
    ),
    (
        re.compile(r"Connection reset|RemoteDisconnected|Connection aborted", re.I),
        "the connection was closed",
    ),
)


# an answer that ended early, in urllib3's and requests' words (unreachable() calls it "the
# connection was closed" too, for a request that never got an answer)
_CUT_SHORT = re.compile(
    r"Connection broken|IncompleteRead|InvalidChunkLength|Response ended prematurely", re.I
)
# connected, then no answer within the read timeout (requests' ReadTimeout, urllib3's
# ReadTimeoutError: "Read timed out. (read timeout=30)"); a connect that timed out is not one
_SILENT = re.compile(r"Read timed out(?:\.? \(read timeout=([\d.]+)\))?", re.I)
_POOL = re.compile(r"(https?)ConnectionPool\(host='([^']+)', port=(\d+)\)", re.I)  # urllib3's
_VIA_PROXY = re.compile(r"ProxyError|Unable to connect to proxy|Cannot connect to proxy", re.I)


def unreachable(
    url: str | None, text: str, *, fix: str = AUTH_URL_FIX, failed_at: bool = True
) -> BackendError:
    """The one wording of "Swift cannot be reached", whether cfbackup's client or duplicity's
    hit it: the URL, the cause in plain words (never the client's text cut mid-word), the fix.
    When the HTTP proxy on the way is what cannot be reached, it is named instead; when the
    host took the connection and never answered, that is said. ``failed_at``: whether ``url``
    is the one the request went to (duplicity's failures name only the auth URL: a silent host
    is then the one its text names)."""
    reason = next((plain for pattern, plain in _REASONS if pattern.search(text)), "")
    where = f" at {url}" if url else " at the storage URL Keystone's catalog gave"
    failed = f"connection failed{': ' + reason if reason else ''}"
    proxy = _proxy_for(url) if _VIA_PROXY.search(text) else None
    if proxy is not None:
        variable, address = proxy
        return BackendError(
            f"cannot reach the HTTP proxy {address} on the way to Swift{where} ({failed}): "
            f"check that the proxy is up, or {variable}, which names it (the config file's "
            "[environment] or export, or the environment cfbackup runs in)."
        )
    silent = _SILENT.search(text)
    if silent:  # the host took the connection: neither DNS nor a firewall is to blame
        within = f" ({float(silent[1].rstrip('.')):g} s)" if silent[1] else ""
        if not failed_at:
            pool = _POOL.search(text)
            where = f" at {pool[1].lower()}://{pool[2]}:{pool[3]}" if pool else ""
        return BackendError(
            f"Swift{where} accepted the connection but sent no answer within the timeout"
            f"{within}: its proxy, or a load balancer in front of it, holds the requests; check "
            "the proxy's health and the load balancer's, or ask Swift's operator (if Swift is "
            "only slow, raise --timeout in the profile's extra_options)."
        )
    return BackendError(f"cannot reach Swift{where} ({failed}): {fix}.")


def _proxy_for(url: str | None) -> tuple[str, str] | None:
    """(the variable, the proxy's address without credentials) the request to ``url`` went
    through, as requests chose it from the environment; None when none applies."""
    import urllib.parse

    scheme = urllib.parse.urlsplit(url).scheme if url else "https"
    for variable in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY"):
        value = os.environ.get(variable)
        if value:
            parts = urllib.parse.urlsplit(value if "://" in value else f"http://{value}")
            return variable, f"{parts.scheme}://{parts.hostname}" + (
                f":{parts.port}" if parts.port else ""
            )
    return None


def password_source(profile: Profile) -> str:
    """Where the Swift password came from, for a message about its rejection."""
    return secret_source(profile["swift"], "password", "swift") or "the password"


def _short(error: BaseException) -> str:
    from cfbackup.redact import redact_output

    text = redact_output(str(error).splitlines()[0] if str(error) else type(error).__name__)
    if len(text) > 200:  # at a word's end, never in the middle of one
        text = text[:200].rsplit(" ", 1)[0] + " ..."
    return text.rstrip(" .")


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


def sibling(conn):
    """Another connection with ``conn``'s token, for another thread (a swiftclient Connection
    is not thread-safe): it opens its own HTTP connection and authenticates again only when
    Swift rejects the token. ``conn`` authenticates first if it has not yet."""
    if not conn.url or not conn.token:
        conn.get_auth()
    twin = copy.copy(conn)
    twin.http_conn = None
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
        conn.get_auth()

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


def list_target_objects(profile: Profile, conn=None) -> list[dict[str, Any]]:
    """Name (relative to the target's prefix) and size of every object under the target."""
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
                return []
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
    Thread-safe: each thread gets its own connection with the run's token.
    """

    def __init__(self, profile: Profile):
        self.profile = profile
        self._origin = None
        self._failed: BaseException | None = None
        self._objects: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._made: list = []
        self._pool = None
        self._started: dict[str, Any] = {}
        self._authenticated_at: float | None = None
        self._sockets = None  # a sockwatch.Sockets: those the look-ups connect, for close()

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
                    origin = connect(self.profile)
                    origin.get_auth()
                    self._authenticated_at = time.monotonic()
                except Exception as error:
                    self._failed = error
                    raise
                self._origin = origin
                conn = origin
            else:
                conn = sibling(self._origin)
            self._made.append(conn)
        self._local.conn = conn
        return conn

    def objects(self, profile: Profile | None = None) -> list[dict[str, Any]] | None:
        """:func:`list_target_objects` of the view's profile, or of one of its chains (a
        sub-prefix of the same target), listed on first use; None for a profile elsewhere."""
        conn = self.connection()
        with self._lock:
            if self._objects is None:
                self._objects = list_target_objects(self.profile, conn)
            objects = self._objects
        if profile is None or profile.target == self.profile.target:
            return objects
        mine, theirs = target_of(self.profile), swift_target(profile.target)
        if theirs is None or theirs.container != mine.container:
            return None
        sub = theirs.object_prefix[len(mine.object_prefix) :]
        if not theirs.object_prefix.startswith(mine.object_prefix) or not sub:
            return None
        return [dict(o, name=o["name"][len(sub) :]) for o in objects if o["name"].startswith(sub)]

    def handover(self) -> Handover | None:
        """The storage URL and token of the view's authentication, for the backup's duplicity
        (``patches/handed_token.py``); None when the checks never authenticated."""
        with self._lock:
            origin = self._origin
            if origin is None or not origin.url or not origin.token:
                return None
            return Handover(origin.url, origin.token, self._authenticated_at or 0.0)

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
        if abort and self._sockets is not None:
            with self._lock:
                for conn in self._made:
                    conn.retries = 0  # swiftclient retries while attempts <= retries
            self._sockets.shut_all()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for conn in self._made:
                conn.close()
            self._made, self._origin, self._objects = [], None, None
