"""Where cfbackup talks to Swift itself: authentication, container and account stats.

duplicity has its own client; this one serves ``check``, ``status`` and the plugins (quota
guard). v1 (tempauth, Rackspace) goes through swiftclient's own auth, Keystone v3 through a
keystoneauth1 session. Heavy imports stay inside the functions so ``cfbackup --help`` is fast.
"""

from __future__ import annotations

import contextlib
from typing import Any

from cfbackup.config.model import Profile
from cfbackup.config.secrets import resolve_secret
from cfbackup.duplicity.target import SwiftTarget, swift_target
from cfbackup.errors import BackendError, ConfigError


def target_of(profile: Profile) -> SwiftTarget:
    target = swift_target(profile.target)
    if target is None:
        raise ConfigError(
            f"profiles.{profile.name}.target: {profile.target} is not a swift:// target."
        )
    return target


def connect(profile: Profile, *, retries: int = 1):
    """A swiftclient Connection for the profile's credentials."""
    import swiftclient

    swift = profile["swift"]
    where = f"profiles.{profile.name}.swift"
    password = resolve_secret(swift, "password", where)
    if not swift.get("auth_url") or not swift.get("username") or not password:
        raise ConfigError(f"{where}: auth_url, username and a password are required.")
    if swift["auth_version"] == "1":
        return swiftclient.Connection(
            authurl=swift["auth_url"],
            user=swift["username"],
            key=password,
            auth_version="1",
            retries=retries,
            timeout=30,
        )
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    auth = v3.Password(
        auth_url=swift["auth_url"],
        username=swift["username"],
        password=password,
        user_domain_name=swift.get("user_domain_name"),
        user_domain_id=swift.get("user_domain_id"),
        project_name=swift.get("project_name"),
        project_id=swift.get("project_id"),
        project_domain_name=swift.get("project_domain_name"),
        project_domain_id=swift.get("project_domain_id"),
    )
    sess = ks_session.Session(auth=auth)
    return swiftclient.Connection(
        session=sess,
        retries=retries,
        timeout=30,
        os_options={
            "region_name": swift.get("region_name"),
            "interface": swift["interface"],
            "endpoint_type": swift["interface"],
        },
    )


@contextlib.contextmanager
def swift_errors(profile: Profile):
    """Turn client exceptions into one sentence naming the cause and the fix."""
    from swiftclient.exceptions import ClientException

    url = profile["swift"].get("auth_url")
    try:
        yield
    except ClientException as error:
        status = getattr(error, "http_status", None)
        if status == 401:
            raise BackendError(
                f"Swift at {url} rejected the credentials of {profile['swift'].get('username')} "
                "(401): check swift.username and the password."
            ) from None
        if status == 403:
            raise BackendError(
                "Swift refused access (403): the user lacks a role that Swift accepts."
            ) from None
        if status is None:
            raise BackendError(
                f"cannot reach Swift at {url}: {_short(error)}: check swift.auth_url and that "
                "the proxy is running."
            ) from None
        raise BackendError(
            f"Swift answered {status} {error.http_reason}: {_short(error)}."
        ) from None
    except (OSError, ConnectionError) as error:
        raise BackendError(
            f"cannot reach Swift at {url}: {_short(error)}: check swift.auth_url and the network."
        ) from None
    except Exception as error:  # keystoneauth1 raises its own hierarchy
        if type(error).__module__.startswith("keystoneauth1"):
            raise BackendError(f"Keystone authentication failed: {_short(error)}.") from None
        raise


def _short(error: BaseException) -> str:
    from cfbackup.redact import redact

    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return redact(text)[:200]


def container_stats(profile: Profile, conn=None) -> dict[str, Any]:
    """Usage and quota of the profile's container (and of its prefix when it has one)."""
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
        }
        if target.prefix:
            objects = conn.get_container(
                target.container, prefix=target.object_prefix, full_listing=True
            )[1]
            stats["prefix"] = target.prefix
            stats["prefix_bytes"] = sum(o.get("bytes", 0) for o in objects)
            stats["prefix_objects"] = len(objects)
        return stats


def account_stats(profile: Profile, conn=None) -> dict[str, Any]:
    with swift_errors(profile):
        conn = conn or connect(profile)
        headers = conn.head_account()
        quota = headers.get("x-account-quota-bytes") or headers.get("x-account-meta-quota-bytes")
        return {
            "storage_url": conn.url,
            "bytes_used": int(headers.get("x-account-bytes-used", 0)),
            "object_count": int(headers.get("x-account-object-count", 0)),
            "container_count": int(headers.get("x-account-container-count", 0)),
            "quota_bytes": _int_or_none(quota),
            "quota_count": _int_or_none(headers.get("x-account-quota-count")),
        }


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None
