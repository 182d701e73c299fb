"""Secrets and credentials for duplicity, in its environment (never in argv).

Variable names are the ones duplicity 3.2.1's swift backend reads (DESIGN.md section 5). A
Keystone password goes to duplicity itself (its swiftclient re-authenticates on a 401). An
application credential, which duplicity cannot take, goes in the ``OS_*`` variables that the
application-credential patch (``patches/application_credential.py``) reads inside duplicity.
:func:`credentials_from_environment` reads either set back (that patch, and the diagnosis of a
failed run in ``run.py``). A backup's duplicity also gets the token cfbackup's checks obtained
(:func:`handover_environment`, ``patches/handed_token.py``), with the credentials kept, and
the manifest the passphrase check decrypted (:func:`manifest_slot`,
``patches/handed_manifest.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cfbackup import keystone, servicenet
from cfbackup.config.legacy_vars import swift_secret_left_empty, with_origin
from cfbackup.config.model import Profile
from cfbackup.config.secrets import inherited_credentials, resolve_secret
from cfbackup.duplicity.patches import swift_retries
from cfbackup.duplicity.target import swift_target
from cfbackup.errors import ConfigError

APPLICATION_CREDENTIAL_AUTH_TYPE = "v3applicationcredential"  # OS_AUTH_TYPE: the patch applies

# Keystone credential field -> duplicity variable (password authentication)
V3_VARIABLES = {
    "user_domain_name": "SWIFT_USER_DOMAIN_NAME",
    "user_domain_id": "SWIFT_USER_DOMAIN_ID",
    "project_name": "SWIFT_PROJECT_NAME",
    "project_id": "SWIFT_PROJECT_ID",
    "project_domain_name": "SWIFT_PROJECT_DOMAIN_NAME",
    "project_domain_id": "SWIFT_PROJECT_DOMAIN_ID",
    "region_name": "SWIFT_REGIONNAME",
}


def duplicity_environment(profile: Profile) -> dict[str, str]:
    """Everything duplicity needs in its environment for this profile."""
    env: dict[str, str] = {}
    env.update(encryption_environment(profile))
    if swift_target(profile.target) is not None:
        env.update(swift_environment(profile))
    return env


def encryption_environment(profile: Profile) -> dict[str, str]:
    enc = profile["encryption"]
    where = f"profiles.{profile.name}.encryption"
    env: dict[str, str] = {}
    if enc.get("gpg_home"):
        env["GNUPGHOME"] = str(Path(enc["gpg_home"]).expanduser())
    if enc["mode"] == "none":
        return env
    passphrase = resolve_secret(enc, "passphrase", where)
    if enc["mode"] == "symmetric" and not passphrase:
        if profile.legacy:  # the file's PASSPHRASE, and why it is empty (a failed $(...))
            problem = f"{where}.passphrase: mode symmetric needs one: set PASSPHRASE in the file"
            raise ConfigError(with_origin(problem, profile.source_file))
        raise ConfigError(
            f"{where}: mode symmetric needs a passphrase: set passphrase_file, passphrase_env or "
            "passphrase_command (or an inline passphrase in a mode 0600 file)."
        )
    # Public keys without a passphrase (an unprotected secret key, a legacy PASSPHRASE=""): an
    # empty one, as dt-cf-backup.sh exported. Without PASSPHRASE duplicity asks for it on the
    # terminal (a restore, a signed incremental) and dies with EOFError where there is none.
    passphrase = passphrase or ""
    env["PASSPHRASE"] = passphrase
    if enc.get("sign_key"):
        env["SIGN_PASSPHRASE"] = passphrase
    return env


def swift_environment(profile: Profile) -> dict[str, str]:
    """The profile's Swift credentials, and ``swift.retries`` for the swift-retries patch."""
    env = _swift_credentials(profile)
    retries = profile["swift"].get("retries")
    if retries is not None:
        env[swift_retries.ENVIRONMENT] = str(retries)
    return env


