"""The cloud's APIs beyond Swift (compute, image, DNS): one openstacksdk connection, and their
failures in one sentence. Beside ``swift.py`` and ``keystone.py``; plugins (server_image,
ip_fixup) and ``cfbackup firewall`` use it, never each other.

- :func:`connect` returns an ``openstack.connection.Connection`` (authenticated lazily), from a
  profile, a clouds.yaml entry, or both:

  - ``connect(profile)``: the profile's credentials: ``swift.cloud``, else the Keystone v3 keys
    of ``[swift]``, else ``$OS_CLOUD``;
  - ``connect(profile, section="server_image")``: that section's ``cloud``, ``region_name`` and
    ``api_timeout`` first (a plugin's own settings), then as above;
  - ``connect(profile, cloud=NAME)`` or ``connect(cloud=NAME)``: the clouds.yaml entry NAME
    (e.g. chosen on a command line); ``connect()`` alone uses ``$OS_CLOUD``.

  ``region_name`` falls back to ``swift.region_name``, ``api_timeout`` (seconds per answer) to
  60.
- :func:`names_cloud` says whether a profile itself names a cloud (for a caller to whom the
  cloud is optional, such as ``cfbackup firewall -s``).
- :func:`cloud_errors` wraps the calls: a clouds.yaml problem or incomplete credentials become a
  :class:`ConfigError`, every other openstacksdk/keystoneauth1 failure a :class:`BackendError`
  (401, 403, 409, timeouts, unreachable, no endpoint), each one sentence with the fix, secrets
  masked; an unreachable endpoint is named with the system's reason ("Connection refused").
  Failures that asking again may cure (5xx, 429, timeouts, unreachable) carry
  ``transient = True`` (:func:`is_transient`), so a wait can ride out a short outage.

Heavy imports (openstacksdk) stay inside the functions.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from cfbackup.config.model import Profile
from cfbackup.config.secrets import resolve_secret
from cfbackup.errors import BackendError, ConfigError
from cfbackup.redact import redact_output


def cloud_settings(
    profile: Profile | None = None,
    *,
    cloud: str | None = None,
    section: str | None = None,
    region_name: str | None = None,
    api_timeout: float | None = None,
) -> dict[str, Any]:
    """The keyword arguments for ``openstack.connect`` (secrets resolved), by precedence:
    ``cloud``, the ``cloud`` of the profile's config ``section`` (a plugin's, when given),
    ``swift.cloud``, the Keystone v3 keys of ``[swift]``, ``$OS_CLOUD``. ``region_name`` and
    ``api_timeout`` likewise: argument, section, then ``swift.region_name`` and 60 s."""
    swift = (profile.get("swift") if profile is not None else None) or {}
    own = (profile.plugin_config(section) if profile is not None and section else None) or {}
    region = region_name or own.get("region_name") or swift.get("region_name")
    common: dict[str, Any] = {"api_timeout": api_timeout or own.get("api_timeout", 60)}
    if region:
        common["region_name"] = region
    cloud = cloud or own.get("cloud") or swift.get("cloud")
    if cloud:
        return {"cloud": cloud, **common}
    if profile is not None and _has_keystone_v3(swift):
        return {**_keystone_v3(profile, swift), **common}
    if os.environ.get("OS_CLOUD"):
        return {"cloud": os.environ["OS_CLOUD"], **common}
    if profile is None:
        raise ConfigError("no cloud named: give a clouds.yaml entry's name, or export OS_CLOUD.")
    raise ConfigError(
        f"profiles.{profile.name}.{section or 'swift'}: the compute and image APIs need "
        f"Keystone v3 credentials, and this profile has none: set {section or 'swift'}.cloud to "
        'a clouds.yaml entry (or export OS_CLOUD), or use swift.auth_version = "3".'
    )


def names_cloud(profile: Profile, *, section: str | None = None) -> bool:
    """Whether the profile itself names a cloud (the ``section``'s or ``[swift]``'s ``cloud``,
    or Keystone v3 keys in ``[swift]``; ``$OS_CLOUD`` does not count): for a caller to whom
    the cloud is optional."""
    swift = profile.get("swift") or {}
    own = (profile.plugin_config(section) if section else None) or {}
    return bool(own.get("cloud") or swift.get("cloud") or _has_keystone_v3(swift))


def _has_keystone_v3(swift: dict[str, Any]) -> bool:
    return swift.get("auth_version") == "3" and bool(swift.get("auth_url"))


def _keystone_v3(profile: Profile, swift: dict[str, Any]) -> dict[str, Any]:
    where = f"profiles.{profile.name}.swift"
    settings: dict[str, Any] = {
        "auth_url": swift["auth_url"],
        "interface": swift.get("interface") or "public",
        "load_yaml_config": False,
        "load_envvars": False,
    }
    if swift.get("application_credential_id"):
        settings.update(
            auth_type="v3applicationcredential",
            application_credential_id=swift["application_credential_id"],
            application_credential_secret=resolve_secret(
                swift, "application_credential_secret", where
            ),
        )
        return settings
    settings["password"] = resolve_secret(swift, "password", where)
    for key in (
        "username",
        "user_domain_name",
        "user_domain_id",
        "project_name",
        "project_id",
        "project_domain_name",
        "project_domain_id",
    ):
        if swift.get(key):
            settings[key] = swift[key]
    return settings


def connect(
    profile: Profile | None = None,
    *,
    cloud: str | None = None,
    section: str | None = None,
    region_name: str | None = None,
    api_timeout: float | None = None,
):
    """An ``openstack.connection.Connection`` (authenticated lazily); what ``profile``,
    ``cloud`` and ``section`` select: the module docstring. Raises ConfigError or BackendError."""
    import openstack

    settings = cloud_settings(
        profile, cloud=cloud, section=section, region_name=region_name, api_timeout=api_timeout
    )
    what = (
        f"cloud {cloud}"
        if cloud
        else f"the cloud of profile {profile.name}"
        if profile is not None
        else "the cloud"
    )
    with cloud_errors(f"connecting to {what}"):
        return openstack.connect(**settings)


TRANSIENT_STATUS = (429, 500, 502, 503, 504)


def is_transient(error: BaseException) -> bool:
    """Whether asking again may cure ``error`` (a 5xx, 429, a timeout, an unreachable
    endpoint), as marked by :func:`cloud_errors`; a 401, 403, 404 or 409 will not go away."""
    return bool(getattr(error, "transient", False))


def _transient(error: BackendError) -> BackendError:
    error.transient = True  # type: ignore[attr-defined]
    return error


def _short(error: BaseException) -> str:
    details = getattr(error, "details", None)
    text = str(details) if details else str(error)
    text = text.splitlines()[0] if text else type(error).__name__
    return redact_output(text)[:300].rstrip(" .")  # inside a sentence: its own full stop goes


def _caused_by(error: BaseException, kind, *, errno: bool = False) -> BaseException | None:
    """The first exception of ``kind`` (with an errno, if asked) in the chain that led to
    ``error``: keystoneauth1's version discovery hides an unreachable Keystone inside a
    DiscoveryFailure, and the operating system's reason lies under requests and urllib3."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind) and (not errno or getattr(seen, "errno", None)):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _unreachable(doing: str, error: BaseException, timeout_setting: str | None) -> BackendError:
    """An endpoint that did not answer: the URL and the operating system's reason, not the
    four nested exceptions keystoneauth1 and requests wrap it in."""
    import re

    from keystoneauth1 import exceptions as ks

    found = re.search(r"(https?://\S+?):? ", str(error))
    url = redact_output(found.group(1)) if found else ""
    os_error = _caused_by(error, OSError, errno=True)
    reason = os.strerror(os_error.errno) if os_error is not None else _short(error)
    if isinstance(error, ks.ConnectTimeout):
        return BackendError(
            f"{doing}: the cloud did not answer in time ({url or _short(error)}): check the "
            + (
                f"endpoint, or raise {timeout_setting}."
                if timeout_setting
                else "endpoint and the network."
            )
        )
    return BackendError(
        f"{doing}: cannot reach the cloud{' at ' + url if url else ''} ({reason}): check the "
        "auth URL and the network."
    )


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    log = logging.getLogger(logger)
    previous = log.level
    log.setLevel(max(previous, logging.ERROR))
    try:
        yield
    finally:
        log.setLevel(previous)


