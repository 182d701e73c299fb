"""Find, read and validate a config file of either kind (native TOML or legacy bash).

Both kinds end as the same validated :class:`Config`; only the reading differs.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

from cfbackup import redact
from cfbackup.config import file_target, legacy, legacy_vars
from cfbackup.config.model import Config, Profile
from cfbackup.config.schema import PROFILE, TOP, Option, secret_keys, with_plugin_sections
from cfbackup.config.secrets import loose_secret_file, register_url_parts
from cfbackup.config.validate import (
    deep_merge,
    pattern_under,
    shared_targets,
    unknown_key,
    unsupported_target,
    validate_table,
)
from cfbackup.errors import ConfigError

SEARCH_PATHS = (
    "~/.config/cfbackup/config.toml",
    "/etc/cfbackup/config.toml",
    "~/.dt-cf-backup.conf",
)


def find_config(explicit: str | os.PathLike | None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("CFBACKUP_CONFIG")
    if env:
        return Path(env).expanduser()
    for candidate in SEARCH_PATHS:
        path = Path(candidate).expanduser()
        if path.exists():
            return path
    raise ConfigError(
        "no config file found (looked for " + ", ".join(SEARCH_PATHS) + "): create one "
        "(see conf/example.toml) or pass -c FILE."
    )


def read_raw(path: Path) -> tuple[dict[str, Any], str, list[str]]:
    """The config as a native-shaped dict, its kind, and legacy warnings."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file: check the path given with -c.") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file.") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied: run as its owner or fix its mode.") from None
    if len(data) > 1_000_000:
        raise ConfigError(f"{path}: {len(data)} bytes is too large for a config file.")
    try:
        text, not_utf8 = data.decode("utf-8"), None
    except UnicodeDecodeError as error:
        text, not_utf8 = data.decode("utf-8", "replace"), data[: error.start].count(b"\n") + 1
    if legacy.looks_legacy(text):  # bash reads it, and takes any byte (a Latin-1 comment)
        raw, warnings = legacy.load_legacy(path)
        return raw, "legacy", warnings
    if not_utf8 is not None:
        raise ConfigError(f"{path}: line {not_utf8} is not UTF-8 text: save the file as UTF-8.")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}.") from None
    return raw, "native", []


def load_config(
    explicit: str | os.PathLike | None = None,
    plugin_sections: dict[str, tuple[Option, ...]] | None = None,
) -> Config:
    path = find_config(explicit)
    raw, kind, warnings = read_raw(path)
    return build_config(
        raw, path=path, kind=kind, plugin_sections=plugin_sections or {}, warnings=warnings
    )


