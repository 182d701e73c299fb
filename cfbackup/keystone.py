"""Keystone v3 for cfbackup: one keystoneauth1 session per profile, and its failures in a sentence.

The credentials come from the profile's ``[swift]`` keys (a password, or an application
credential's id and secret) or from a ``clouds.yaml`` entry (``swift.cloud``, else ``OS_CLOUD``
when the profile names no ``auth_url``), read with openstacksdk's own loader. cfbackup's Swift
client (``swift.py``: check, status, quotas, plugins) and duplicity's application-credential
patch (``duplicity/patches/application_credential.py``) both talk to Swift through
``swift.keystone_connection``, whose swiftclient Connection asks this session for the token and
the storage URL, and asks again when Swift answers 401 (an expired token), so a run outlives any
token lifetime. This module knows Keystone only: ``swift.py`` builds on it, never the reverse.

Keystone answers 401 to a wrong password, an unknown user, user domain, project or project
domain alike (measured); :func:`explain` tells them apart where it can by also trying an
unscoped token, which needs only the user's name, domain and password. A deleted application
credential is a 404 ("Could not find Application Credential"), an expired one a 401.
Heavy imports stay inside the functions: ``cfbackup --help`` never loads keystoneauth1.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import Any

from cfbackup import redact
from cfbackup.config import legacy_vars
from cfbackup.config.model import Profile
from cfbackup.config.secrets import resolve_secret
from cfbackup.errors import BackendError, CfbackupError, ConfigError

PASSWORD = "password"
APPLICATION_CREDENTIAL = "application_credential"
SERVICE_TYPE = "object-store"

# clouds.yaml auth_type -> method; anything else is refused (duplicity takes only these two)
_AUTH_TYPES = {
    "password": PASSWORD,
    "v3password": PASSWORD,
    "v3applicationcredential": APPLICATION_CREDENTIAL,
    "applicationcredential": APPLICATION_CREDENTIAL,
    "application_credential": APPLICATION_CREDENTIAL,
}


class KeystoneUnreachable(BackendError):
    """Keystone could not be reached: unlike a refusal, this may pass (retrying makes sense)."""


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Everything needed to authenticate to Keystone v3 and pick the object-store endpoint."""

    method: str  # PASSWORD or APPLICATION_CREDENTIAL
    auth_url: str
    where: str  # where they come from, for messages: "profiles.web.swift" or "clouds.yaml ..."
    interface: str = "public"
    region_name: str | None = None
    username: str | None = None
    user_id: str | None = None
    user_domain_name: str | None = None
    user_domain_id: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    project_name: str | None = None
    project_id: str | None = None
    project_domain_name: str | None = None
    project_domain_id: str | None = None
    application_credential_id: str | None = None
    application_credential_secret: str | None = dataclasses.field(default=None, repr=False)
    verify: bool | str = True  # False, True or a CA bundle path (clouds.yaml cacert/verify)

    @property
    def who(self) -> str:
        """The identity in words, without secrets."""
        if self.method == APPLICATION_CREDENTIAL:
            return f"application credential {self.application_credential_id}"
        domain = self.user_domain_name or self.user_domain_id
        name = self.username or self.user_id
        return f"user {name}" + (f" (domain {domain})" if domain else "")

    @property
    def project(self) -> str:
        name = self.project_name or self.project_id
        domain = self.project_domain_name or self.project_domain_id
        return f"project {name}" + (f" (domain {domain})" if domain else "") if name else ""


# ---- where the credentials come from ----------------------------------------------------
def uses_keystone(profile: Profile) -> bool:
    """True when the profile authenticates with Keystone v3 (else Swift v1 auth)."""
    swift = profile["swift"]
    return bool(
        swift.get("auth_version") == "3"
        or swift.get("cloud")
        or swift.get("application_credential_id")
        or (not swift.get("auth_url") and os.environ.get("OS_CLOUD"))
    )


