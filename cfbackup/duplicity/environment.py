"""Secrets and credentials for duplicity, in its environment (never in argv).

Variable names are the ones duplicity 3.2.1's swift backend reads (DESIGN.md section 5).
"""

from __future__ import annotations

from cfbackup.config.model import Profile
from cfbackup.config.secrets import resolve_secret
from cfbackup.duplicity.target import swift_target
from cfbackup.errors import ConfigError

# profile [swift] key -> duplicity variable, for Keystone v3
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
        env["GNUPGHOME"] = enc["gpg_home"]
    if enc["mode"] == "none":
        return env
    passphrase = resolve_secret(enc, "passphrase", where)
    if enc["mode"] == "symmetric" and not passphrase:
        raise ConfigError(
            f"{where}: mode symmetric needs a passphrase: set passphrase_file, passphrase_env or "
            "passphrase_command (or an inline passphrase in a mode 0600 file)."
        )
    if passphrase:
        env["PASSPHRASE"] = passphrase
        if enc.get("sign_key"):
            env["SIGN_PASSPHRASE"] = passphrase
    return env


def swift_environment(profile: Profile) -> dict[str, str]:
    swift = profile["swift"]
    where = f"profiles.{profile.name}.swift"
    if swift.get("cloud") or swift.get("application_credential_id"):
        raise ConfigError(
            f"{where}: clouds.yaml and application credentials are not supported by this version "
            "of cfbackup yet: use auth_version 3 with username and password, or auth_version 1."
        )
    for key in ("auth_url", "username"):
        if not swift.get(key):
            raise ConfigError(f"{where}.{key}: required for a swift:// target.")
    password = resolve_secret(swift, "password", where)
    if not password:
        raise ConfigError(
            f"{where}.password: required for a swift:// target (password_env, password_file, "
            "password_command, or inline in a mode 0600 file)."
        )
    env = {
        "SWIFT_AUTHURL": swift["auth_url"],
        "SWIFT_USERNAME": swift["username"],
        "SWIFT_PASSWORD": password,
        "SWIFT_AUTHVERSION": swift["auth_version"],
    }
    if swift["auth_version"] == "1":
        # duplicity's second client (a SwiftService for size queries) ignores the SWIFT_* v1
        # credentials and retries 5 x 30 s per volume unless swiftclient's own ST_* are set.
        env.update(ST_AUTH=swift["auth_url"], ST_USER=swift["username"], ST_KEY=password)
    else:
        for key, variable in V3_VARIABLES.items():
            if swift.get(key):
                env[variable] = swift[key]
        env["SWIFT_ENDPOINT_TYPE"] = f"{swift['interface']}URL"
    return env