def _swift_credentials(profile: Profile) -> dict[str, str]:
    swift = profile["swift"]
    where = f"profiles.{profile.name}.swift"
    if keystone.uses_keystone(profile):
        return keystone_environment(keystone.credentials(profile))
    missing = [key for key in ("auth_url", "username") if not swift.get(key)]
    if missing:
        sources = ("password", "password_env", "password_file", "password_command")
        unset = [*missing, *(() if any(swift.get(k) for k in sources) else ("password",))]
        raise ConfigError(
            f"{where}.{missing[0]}: required for a swift:// target{inherited_credentials(unset)}."
        )
    password = resolve_secret(swift, "password", where)
    if not password and profile.legacy and profile.source_file:
        # the file's SWIFT_PASSWORD (or CLOUDFILES_APIKEY), and why it is empty
        raise ConfigError(swift_secret_left_empty(profile.source_file))
    if not password:
        hint = inherited_credentials(["password"])
        raise ConfigError(
            f"{where}.password: required for a swift:// target (password_env, password_file, "
            f"password_command, or inline in a mode 0600 file){hint}."
        )
    env = {
        "SWIFT_AUTHURL": swift["auth_url"],
        "SWIFT_USERNAME": swift["username"],
        "SWIFT_PASSWORD": password,
        "SWIFT_AUTHVERSION": swift["auth_version"],
    }
    # duplicity's second client (a SwiftService for size queries) ignores the SWIFT_* v1
    # credentials and retries 5 x 30 s per volume unless swiftclient's own ST_* are set.
    env.update(ST_AUTH=swift["auth_url"], ST_USER=swift["username"], ST_KEY=password)
    if swift["interface"] == "internal":  # Rackspace ServiceNet: duplicity's start-up file
        env[servicenet.ENVIRONMENT] = "1"
    return env


def keystone_environment(creds: keystone.Credentials) -> dict[str, str]:
    """duplicity's variables for a Keystone password; the application-credential patch's for an
    application credential (plus SWIFT_AUTHURL/SWIFT_AUTHVERSION, which duplicity's backend
    requires)."""
    env = {"SWIFT_AUTHURL": creds.auth_url, "SWIFT_AUTHVERSION": "3"}
    if creds.method == keystone.APPLICATION_CREDENTIAL:
        env.update(
            OS_AUTH_TYPE=APPLICATION_CREDENTIAL_AUTH_TYPE,
            OS_AUTH_URL=creds.auth_url,
            OS_APPLICATION_CREDENTIAL_ID=creds.application_credential_id,
            OS_APPLICATION_CREDENTIAL_SECRET=creds.application_credential_secret,
            OS_INTERFACE=creds.interface,
        )
        if creds.region_name:
            env["OS_REGION_NAME"] = creds.region_name
        if creds.verify is False:
            env["OS_INSECURE"] = "true"
    else:
        if creds.verify is False:
            raise ConfigError(
                f"{creds.where}: duplicity's Swift backend cannot skip TLS verification with a "
                "password: give the CA bundle (cacert) instead of verify: false."
            )
        env.update(
            SWIFT_USERNAME=creds.username or creds.user_id,
            SWIFT_PASSWORD=creds.password,
            SWIFT_ENDPOINT_TYPE=f"{creds.interface}URL",
        )
        if creds.user_id:
            env["SWIFT_USERID"] = creds.user_id
        for key, variable in V3_VARIABLES.items():
            if getattr(creds, key):
                env[variable] = getattr(creds, key)
    if isinstance(creds.verify, str):
        env["REQUESTS_CA_BUNDLE"] = env["OS_CACERT"] = creds.verify
    return env


def credentials_from_environment(env: Mapping[str, str]) -> keystone.Credentials | None:
    """The Keystone credentials a duplicity environment carries; None for v1."""
    if env.get("SWIFT_AUTHVERSION") != "3" or not env.get("SWIFT_AUTHURL"):
        return None
    verify: bool | str = env.get("OS_CACERT") or env.get("OS_INSECURE") != "true"
    if env.get("OS_AUTH_TYPE") == APPLICATION_CREDENTIAL_AUTH_TYPE:
        return keystone.Credentials(
            method=keystone.APPLICATION_CREDENTIAL,
            auth_url=env.get("OS_AUTH_URL") or env["SWIFT_AUTHURL"],
            where="the profile's [swift] settings",
            interface=env.get("OS_INTERFACE") or "public",
            region_name=env.get("OS_REGION_NAME") or None,
            application_credential_id=env.get("OS_APPLICATION_CREDENTIAL_ID"),
            application_credential_secret=env.get("OS_APPLICATION_CREDENTIAL_SECRET"),
            verify=verify,
        )
    fields = {key: env.get(variable) for key, variable in V3_VARIABLES.items()}
    return keystone.Credentials(
        method=keystone.PASSWORD,
        auth_url=env["SWIFT_AUTHURL"],
        where="the profile's [swift] settings",
        interface=(env.get("SWIFT_ENDPOINT_TYPE") or "publicURL").removesuffix("URL"),
        region_name=fields.pop("region_name"),
        username=None if env.get("SWIFT_USERID") else env.get("SWIFT_USERNAME"),
        user_id=env.get("SWIFT_USERID"),
        password=env.get("SWIFT_PASSWORD"),
        verify=verify,
        **fields,
    )


