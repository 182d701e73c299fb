"""A Swift container's and account's usage and quotas, and the cluster's /info: what
``check``, ``status`` and the quota guard read, and what ``quota set`` writes.

Connections, errors and listings come from ``swift.py``.
"""

from __future__ import annotations

from typing import Any

from cfbackup import interrupts
from cfbackup.config.model import Profile
from cfbackup.errors import BackendError
from cfbackup.swift import concurrently, connect, full_listing, swift_errors, target_of


def container_stats(profile: Profile, conn=None, objects=None) -> dict[str, Any]:
    """Usage and quota of the profile's container (and of its prefix when it has one).

    ``X-Container-Bytes-Used`` is current (the object server updates the container on every
    PUT); ``objects``, a listing already fetched by the caller, saves listing the prefix again.
    """
    target = target_of(profile)
    with swift_errors(profile):
        conn = conn or connect(profile)
        from swiftclient.exceptions import ClientException

        try:
            headers = conn.head_container(target.container)
        except ClientException as error:
            if error.http_status == 404:
                return {
                    "container": target.container,
                    "exists": False,
                    "bytes_used": 0,
                    "object_count": 0,
                    "quota_bytes": None,
                    "quota_count": None,
                }
            raise
        stats = {
            "container": target.container,
            "exists": True,
            "bytes_used": int(headers.get("x-container-bytes-used", 0)),
            "object_count": int(headers.get("x-container-object-count", 0)),
            "quota_bytes": _int_or_none(headers.get("x-container-meta-quota-bytes")),
            "quota_count": _int_or_none(headers.get("x-container-meta-quota-count")),
            "storage_policy": headers.get("x-storage-policy"),
        }
        if target.prefix:
            if objects is None:
                objects = full_listing(
                    conn.get_container, target.container, prefix=target.object_prefix
                )[1]
            stats["prefix"] = target.prefix
            stats["prefix_bytes"] = sum(o.get("bytes", 0) for o in objects)
            stats["prefix_objects"] = len(objects)
        return stats


def account_stats(profile: Profile, conn=None) -> dict[str, Any]:
    """The account's usage and quotas as its HEAD reports them.

    Quotas: ``X-Account-Quota-Bytes``/``-Count`` (Swift 2.34 and later) win over the legacy
    ``X-Account-Meta-Quota-Bytes`` (still honoured; there never was a legacy count). Usage here
    is the account server's, which only moves when the container-updater runs: see
    :func:`account_usage` for the current figure.
    """
    with swift_errors(profile):
        conn = conn or connect(profile)
        headers = conn.head_account()
        return _account_from_headers(conn.url, headers)


def _account_from_headers(url: str, headers: dict) -> dict[str, Any]:
    new, legacy = headers.get("x-account-quota-bytes"), headers.get("x-account-meta-quota-bytes")
    policies: dict[str, dict[str, int | None]] = {}
    for key, value in headers.items():
        for kind, prefix in (
            ("bytes", "x-account-quota-bytes-policy-"),
            ("count", "x-account-quota-count-policy-"),
        ):
            if key.startswith(prefix):
                policies.setdefault(key[len(prefix) :], {})[f"quota_{kind}"] = _int_or_none(value)
    for name, entry in policies.items():
        entry["bytes_used"] = _int_or_none(
            headers.get(f"x-account-storage-policy-{name}-bytes-used")
        )
        entry["object_count"] = _int_or_none(
            headers.get(f"x-account-storage-policy-{name}-object-count")
        )
    return {
        "storage_url": url,
        "bytes_used": int(headers.get("x-account-bytes-used", 0)),
        "object_count": int(headers.get("x-account-object-count", 0)),
        "container_count": int(headers.get("x-account-container-count", 0)),
        "quota_bytes": _int_or_none(new or legacy),
        "quota_bytes_header": (
            "X-Account-Quota-Bytes" if new else "X-Account-Meta-Quota-Bytes" if legacy else None
        ),
        "quota_count": _int_or_none(headers.get("x-account-quota-count")),
        "policy_quotas": policies,
    }