def credentials(profile: Profile) -> Credentials:
    """The profile's Keystone credentials, secrets resolved (and registered for redaction).

    Raises ConfigError naming the key to fix when something needed is missing.
    """
    swift = profile["swift"]
    where = f"profiles.{profile.name}.swift"
    cloud = swift.get("cloud") or (None if swift.get("auth_url") else os.environ.get("OS_CLOUD"))
    if cloud:
        return _from_clouds_yaml(cloud, swift, where)
    if not swift.get("auth_url"):
        raise ConfigError(
            f"{where}.auth_url: required for Keystone (e.g. https://keystone:5000/v3)."
        )
    common = {
        "auth_url": swift["auth_url"],
        "where": where,
        "interface": swift.get("interface") or "public",
        "region_name": swift.get("region_name") or None,
    }
    if swift.get("application_credential_id"):
        secret = resolve_secret(swift, "application_credential_secret", where)
        if not secret:
            raise ConfigError(
                f"{where}: application_credential_id needs the credential's secret too "
                "(application_credential_secret_env, _file, _command, or inline in a mode 0600 "
                "file)."
            )
        return Credentials(
            method=APPLICATION_CREDENTIAL,
            application_credential_id=swift["application_credential_id"],
            application_credential_secret=secret,
            **common,
        )
    if not swift.get("username"):
        raise ConfigError(
            f"{where}.username: required for Keystone password authentication (or use "
            "application_credential_id, or cloud)."
        )
    password = resolve_secret(swift, "password", where)
    if not password and profile.legacy and profile.source_file:
        raise ConfigError(legacy_vars.swift_secret_left_empty(profile.source_file))
    if not password:
        raise ConfigError(
            f"{where}: Keystone password authentication needs the user's password (password_env, "
            "password_file, password_command, or inline in a mode 0600 file)."
        )
    if not (swift.get("user_domain_name") or swift.get("user_domain_id")):
        raise ConfigError(
            f"{where}.user_domain_name: Keystone needs the user's domain (user_domain_name or "
            'user_domain_id; often "Default").'
        )
    if not (swift.get("project_name") or swift.get("project_id")):
        raise ConfigError(
            f"{where}.project_name: Swift needs a project-scoped token (project_name or "
            "project_id)."
        )
    return Credentials(
        method=PASSWORD,
        username=swift["username"],
        password=password,
        user_domain_name=swift.get("user_domain_name"),
        user_domain_id=swift.get("user_domain_id"),
        project_name=swift.get("project_name"),
        project_id=swift.get("project_id"),
        project_domain_name=swift.get("project_domain_name"),
        project_domain_id=swift.get("project_domain_id"),
        **common,
    )


def _from_clouds_yaml(cloud: str, swift: dict[str, Any], where: str) -> Credentials:
    """A clouds.yaml entry through openstacksdk's loader (clouds.yaml, secure.yaml, the usual
    search path and OS_CLIENT_CONFIG_FILE). The profile's region_name wins over the cloud's,
    and so does an interface other than the default."""
    from openstack import config as os_config
    from openstack import exceptions as sdk_exceptions

    label = f"clouds.yaml cloud {cloud!r} ({where})"
    try:
        region = os_config.OpenStackConfig().get_one(cloud=cloud)
    except sdk_exceptions.ConfigException as error:
        raise ConfigError(
            f"{label}: {_short(error)}: check clouds.yaml (~/.config/openstack/, "
            "/etc/openstack/ or OS_CLIENT_CONFIG_FILE) and the cloud's name."
        ) from None
    except Exception as error:  # keystoneauth1's loader: missing or unknown auth options
        if type(error).__module__.startswith(("keystoneauth1", "openstack")):
            raise ConfigError(f"{label}: {_short(error)}: fix the cloud's auth section.") from None
        raise
    config = region.config
    auth = dict(config.get("auth") or {})
    auth_type = (config.get("auth_type") or "password").replace("-", "_")
    method = _AUTH_TYPES.get(auth_type)
    if method is None:
        raise ConfigError(
            f"{label}: auth_type {auth_type} is not supported: cfbackup (and duplicity) take a "
            "password (auth_type password) or an application credential "
            "(auth_type v3applicationcredential)."
        )
    if not auth.get("auth_url"):
        raise ConfigError(f"{label}: auth.auth_url is missing.")
    verify: bool | str = bool(config.get("verify", True))
    if verify and config.get("cacert"):
        verify = str(config["cacert"])
    interface = swift.get("interface") or "public"
    if interface == "public":
        interface = region.get_interface(SERVICE_TYPE) or interface
    common = {
        "auth_url": auth["auth_url"],
        "where": label,
        "interface": interface,
        "region_name": swift.get("region_name") or region.region_name or None,
        "verify": verify,
    }
    if method == APPLICATION_CREDENTIAL:
        if not auth.get("application_credential_id") or not auth.get(
            "application_credential_secret"
        ):
            raise ConfigError(
                f"{label}: an application credential needs auth.application_credential_id and "
                "auth.application_credential_secret (swiftclient cannot look one up by name)."
            )
        redact.register(auth["application_credential_secret"])
        return Credentials(
            method=method,
            application_credential_id=auth["application_credential_id"],
            application_credential_secret=auth["application_credential_secret"],
            **common,
        )
    if not (auth.get("username") or auth.get("user_id")) or not auth.get("password"):
        raise ConfigError(f"{label}: auth.username (or user_id) and auth.password are required.")
    redact.register(auth["password"])
    return Credentials(
        method=method,
        username=auth.get("username"),
        user_id=auth.get("user_id"),
        password=auth["password"],
        user_domain_name=auth.get("user_domain_name"),
        user_domain_id=auth.get("user_domain_id"),
        project_name=auth.get("project_name") or auth.get("tenant_name"),
        project_id=auth.get("project_id") or auth.get("tenant_id"),
        project_domain_name=auth.get("project_domain_name"),
        project_domain_id=auth.get("project_domain_id"),
        **common,
    )


