"""The cloud side of server parking: an openstacksdk connection from a profile, one place that
turns openstacksdk/keystoneauth1 exceptions into one-sentence errors, and a wait loop.

openstacksdk's own waits are not used for images: ``create_server_image(wait=True)`` does not
treat an image that ends ``killed`` as a failure and waits out its timeout (DESIGN.md section
5). :func:`wait_for` has the semantics of ``image.wait_for_status(..., failures=['killed'])``
plus progress lines and a back-off that starts short (quick operations return quickly).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from cfbackup.config.model import Profile
from cfbackup.config.secrets import resolve_secret
from cfbackup.errors import BackendError, ConfigError
from cfbackup.redact import redact_output

SECTION = "server_image"
TRANSIENT_ERRORS = 3  # consecutive failed polls a wait tolerates


def cloud_settings(profile: Profile) -> dict[str, Any]:
    """The keyword arguments for ``openstack.connect`` (secrets resolved), by precedence:
    ``server_image.cloud``, ``swift.cloud``, the Keystone v3 keys of ``[swift]``, ``$OS_CLOUD``."""
    section = profile.plugin_config(SECTION)
    swift = profile.get("swift") or {}
    timeout = section.get("api_timeout", 60)
    region = section.get("region_name") or swift.get("region_name")
    common: dict[str, Any] = {"api_timeout": timeout}
    if region:
        common["region_name"] = region
    cloud = section.get("cloud") or swift.get("cloud")
    if cloud:
        return {"cloud": cloud, **common}
    where = f"profiles.{profile.name}.swift"
    if swift.get("auth_version") == "3" and swift.get("auth_url"):
        settings: dict[str, Any] = {
            "auth_url": swift["auth_url"],
            "interface": swift.get("interface") or "public",
            "load_yaml_config": False,
            "load_envvars": False,
            **common,
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
    if os.environ.get("OS_CLOUD"):
        return {"cloud": os.environ["OS_CLOUD"], **common}
    raise ConfigError(
        f"profiles.{profile.name}.server_image: the compute and image APIs need Keystone v3 "
        "credentials, and this profile has none: set server_image.cloud to a clouds.yaml "
        'entry (or export OS_CLOUD), or use swift.auth_version = "3".'
    )


def connect(profile: Profile):
    """An ``openstack.connection.Connection`` for the profile (authenticated lazily)."""
    import openstack

    settings = cloud_settings(profile)
    with cloud_errors(f"connecting to the cloud of profile {profile.name}"):
        return openstack.connect(**settings)


def _short(error: BaseException) -> str:
    details = getattr(error, "details", None)
    text = str(details) if details else str(error)
    text = text.splitlines()[0] if text else type(error).__name__
    return redact_output(text)[:300].rstrip(" .")  # inside a sentence: its own full stop goes


@contextlib.contextmanager
def cloud_errors(doing: str, *, conflict_fix: str = "") -> Iterator[None]:
    """Turn openstacksdk/keystoneauth1 failures of ``doing`` into a :class:`BackendError`
    (or a :class:`ConfigError` for a clouds.yaml problem): one sentence, no traceback."""
    from keystoneauth1 import exceptions as ks
    from openstack import exceptions as sdk
    from openstack.config import exceptions as cfg

    try:
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
        raise BackendError(f"{doing}: the cloud answered {status} ({_short(error)}).") from None
    except ks.Unauthorized:
        raise BackendError(
            f"{doing}: Keystone rejected the credentials (401): check the user "
            "name, password and project."
        ) from None
    except ks.ConnectTimeout as error:
        raise BackendError(
            f"{doing}: the cloud did not answer in time ({_short(error)}): "
            "check the endpoint, or raise server_image.api_timeout."
        ) from None
    except ks.ConnectFailure as error:
        raise BackendError(
            f"{doing}: cannot reach the cloud ({_short(error)}): check the "
            "auth URL and the network."
        ) from None
    except ks.EndpointNotFound as error:
        raise BackendError(
            f"{doing}: the service catalog has no such endpoint "
            f"({_short(error)}): check region_name and interface."
        ) from None
    except ks.AuthPluginException as error:
        raise ConfigError(f"{doing}: incomplete credentials ({_short(error)}).") from None
    except ks.ClientException as error:
        raise BackendError(f"{doing} failed ({_short(error)}).") from None
    except sdk.SDKException as error:
        raise BackendError(f"{doing} failed ({_short(error)}).") from None


class WaitFailed(Exception):
    """The resource reached a failure status."""

    def __init__(self, status: str, resource: Any):
        super().__init__(status)
        self.status, self.resource = status, resource


class WaitTimedOut(Exception):
    """The resource did not reach the wanted status within the timeout."""

    def __init__(self, status: str, waited: float):
        super().__init__(status)
        self.status, self.waited = status, waited


def wait_for(
    fetch: Callable[[], Any],
    *,
    what: str,
    goal: str,
    ready: tuple[str, ...],
    failures: tuple[str, ...],
    timeout: float,
    max_interval: float,
    progress: Callable[[str], None],
    status_of: Callable[[Any], str] = lambda r: str(r.status),
) -> Any:
    """Poll ``fetch()`` until its status is in ``ready`` (returns the resource); raise
    :class:`WaitFailed` on a status in ``failures`` and :class:`WaitTimedOut` after
    ``timeout`` seconds. Statuses compare case-insensitively; a progress line saying what is
    awaited ("waiting for ``what`` to be ``goal``") is printed when the status changes and
    every 30 s; a poll that fails is retried, up to ``TRANSIENT_ERRORS`` in a row."""
    from cfbackup.errors import CfbackupError

    ready_l = {s.lower() for s in ready}
    failures_l = {s.lower() for s in failures}
    start = time.monotonic()
    interval, last_status, last_report, errors_in_row = 0.1, None, start, 0
    while True:
        try:
            resource = fetch()
            errors_in_row = 0
        except CfbackupError as error:  # one failed poll in a long wait is not the end
            errors_in_row += 1
            if errors_in_row >= TRANSIENT_ERRORS or time.monotonic() - start >= timeout:
                raise
            progress(f"waiting for {what} to be {goal}: {error.message.rstrip('.')} (retrying)")
            time.sleep(min(interval, max_interval))
            continue
        status = status_of(resource)
        now = time.monotonic()
        waited = now - start
        if status.lower() in ready_l:
            progress(f"{what} is {goal} after {waited:.0f} s")
            return resource
        if status.lower() in failures_l:
            raise WaitFailed(status, resource)
        if status != last_status or now - last_report >= 30:
            progress(
                f"waiting for {what} to be {goal}: it is {status} ({waited:.0f} s of at most "
                f"{timeout:.0f} s)"
            )
            last_status, last_report = status, now
        if waited >= timeout:
            raise WaitTimedOut(status, waited)
        time.sleep(max(0.0, min(interval, timeout - waited)))
        interval = min(interval * 2, max_interval)
