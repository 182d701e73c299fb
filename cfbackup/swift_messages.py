"""What cfbackup's own Swift client meets, and what duplicity's failures say about Swift, in
one sentence naming the cause and the fix: :func:`swift_errors` turns the client's exceptions
into them, :func:`unreachable` is the one wording of "Swift cannot be reached" (or of a host
that took the connection and never answered).
"""

from __future__ import annotations

import contextlib
import os
import re

from cfbackup import keystone
from cfbackup.config.model import Profile
from cfbackup.config.secrets import secret_source
from cfbackup.errors import BackendError, CfbackupError
from cfbackup.swift_connect import load_client


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
            + (_internal_setting(profile) if internal else "")
            + ", or ask Swift's operator for a storage URL reachable from here"
        ),
    )


def _internal_setting(profile: Profile) -> str:
    """Which line asked for the provider's internal host, and the fix: a legacy file's
    ``RACKSPACE_SERVICENET=True`` (the sample's, copied to a machine outside the provider's
    network) has no ``swift.interface`` to change."""
    if profile.legacy:
        where = f" in {profile.source_file}" if profile.source_file else ""
        return (
            f" (RACKSPACE_SERVICENET=True{where} asks for the provider's internal host "
            "(ServiceNet), reachable only from inside its network: remove that line elsewhere)"
        )
    return (
        ' (swift.interface = "internal" asks for the provider\'s internal host, '
        'reachable only from inside its network: set "public" elsewhere)'
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