# ---- sessions and connections -----------------------------------------------------------
def auth_plugin(creds: Credentials, *, unscoped: bool = False):
    """The keystoneauth1 v3 plugin for these credentials (``unscoped``: no project)."""
    from keystoneauth1.identity import v3

    if creds.method == APPLICATION_CREDENTIAL:
        return v3.ApplicationCredential(
            auth_url=creds.auth_url,
            application_credential_id=creds.application_credential_id,
            application_credential_secret=creds.application_credential_secret,
        )
    scope = (
        {}
        if unscoped
        else {
            "project_name": creds.project_name,
            "project_id": creds.project_id,
            "project_domain_name": creds.project_domain_name,
            "project_domain_id": creds.project_domain_id,
        }
    )
    return v3.Password(
        auth_url=creds.auth_url,
        username=creds.username,
        user_id=creds.user_id,
        password=creds.password,
        user_domain_name=creds.user_domain_name,
        user_domain_id=creds.user_domain_id,
        **scope,
    )


def session(creds: Credentials, *, unscoped: bool = False, timeout: float = 30.0):
    """A keystoneauth1 Session: it authenticates on first use and again when asked to."""
    from keystoneauth1 import session as ks_session

    return ks_session.Session(
        auth=auth_plugin(creds, unscoped=unscoped), verify=creds.verify, timeout=timeout
    )


def storage_url_and_token(sess, creds: Credentials) -> tuple[str, str]:
    """Authenticate (or reuse a valid token) and pick the object-store endpoint.

    Raises BackendError with the cause and the fix; the token is registered for redaction.
    """
    access = _access(sess, creds)
    return _endpoint(access, creds), access.auth_token


def _access(sess, creds: Credentials):
    """The session's AccessInfo (a token, new when the old one is about to expire)."""
    from keystoneauth1 import exceptions as ks_exceptions

    try:
        access = sess.auth.get_access(sess)
    except ks_exceptions.ClientException as error:  # the base of all keystoneauth1 failures
        raise explain(error, creds) from None
    redact.register(access.auth_token)
    return access


def _endpoint(access, creds: Credentials) -> str:
    from keystoneauth1 import exceptions as ks_exceptions

    try:
        url = access.service_catalog.url_for(
            service_type=SERVICE_TYPE, interface=creds.interface, region_name=creds.region_name
        )
    except ks_exceptions.EndpointNotFound:
        url = None
    if url:
        return url
    listed = [
        f"{e.get('region_id') or e.get('region') or 'no region'}/{e.get('interface')}"
        for e in access.service_catalog.get_endpoints(service_type=SERVICE_TYPE).get(
            SERVICE_TYPE, []
        )
    ]
    wanted = f"interface {creds.interface}" + (
        f" in region {creds.region_name}" if creds.region_name else ""
    )
    project = access.project_name or access.project_id
    if not listed:
        raise BackendError(
            f"the Keystone catalog of project {project} has no object-store (Swift) endpoint: "
            "the cloud offers no Swift to this project; ask its admin, or use another project."
        )
    raise BackendError(
        f"the Keystone catalog has no object-store endpoint for {wanted} (it has: "
        f"{', '.join(sorted(listed))}): set swift.region_name and swift.interface to one of "
        "those."
    )