def build_config(
    raw: dict[str, Any],
    *,
    path: Path | None,
    kind: str = "native",
    plugin_sections: dict[str, tuple[Option, ...]] | None = None,
    warnings: list[str] | None = None,
) -> Config:
    where = str(path) if path else "config"
    if not raw:
        raise ConfigError(
            f"{where} is empty: write a [profiles.NAME] table with source and target in it "
            "(conf/example.toml shows one), or for dt-cf-backup set ROOT and DEST."
        )
    problems: list[str] = []
    profile_schema = with_plugin_sections(plugin_sections or {})
    top_names = [option.name for option in TOP]
    # a [default] or [profile.web] table: said as a typo of defaults or profiles
    problems += [unknown_key("", key, top_names) for key in raw if key not in top_names]
    top_schema = tuple(o for o in TOP if o.name not in ("profiles", "defaults"))
    top_raw = {k: v for k, v in raw.items() if k in top_names and k not in ("profiles", "defaults")}
    top = validate_table(top_raw, top_schema, "", problems)
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append("defaults: expected a table")
        defaults = {}
    # [defaults] on its own, so that a mistake in it is named there once, not in every profile
    in_defaults: list[str] = []
    validate_table(defaults, _optional(profile_schema), "defaults", in_defaults)
    at_defaults = len(problems)  # where they go once it is known which a profile inherits
    inherited: set[str] = set()
    raw_profiles = raw.get("profiles")
    if not isinstance(raw_profiles, dict) or not raw_profiles:
        if not any("did you mean profiles?" in problem for problem in problems):
            problems.append("profiles: at least one [profiles.NAME] table is required")
        raw_profiles = {}
    warnings = list(warnings or [])
    if kind == "legacy":  # a plugin switched off (CFBACKUP_LOAD_PLUGINS) must not stop the run
        known = {option.name for option in profile_schema}
        raw_profiles = {
            name: {k: v for k, v in body.items() if k in known}
            for name, body in raw_profiles.items()
        }
        dropped = {k for body in raw.get("profiles", {}).values() for k in body if k not in known}
        warnings += [
            f"the {k} settings are not carried over: the {k} plugin is not loaded"
            for k in sorted(dropped)
        ]
    profiles: dict[str, Profile] = {}
    for name, body in raw_profiles.items():
        if not _valid_profile_name(name):
            problems.append(
                f"profiles.{name[:64]!r}: a profile name uses letters, digits, . _ - only"
            )
            continue
        if not isinstance(body, dict):
            problems.append(f"profiles.{name}: expected a table")
            continue
        own: list[str] = []
        data = validate_table(
            _over_defaults(defaults, body), profile_schema, f"profiles.{name}", own
        )
        said = [p for p in own if _said_in_defaults(p, f"profiles.{name}", body, in_defaults)]
        inherited.update("defaults." + p[len(f"profiles.{name}.") :] for p in said)
        problems += [p for p in own if p not in said]
        _check_profile(
            data, f"profiles.{name}", problems, warnings, legacy=kind == "legacy", path=path
        )
        _register_inline_urls(data, profile_schema)
        profiles[name] = Profile(
            name=name,
            data=data,
            source_file=path,
            legacy=kind == "legacy",
            secret_file_warnings=_loose_secret_files(data, profile_schema),
        )
    problems += shared_targets({name: profile.data for name, profile in profiles.items()})
    # a [defaults] mistake every profile overrides was never read (the config loaded before
    # [defaults] was checked on its own): a warning, unless the config is refused anyway
    unused = [p for p in in_defaults if p not in inherited]
    refused = bool(problems) or len(unused) < len(in_defaults)
    problems[at_defaults:at_defaults] = in_defaults if refused else []
    if not refused:
        warnings += [
            f"{p} (every profile sets its own, so it is not used: fix it or remove it from "
            "[defaults] before a profile inherits it)"
            for p in unused
        ]
    if problems and kind == "legacy":
        problems = [legacy_vars.with_origin(p) for p in problems]
    if problems:
        raise ConfigError(
            f"{where}: {len(problems)} problem(s) in the config: " + "; ".join(problems) + "."
        )
    _register_secret_variables(raw)
    loose = None
    if path is not None and _has_inline_secret(raw, profile_schema):
        loose = _require_private(path, refuse=kind != "legacy")
    state_dir = Path(top["state_dir"]).expanduser()
    for profile in profiles.values():  # on stderr once each (cli.context), whatever profile runs
        warnings += [w for w in profile.secret_file_warnings if w not in warnings]
    return Config(
        path=path,
        kind=kind,
        profiles=profiles,
        state_dir=state_dir,
        warnings=[*warnings, *([loose] if loose else [])],
        log_dir=_log_dir(top, state_dir),
        plugin_sections=dict(plugin_sections or {}),
        permission_warning=loose,
        environment={k: v for k, v in (top.get("environment") or {}).items() if v is not None},
    )


def _log_dir(top: dict[str, Any], state_dir: Path) -> Path:
    return Path(top["log_dir"]).expanduser() if top.get("log_dir") else state_dir / "logs"


def _optional(options: tuple[Option, ...]) -> tuple[Option, ...]:
    """``options`` with nothing required: [defaults] gives what it likes, profiles the rest."""
    return tuple(
        dataclasses.replace(
            option,
            default=None if option.required else option.default,
            children=_optional(option.children),
        )
        for option in options
    )


def _said_in_defaults(problem: str, where: str, body: dict, in_defaults: list[str]) -> bool:
    """Whether a profile's ``problem`` is one of [defaults] (``in_defaults``) that the profile
    only inherits: the same problem at the same key, which the profile's own table does not
    set."""
    if not problem.startswith(where + "."):
        return False
    rest = problem[len(where) + 1 :]
    if f"defaults.{rest}" not in in_defaults:
        return False
    node: Any = body
    for key in rest.split(": ", 1)[0].split("."):
        if not isinstance(node, dict) or key not in node:
            return True
        node = node[key]
    return False


def _valid_profile_name(name: str) -> bool:
    return (
        bool(name)
        and len(name) <= 64
        and all(c.isalnum() or c in "._-" for c in name)
        and name.isascii()
        and not name.startswith(".")
    )