def account_usage(
    profile: Profile,
    conn=None,
    *,
    max_heads: int = 100,
    known: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Account stats plus the current usage: the sum of each container's HEAD.

    Measured on a real Swift: right after a PUT, ``X-Container-Bytes-Used`` has it while the
    account's HEAD and its container listing (both from the account server) still do not.
    With more than ``max_heads`` containers the rest count with their listed (maybe stale)
    figures and ``current_exact`` is False. ``bytes_used_current`` never goes below the
    account's own figure, which is what the account_quotas middleware checks. ``known``: the
    stats of containers the caller has just HEADed itself (:func:`container_stats`, or a
    future of them), not asked again. The HEADs run a few at a time (each a round trip).
    """
    known = known or {}
    with swift_errors(profile):
        conn = conn or connect(profile)
        headers, containers = full_listing(conn.get_account)
        stats = _account_from_headers(conn.url, headers)
        ask = [c["name"] for c in containers[:max_heads] if c["name"] not in known]
        heads = dict(zip(ask, concurrently(conn, _container_usage, ask), strict=True))
        used = count = 0
        for index, listed in enumerate(containers):
            name = listed["name"]
            if name in known:
                figures = known[name]
                figures = interrupts.result(figures) if hasattr(figures, "result") else figures
                head = (figures["bytes_used"], figures["object_count"])
            elif index >= max_heads:
                head = (int(listed.get("bytes", 0)), int(listed.get("count", 0)))
            else:
                head = heads[name]
            if head is not None:  # None: deleted since the listing
                used, count = used + head[0], count + head[1]
        exact = len(containers) <= max_heads
        stats["bytes_used_reported"] = stats["bytes_used"]
        stats["object_count_reported"] = stats["object_count"]
        stats["bytes_used_current"] = max(used, stats["bytes_used"])
        stats["object_count_current"] = max(count, stats["object_count"])
        stats["current_exact"] = exact
        return stats


def _container_usage(conn, name: str) -> tuple[int, int] | None:
    """Bytes and objects of a container by its HEAD; None when it was deleted meanwhile."""
    from swiftclient.exceptions import ClientException

    try:
        head = conn.head_container(name)
    except ClientException as error:
        if error.http_status != 404:
            raise
        return None
    return int(head.get("x-container-bytes-used", 0)), int(head.get("x-container-object-count", 0))


def swift_info(profile: Profile, conn=None) -> dict[str, Any] | None:
    """The cluster's ``GET /info`` (middlewares and their limits), None when it is disabled."""
    with swift_errors(profile):
        conn = conn or connect(profile)
        from swiftclient.exceptions import ClientException

        if not conn.url:
            conn.get_auth()
        try:
            return conn.get_capabilities()
        except ClientException as error:
            if error.http_status in (401, 403, 404):
                return None
            raise


def _quota_value(value: int | None) -> str:
    """A header value: the number, or "" which removes the quota."""
    return "" if value is None else str(int(value))


def set_container_quota(
    profile: Profile, *, quota_bytes=..., quota_count=..., conn=None
) -> dict[str, Any]:
    """Set (an int) or remove (None) the container's quotas; ``...`` leaves one unchanged.

    A PUT of the container: it creates the container when the first backup has not yet.
    """
    target = target_of(profile)
    headers = {}
    if quota_bytes is not ...:
        headers["X-Container-Meta-Quota-Bytes"] = _quota_value(quota_bytes)
    if quota_count is not ...:
        headers["X-Container-Meta-Quota-Count"] = _quota_value(quota_count)
    with swift_errors(profile):
        conn = conn or connect(profile)
        from swiftclient.exceptions import ClientException

        try:
            conn.put_container(target.container, headers=headers)
        except ClientException as error:
            if error.http_status == 403:
                raise BackendError(
                    f"Swift refused to change container {target.container} (403): the user "
                    f"{profile['swift'].get('username')} may not write its metadata."
                ) from None
            raise
        return container_stats(profile, conn)


def set_account_quota(
    profile: Profile, *, quota_bytes=..., quota_count=..., conn=None
) -> dict[str, Any]:
    """Set (an int) or remove (None) the account's quotas; only a reseller admin may.

    Bytes go in both header generations (the legacy one is what Swift before 2.34 reads, and
    keeping both equal leaves no stale value behind); the count exists only in the new one.
    """
    headers = {}
    if quota_bytes is not ...:
        headers["X-Account-Quota-Bytes"] = _quota_value(quota_bytes)
        headers["X-Account-Meta-Quota-Bytes"] = _quota_value(quota_bytes)
    if quota_count is not ...:
        headers["X-Account-Quota-Count"] = _quota_value(quota_count)
    with swift_errors(profile):
        conn = conn or connect(profile)
        from swiftclient.exceptions import ClientException

        try:
            conn.post_account(headers)
        except ClientException as error:
            if error.http_status == 403:
                raise BackendError(
                    "Swift refused to set the account quota (403): only a reseller admin may "
                    f"(the user {getattr(conn, 'user', None) or profile['swift'].get('username')}"
                    " is not one; with tempauth that is a user in the .reseller_admin group). "
                    "Run it with a reseller admin's credentials (--admin-user and "
                    "--admin-password-env), or ask your provider to set it."
                ) from None
            raise
        return account_stats(profile, conn)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None