HANDOVER_MAX_AGE = 300.0  # seconds: older than that, duplicity authenticates itself
NO_HANDOVER = "CFBACKUP_NO_HANDED_TOKEN"  # =1: duplicity authenticates itself (one run)


def handover_environment(handover, *, now: float | None = None) -> dict[str, str]:
    """The variables that hand a backup's duplicity the storage URL and token cfbackup's checks
    obtained in this run (``swift.TargetView.handover``; ``patches/handed_token.py``), or none.

    Only a token of this run, and only while young: a pre_backup hook (a dump) may take longer
    than a token lives, and each refused token costs a request and swiftclient's back-off.
    duplicity keeps its credentials either way and re-authenticates when Swift rejects it."""
    import time

    from cfbackup import redact
    from cfbackup.duplicity.patches import handed_token

    if handover is None or os.environ.get(NO_HANDOVER):
        return {}
    age = (time.monotonic() if now is None else now) - handover.obtained
    if not 0 <= age <= HANDOVER_MAX_AGE:
        return {}
    redact.register(handover.token)
    return {handed_token.URL: handover.url, handed_token.TOKEN: handover.token}


def late_handover_environment(swift: bool) -> dict[str, str]:
    """For a backup's warm duplicity started before the checks authenticate: the variable that
    makes it wait for their token with its arguments (``patches/handed_token.py``), for a Swift
    target unless the hand-over is switched off."""
    from cfbackup.duplicity.patches import handed_token

    if not swift or os.environ.get(NO_HANDOVER):
        return {}
    return {handed_token.LATE: "1"}


NO_MANIFEST_HANDOVER = "CFBACKUP_NO_HANDED_MANIFEST"  # =1: duplicity downloads it itself


class ManifestSlot:
    """Where a backup's duplicity finds the manifest cfbackup's passphrase check decrypted
    (``patches/handed_manifest.py``): a file in a private folder of the run, named in
    duplicity's environment (:attr:`env`) before the check has run, so that a duplicity
    started warm during the check (``run.WarmDuplicity``) gets the same environment; the
    check's manifest goes in with :meth:`put` before duplicity reads it. No file, no hand-over:
    duplicity downloads the manifest itself."""

    def __init__(self, folder: str | None):
        self.path = os.path.join(folder, "manifest") if folder else None

    @property
    def env(self) -> dict[str, str]:
        from cfbackup.duplicity.patches import handed_manifest

        return {handed_manifest.FILE: self.path} if self.path else {}

    def put(self, opened) -> None:
        """Hand over ``opened`` (``passcheck.Manifest``): its name on the first line, then its
        plaintext, in a 0600 file."""
        if self.path is None:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(os.fsencode(opened.name) + b"\n" + opened.data)


def manifest_slot(folder) -> ManifestSlot:
    """A :class:`ManifestSlot` in ``folder``, a private folder the caller removes
    (``actions.common.scratch``, which also removes what a killed run left: the plaintext
    never outlives its run for long); an empty one with ``CFBACKUP_NO_HANDED_MANIFEST=1``."""
    return ManifestSlot(None if os.environ.get(NO_MANIFEST_HANDOVER) else str(folder))


class UploadRates:
    """Where a backup's duplicity writes down how fast its uploads went, and finds the volume
    sizes to choose between by that rate (``patches/rate_sized_volumes.py``): a private folder
    of the run, named in duplicity's environment (:attr:`env`) before the warm start, like
    :class:`ManifestSlot`; None for a target that is not Swift (nothing to learn)."""

    def __init__(self, folder: str | None):
        self.folder = folder

    @property
    def env(self) -> dict[str, str]:
        from cfbackup.duplicity.patches import rate_sized_volumes

        return {rate_sized_volumes.ENV: self.folder} if self.folder else {}

    def size_by_rate(self, small_mb: int, large_mb: int, fast: float) -> None:
        """Have duplicity size each next volume from the uploads before it: ``large_mb`` at
        ``fast`` bytes/s or more, else ``small_mb``. Before duplicity gets its arguments."""
        from cfbackup.duplicity.patches import rate_sized_volumes

        if self.folder:
            rate_sized_volumes.write_sizes(self.folder, small_mb, large_mb, fast)

    def measured(self, small_mb: int) -> float | None:
        """Bytes per second over this run's uploads that measure the rate (as the patch counts
        them, against volumes of ``small_mb``); None if none."""
        from cfbackup.duplicity.patches import rate_sized_volumes as patch

        if not self.folder:
            return None
        records = patch.measurable(patch.read_rates(self.folder), small_mb)
        return patch.rate(records, newest=None)