def _check_profile(
    data: dict[str, Any],
    where: str,
    problems: list[str],
    warnings: list[str],
    *,
    legacy: bool = False,
    path: Path | None = None,
) -> None:
    target = data.get("target") or ""
    if target and "://" not in target:
        problems.append(f"{where}.target: {target!r} is not a URL: {_url_for(target, legacy)}")
    elif target.lower().startswith("file://") and file_target.relative_folder(target) is not None:
        # duplicity reads file://backups/web as ./backups/web: a backup under whatever folder
        # cfbackup runs in, and "no backup found" from any other. A legacy file ran so from
        # cron for years: it goes on (a warning on every run), as dt-cf-backup.sh did
        if legacy and file_target.relative_folder(target):
            warnings.append(file_target.legacy_warning(path, target))
        else:
            problems.append(f"{where}.target: {file_target.relative_target(target)}")
    elif target.startswith("cf+http"):
        problems.append(
            f"{where}.target: cf+http:// is the legacy Cloud Files scheme: use swift://CONTAINER "
            'with [swift] auth_version = "1" (cfbackup config migrate does this)'
        )
    elif unsupported_target(target):
        problems.append(f"{where}.target: {unsupported_target(target)}")
    source = os.path.normpath(os.path.expanduser(data.get("source") or "/"))
    for key in ("include", "exclude"):
        for pattern in data.get(key) or []:
            if not pattern_under(pattern, source):
                problems.append(
                    f"{where}.{key}: {pattern!r} is not under source {source}: a pattern is an "
                    "absolute path or glob under source, or starts with **"
                )
    swift = data.get("swift") or {}
    if swift.get("auth_version") == "1" and swift.get("interface") == "admin":
        problems.append(
            f"{where}.swift.interface: with auth_version 1 it is public, or internal for "
            "Rackspace ServiceNet"
        )
    retention = data.get("retention", {})
    rules = ("keep_full", "keep_incrementals_of_full", "remove_older_than")
    if retention.get("keep_all") and any(retention.get(rule) for rule in rules):
        problems.append(
            f"{where}.retention.keep_all: keeps every backup, so it cannot be set with "
            f"{', '.join(r for r in rules if retention.get(r))}: remove one or the other"
        )
    enc = data.get("encryption", {})
    if enc.get("mode") == "pubkey" and not enc.get("encrypt_keys"):
        problems.append(f"{where}.encryption.encrypt_keys: mode pubkey needs at least one key")
    if enc.get("sign_key"):
        # duplicity's restore compares sign_key, as written, with the end of each volume's
        # signature key ID (upper-case hex): "0x1234ABCD" or lower case failed every restore
        key_id = re.sub(r"\s", "", enc["sign_key"]).upper().removeprefix("0X")
        if re.fullmatch(r"[0-9A-F]{8}|[0-9A-F]{16}|[0-9A-F]{40}", key_id):
            enc["sign_key"] = key_id
        else:
            problems.append(
                f"{where}.encryption.sign_key: {enc['sign_key']!r} is not a key ID or "
                "fingerprint (8, 16 or 40 hex digits: gpg --list-secret-keys --keyid-format "
                "long shows them), which duplicity's restore compares with each signature"
            )


def _url_for(target: str, legacy: bool = False) -> str:
    """How to write a target given without ``://`` as the URL it most likely means."""
    if target.startswith("/"):
        return f"write file://{target} for a local folder, or swift://CONTAINER for Swift"
    if target.lower().startswith("file:"):
        return f"write file:///{target[5:].lstrip('/')} (file:// and an absolute path)"
    scheme, _, rest = target.partition(":")  # swift:backups: the scheme, and the container
    rest = rest.lstrip("/")
    if _SCHEME.fullmatch(scheme) and rest:
        scheme = scheme.lower()
        if scheme == "swift" or (legacy and scheme.startswith("cf+http")):
            return f"write {scheme}://{rest}"
        if scheme.startswith("cf+http"):
            return f'write swift://{rest} with [swift] auth_version = "1" (cf+http is legacy)'
    if "/" not in target and target.strip():
        return f"write swift://{target} for a Swift container, or file:///PATH for a local folder"
    return "write swift://CONTAINER for Swift, or file:///ABSOLUTE/PATH for a local folder"


_SCHEME = re.compile(r"swift|cf\+https?", re.IGNORECASE)