@contextlib.contextmanager
def cloud_errors(
    doing: str, *, conflict_fix: str = "", timeout_setting: str | None = None
) -> Iterator[None]:
    """Turn openstacksdk/keystoneauth1 failures of ``doing`` into a :class:`BackendError`
    (or a :class:`ConfigError` for a clouds.yaml problem): one sentence, no traceback.
    ``conflict_fix`` is the advice for a 409; ``timeout_setting`` the config key that raises
    the API timeout, named when the cloud does not answer in time."""
    from keystoneauth1 import exceptions as ks
    from openstack import exceptions as sdk
    from openstack.config import exceptions as cfg

    try:
        with _quiet("keystoneauth"):  # its warnings would add lines to our one sentence
            yield
    except cfg.OpenStackConfigException as error:
        raise ConfigError(
            f"{doing}: the cloud settings are unusable ({_short(error)}): check clouds.yaml and "
            "OS_CLOUD."
        ) from None
    except sdk.ConflictException as error:
        raise BackendError(
            f"{doing}: the cloud refused with 409 Conflict ({_short(error)})"
            + (f": {conflict_fix}" if conflict_fix else ": retry when the resource is idle.")
        ) from None
    except sdk.HttpException as error:
        status = error.status_code
        if status == 401:
            raise BackendError(
                f"{doing}: the cloud rejected the credentials (401): check the "
                "user name, password and project."
            ) from None
        if status == 403:
            raise BackendError(
                f"{doing}: forbidden (403): the user lacks a role for this ({_short(error)})."
            ) from None
        failure = BackendError(f"{doing}: the cloud answered {status} ({_short(error)}).")
        raise (_transient(failure) if status in TRANSIENT_STATUS else failure) from None
    except ks.Unauthorized:
        raise BackendError(
            f"{doing}: Keystone rejected the credentials (401): check the user "
            "name, password and project."
        ) from None
    except (ks.ConnectTimeout, ks.ConnectFailure) as error:
        raise _transient(_unreachable(doing, error, timeout_setting)) from None
    except ks.EndpointNotFound as error:
        raise BackendError(
            f"{doing}: the service catalog has no such endpoint "
            f"({_short(error)}): check region_name and interface."
        ) from None
    except ks.DiscoveryFailure as error:
        cause = _caused_by(error, (ks.ConnectTimeout, ks.ConnectFailure))
        if cause is None:
            raise BackendError(f"{doing}: {_short(error)}: check the auth URL.") from None
        raise _transient(_unreachable(doing, cause, timeout_setting)) from None
    except ks.AuthPluginException as error:
        raise ConfigError(f"{doing}: incomplete credentials ({_short(error)}).") from None
    except ks.ClientException as error:
        raise BackendError(f"{doing} failed ({_short(error)}).") from None
    except sdk.SDKException as error:
        raise BackendError(f"{doing} failed ({_short(error)}).") from None