# ---- what went wrong, in one sentence ---------------------------------------------------
def explain(error: BaseException, creds: Credentials) -> CfbackupError:
    """One BackendError naming the cause and the fix for a keystoneauth1 failure."""
    from keystoneauth1 import exceptions as ks

    if isinstance(error, CfbackupError):
        return error
    status = getattr(error, "http_status", None)
    if isinstance(error, ks.SSLError):
        return BackendError(
            f"TLS verification of Keystone at {creds.auth_url} failed: {_short(error)}: give the "
            "CA bundle (clouds.yaml cacert) or fix the certificate."
        )
    if isinstance(error, ks.ConnectionError):
        return KeystoneUnreachable(
            f"cannot reach Keystone at {creds.auth_url} ({_short(error)}): check the auth_url "
            "and that Keystone is up and reachable from here."
        )
    if creds.method == APPLICATION_CREDENTIAL:
        if status == 404 and "application credential" in str(error).lower():
            return BackendError(
                f"Keystone does not know {creds.who} (404): it was deleted: create a new one "
                "(openstack application credential create NAME) and put its id and secret in "
                f"{creds.where}."
            )
        if status == 401:
            return BackendError(
                f"Keystone rejected {creds.who} (401): it has expired, its secret is wrong, or "
                "its user lost the role it was created with: create a new one (openstack "
                f"application credential create NAME) and put its id and secret in {creds.where}."
            )
    elif status == 401:
        return _explain_password_401(creds)
    if status == 404:
        return BackendError(
            f"Keystone at {creds.auth_url} answered 404: the auth_url must be the identity v3 "
            "endpoint, e.g. https://keystone.example:5000/v3."
        )
    if status == 400 and "domain in project" in str(error):
        return BackendError(
            f"Keystone needs the domain of {creds.project} (400): set project_domain_name or "
            f"project_domain_id in {creds.where}."
        )
    if status == 400:
        return BackendError(
            f"Keystone refused the request (400): {_short(error)}: check the domain and project "
            f"settings in {creds.where}."
        )
    failed = BackendError(f"Keystone authentication failed for {creds.who}: {_short(error)}.")
    if isinstance(status, int):  # a 5xx may pass: swift_connect.log_in tries it again
        failed.http_status = status  # type: ignore[attr-defined]
    return failed


def _explain_password_401(creds: Credentials) -> CfbackupError:
    """Keystone says 401 to every mistake; an unscoped token tells the user's half (name,
    domain, password) from the project's half (project, its domain, a role on it)."""
    from keystoneauth1 import exceptions as ks_exceptions

    unscoped = session(creds, unscoped=True, timeout=15)
    try:
        unscoped.auth.get_access(unscoped)
    except ks_exceptions.ClientException:
        return BackendError(
            f"Keystone rejected the password of {creds.who} (401): wrong password, or no such "
            f"user in that domain: check username, password and user_domain_name/_id in "
            f"{creds.where}."
        )
    return BackendError(
        f"Keystone accepted {creds.who} but not {creds.project} (401): the project does not "
        "exist in that domain, or the user has no role on it: check project_name/_id and "
        f"project_domain_name/_id in {creds.where}, or ask the cloud's admin for a role."
    )


def diagnose(creds: Credentials) -> CfbackupError | None:
    """Authenticate and pick the endpoint; the error explaining what fails, or None."""
    try:
        storage_url_and_token(session(creds, timeout=15), creds)
    except CfbackupError as error:
        return error
    return None


# ---- what `cfbackup check` shows --------------------------------------------------------
def identity(creds: Credentials, sess=None) -> dict[str, Any]:
    """Who we are once authenticated: user, project, method, storage URL, token expiry."""
    access = _access(sess or session(creds), creds)
    url = _endpoint(access, creds)
    expires = access.expires
    application_credential = (
        access.application_credential if access.application_credential_id else {}
    )
    return {
        "method": creds.method,
        "auth_url": creds.auth_url,
        "source": creds.where,
        "user": access.username,
        "user_id": access.user_id,
        "user_domain": access.user_domain_name,
        "project": access.project_name,
        "project_id": access.project_id,
        "project_domain": access.project_domain_name,
        "application_credential": application_credential.get("id"),
        "application_credential_name": application_credential.get("name"),
        "roles": sorted(access.role_names or []),
        "storage_url": url,
        "region": creds.region_name,
        "interface": creds.interface,
        "expires_at": expires.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if expires
        else None,
        "expires_in": int((expires - datetime.datetime.now(datetime.UTC)).total_seconds())
        if expires
        else None,
    }


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return redact.redact_output(text)[:200].rstrip(" .")  # inside our sentence: its full stop goes