def _register_secret_variables(node: Any) -> None:
    """Every variable a ``*_env`` setting names, wherever it is (a plugin's section too, read
    only when its hook fires): no child gets it (``execute.child_environment``)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("_env") and isinstance(value, str):
                redact.register_variable(value)
            else:
                _register_secret_variables(value)


def _has_inline_secret(raw: dict[str, Any], schema: tuple[Option, ...]) -> bool:
    secrets = {o.name for o in _walk(schema) if o.kind == "secret"}

    def visit(node: Any) -> bool:
        if isinstance(node, dict):
            return any((k in secrets and _is_secret_value(v)) or visit(v) for k, v in node.items())
        return False

    return visit(raw) or any(_proxy_password(v) for v in (raw.get("environment") or {}).values())


def _is_secret_value(value: Any) -> bool:
    """An inline secret's value; a URL (a notify URL) only with a login, a path or a query:
    ``https://chat.example`` alone reveals nothing, ``.../services/T0/B0/XYZ`` is the key."""
    import urllib.parse

    if not value:
        return False
    if not isinstance(value, str) or "://" not in value:
        return True
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return True
    return bool(parts.username or parts.password or parts.path.strip("/") or parts.query)


def _register_inline_urls(data: dict[str, Any], schema: tuple[Option, ...]) -> None:
    """Mask the secret parts of inline URL secrets (a notify URL) from the moment the config
    is read, before any message could quote one (other secrets are registered when resolved)."""
    for option in schema:
        value = data.get(option.name)
        if option.kind == "table" and isinstance(value, dict):
            _register_inline_urls(value, option.children)
        elif option.kind == "secret" and isinstance(value, str):
            register_url_parts(value)


def _loose_secret_files(data: dict[str, Any], schema: tuple[Option, ...]) -> list[str]:
    """A warning for each ``*_file`` secret of profile ``data`` that others can read: warned on
    every run and a failing ``check`` row, not refused (ssh refuses such a key; a cron backup
    that ran yesterday must not stop on the day cfbackup is upgraded)."""
    found: list[str] = []
    for option in schema:
        if option.kind == "table" and isinstance(data.get(option.name), dict):
            found += _loose_secret_files(data[option.name], option.children)
        elif option.kind == "secret" and isinstance(data.get(option.name + "_file"), str):
            warning = loose_secret_file(data[option.name + "_file"])
            if warning and warning not in found:
                found.append(warning)
    return found


def _proxy_password(value: Any) -> bool:
    """An [environment] proxy URL with a password in it (``http://user:pass@proxy:3128``)."""
    import urllib.parse

    return isinstance(value, str) and "@" in value and bool(urllib.parse.urlsplit(value).password)


def _walk(options: tuple[Option, ...]):
    for option in options:
        yield option
        yield from _walk(option.children)


def _require_private(path: Path, *, refuse: bool) -> str | None:
    """A native file holding a secret must be private, as ssh wants its keys. A legacy file
    worked with the old script whatever its mode: the problem is returned, to be repeated on
    every run (stderr, run history, notification, ``check``), and the run goes on."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return None
    if refuse:
        raise ConfigError(
            f"{path}: holds a secret inline but is readable by others (mode {mode:04o}): "
            f"run chmod 600 {path}, or move the secret to an environment variable, file or command."
        )
    return (
        f"{path} holds secrets (passphrase, API key) and is mode {mode:04o}, readable by other "
        f"users: run chmod 600 {path}"
    )


__all__ = ["load_config", "build_config", "find_config", "read_raw", "secret_keys", "PROFILE"]


# keys a table holds one of (a schedule: cron or interval): a profile's own replaces the other
# one of its defaults, as [defaults.schedule] cron and [profiles.NAME.schedule] interval mean
ALTERNATIVES = (("cron", "interval"),)


def _over_defaults(defaults: dict, body: dict) -> dict:
    """The profile ``body`` on top of ``[defaults]`` (tables merge key by key), except that a
    key the profile's table sets drops the defaults' alternatives to it (ALTERNATIVES)."""
    merged = deep_merge(defaults, body)
    for table, value in body.items():
        if not isinstance(value, dict) or not isinstance(merged.get(table), dict):
            continue
        for group in ALTERNATIVES:
            if any(key in value for key in group):
                for key in group:
                    if key not in value:
                        merged[table].pop(key, None)
    return merged
