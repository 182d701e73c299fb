"""Keystone application credentials for duplicity's swift backend (a core patch).

duplicity 3.2.1's swift backend knows user names and passwords only; the one other way in, a
pre-minted token (``SWIFT_PREAUTHTOKEN``), cannot be renewed, and the run dies when the token
expires (DESIGN.md section 5). This patch replaces swiftclient's ``Connection`` (both the
backend's and its SwiftService's) with one that authenticates through a keystoneauth1 session
built from the application credential (cfbackup.swift.keystone_connection). When Swift answers
401 swiftclient invalidates that session and asks it again: Keystone issues a new token and the
request is retried, however long the run.

The credential comes from the environment only (never argv): ``OS_AUTH_URL``,
``OS_APPLICATION_CREDENTIAL_ID``, ``OS_APPLICATION_CREDENTIAL_SECRET``, ``OS_REGION_NAME``,
``OS_INTERFACE`` (see environment.keystone_environment); ``OS_AUTH_TYPE`` says the run needs
this patch. v1 and password profiles run duplicity's own authentication.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def applies(env: Mapping[str, str]) -> bool:
    from cfbackup.duplicity.environment import APPLICATION_CREDENTIAL_AUTH_TYPE

    return env.get("OS_AUTH_TYPE") == APPLICATION_CREDENTIAL_AUTH_TYPE


def apply(env: Mapping[str, str]) -> None:
    install(env)
    # duplicity's backend refuses to start without these, then never uses them (see install)
    os.environ.setdefault("SWIFT_USERNAME", env["OS_APPLICATION_CREDENTIAL_ID"])
    os.environ.setdefault("SWIFT_PASSWORD", "unused-application-credential")
    os.environ.pop("SWIFT_PREAUTHTOKEN", None)
    # The secret stays in duplicity's own environment: the workers of its upload pool
    # (--concurrency) and a restarted duplicity run the launcher again and authenticate with
    # it. The gpg-environment patch keeps it from gpg and every other program duplicity starts.


def install(env: Mapping[str, str]) -> None:
    """Make every swiftclient Connection created from now on authenticate with the
    application credential in ``env``, sharing one keystoneauth1 session (one token)."""
    import swiftclient
    import swiftclient.client
    import swiftclient.service

    from cfbackup import keystone, redact, swift
    from cfbackup.duplicity.environment import credentials_from_environment

    creds = credentials_from_environment(env)
    if creds is None or creds.method != keystone.APPLICATION_CREDENTIAL:
        raise SystemExit("cfbackup launcher: no application credential in the environment")
    if not creds.application_credential_id or not creds.application_credential_secret:
        raise SystemExit("cfbackup launcher: OS_APPLICATION_CREDENTIAL_ID/_SECRET are not set")
    redact.register(creds.application_credential_secret)
    shared = keystone.session(creds)
    base = swift.keystone_connection_class()

    class LauncherConnection(base):
        """What duplicity's backend and SwiftService get for ``Connection(...)``: their
        user/key/auth settings are ignored; a Keystone failure that retrying cannot fix
        stops duplicity at once (FatalBackendException) instead of five retries."""

        def __init__(self, *args, **kwargs):
            for unused in ("session", "auth_version", "tenant_name", "preauthurl"):
                kwargs.pop(unused, None)
            os_options = {
                key: value
                for key, value in (kwargs.pop("os_options", None) or {}).items()
                if key == "object_storage_url" and value
            }
            super().__init__(
                *args,
                credentials=creds,
                keystone_session=shared,
                os_options=os_options,
                **kwargs,
            )

        def get_auth(self):
            from cfbackup.errors import CfbackupError

            try:
                return super().get_auth()
            except CfbackupError as error:
                from duplicity.errors import BackendException, FatalBackendException

                # Keystone unreachable may pass: duplicity's own retries apply; a refusal will not
                transient = isinstance(error, keystone.KeystoneUnreachable)
                kind = BackendException if transient else FatalBackendException
                raise kind(f"[cfbackup] {error.message}") from None

    swiftclient.Connection = LauncherConnection
    swiftclient.client.Connection = LauncherConnection
    swiftclient.service.Connection = LauncherConnection
