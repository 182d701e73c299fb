"""Read ``~/.dt-cf-backup.conf`` as the old script did, and normalize it to a native profile.

The file is bash: bash itself sources it in a clean environment and prints the variables back
(``declare -p`` tells arrays from scalars; values travel NUL-separated), so quoting, arrays,
comments and ``$(...)`` mean exactly what they meant to dt-cf-backup.sh. The result has the
native shape and goes through the one validator; what cannot be carried over becomes a warning.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from cfbackup.errors import ConfigError

PROFILE_NAME = "dt-cf-backup"
RACKSPACE_AUTH_URL = "https://auth.api.rackspacecloud.com/v1.0"
# What dt-cf-backup.sh used when a variable was omitted.
OLD_DEFAULTS = {
    "STATIC_OPTIONS": "--full-if-older-than 14D",
    "CLEAN_UP_TYPE": "remove-all-but-n-full",
    "CLEAN_UP_VARIABLE": "2",
}
VARIABLES = (
    "ROOT",
    "DEST",
    "INCLIST",
    "EXCLIST",
    "GPG_KEY",
    "PASSPHRASE",
    "STATIC_OPTIONS",
    "CLEAN_UP_TYPE",
    "CLEAN_UP_VARIABLE",
    "LOGDIR",
    "LOG_FILE",
    "LOG_FILE_OWNER",
    "VERBOSITY",
    "CLOUDFILES_USERNAME",
    "CLOUDFILES_APIKEY",
    "CLOUDFILES_AUTHURL",
    # zertrin/duplicity-backup.sh names
    "SWIFT_USERNAME",
    "SWIFT_PASSWORD",
    "SWIFT_AUTHURL",
    "SWIFT_AUTHVERSION",
    "SWIFT_TENANTNAME",
    "SWIFT_REGIONNAME",
    "SWIFT_USER_DOMAIN_NAME",
    "SWIFT_PROJECT_NAME",
    "SWIFT_PROJECT_DOMAIN_NAME",
    "GPG_ENC_KEY",
    "GPG_SIGN_KEY",
    "EMAIL_TO",
    "EMAIL_FROM",
    "EMAIL_SUBJECT",
    "REMOVE_INCREMENTALS_OLDER_THAN",
    "REMOVE_OLDER_THAN",
    "ENCRYPTION",
)
VERBOSITY_LEVELS = {
    "0": "error",
    "1": "error",
    "2": "warning",
    "3": "warning",
    "4": "notice",
    "5": "info",
    "6": "info",
    "7": "info",
    "8": "debug",
    "9": "debug",
    "e": "error",
    "w": "warning",
    "n": "notice",
    "i": "info",
    "d": "debug",
}

# dt-cf-backup.sh sourced the file and went on whatever its last command returned (a final
# `[ -f x ] && VAR=...` is common); only a syntax error, found by `bash -n` first, is refused.
_READER = r"""
"$BASH" -n "$1" || exit 97
source "$1" >&2
shift
for __v in "$@"; do
  __d=$(declare -p "$__v" 2>/dev/null) || continue
  declare -n __r="$__v"
  case "$__d" in
    "declare -a"*|"declare -A"*)
      printf '%s\0a\0%s\0' "$__v" "${#__r[@]}"; printf '%s\0' "${__r[@]}" ;;
    *) printf '%s\0s\0%s\0' "$__v" "$__r" ;;
  esac
  unset -n __r
done
"""


def looks_legacy(text: str) -> bool:
    """A shell file of NAME=value lines (what dt-cf-backup.sh sourced), not TOML with tables."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            return False
        name = stripped.split("=", 1)[0].strip()
        if name.startswith("export "):
            name = name[len("export ") :].strip()
        return "=" in stripped and name.isupper() and " " not in name
    return False


def read_variables(path: Path) -> dict[str, str | list[str]]:
    """Source ``path`` with bash in a clean environment and return the known variables."""
    from cfbackup import execute

    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home())}
    result = execute.capture(
        ["bash", "--noprofile", "--norc", "-c", _READER, "cfbackup-legacy", str(path), *VARIABLES],
        env=env,
        timeout=30,
        input_text="",  # a `read` in the file gets end-of-file, never the user's terminal
    )
    if result.returncode != 0:
        detail = result.tail[-1] if result.tail else f"bash exited with {result.returncode}"
        detail = next((line for line in result.tail if "syntax error" in line), detail)
        raise ConfigError(f"{path}: bash could not read this file: {detail}")
    try:
        return _parse_nul_stream(result.stdout)
    except ValueError:
        raise ConfigError(
            f"{path}: bash ran this file but its variables could not be read back (does it "
            "redefine printf or declare, or print to standard output with exec?): fix the file."
        ) from None


def _parse_nul_stream(data: str) -> dict[str, str | list[str]]:
    fields = data.split("\0")
    values: dict[str, str | list[str]] = {}
    i = 0
    while i + 2 < len(fields):
        name, kind, third = fields[i], fields[i + 1], fields[i + 2]
        if kind == "a":
            if not third.isdigit():  # only a file redefining printf/declare gets here
                raise ValueError(f"bad array length {third[:20]!r} for {name[:40]!r}")
            count = int(third)
            values[name] = fields[i + 3 : i + 3 + count]
            i += 3 + count
        else:
            values[name] = third
            i += 3
    return values


def normalize(variables: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The native config dict for these variables, and what could not be carried over."""
    v = {**OLD_DEFAULTS, **{k: val for k, val in variables.items()}}
    warnings: list[str] = []
    profile: dict[str, Any] = {}
    if "ROOT" in v:
        profile["source"] = _scalar(v["ROOT"])
    if "DEST" in v:
        profile["target"] = _scalar(v["DEST"])
    profile["include"] = _list(v.get("INCLIST", []))
    profile["exclude"] = _list(v.get("EXCLIST", []))

    swift = _swift_section(v, profile, warnings)
    if swift:
        profile["swift"] = swift
    profile["encryption"] = _encryption_section(v, warnings)
    _static_options(_scalar(v.get("STATIC_OPTIONS", "")), profile, warnings)
    profile["retention"] = _retention_section(v, warnings)

    verbosity = _scalar(v.get("VERBOSITY", "")).lstrip("-").lstrip("v").lower()
    if verbosity:
        level = VERBOSITY_LEVELS.get(verbosity[:1] if verbosity.isalpha() else verbosity)
        if level:
            profile["verbosity"] = level
        else:
            warnings.append(f"VERBOSITY={v['VERBOSITY']!r} is not a duplicity verbosity; ignored")
    top: dict[str, Any] = {"profiles": {PROFILE_NAME: profile}}
    if _scalar(v.get("LOGDIR", "")):
        top["log_dir"] = _scalar(v["LOGDIR"])
    for name in ("LOG_FILE", "LOG_FILE_OWNER"):
        if v.get(name):
            warnings.append(
                f"{name} is not carried over: cfbackup writes one log file per run under log_dir"
            )
    for name in ("EMAIL_TO", "EMAIL_FROM", "EMAIL_SUBJECT", "REMOVE_INCREMENTALS_OLDER_THAN"):
        if v.get(name):
            warnings.append(f"{name} is not carried over: configure it in the native config")
    return top, warnings


def _scalar(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(value)
    return str(value)


def _list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [item for item in value if item != ""]
    return shlex.split(value) if value else []


def _swift_section(v: dict, profile: dict, warnings: list[str]) -> dict[str, Any]:
    target = profile.get("target", "")
    swift: dict[str, Any] = {}
    if target.startswith("cf+http://") or target.startswith("cf+https://"):
        container = target.split("://", 1)[1]
        profile["target"] = f"swift://{container}"
        swift = {
            "auth_version": "1",
            "auth_url": _scalar(v.get("CLOUDFILES_AUTHURL", "")) or RACKSPACE_AUTH_URL,
        }
        if v.get("CLOUDFILES_USERNAME"):
            swift["username"] = _scalar(v["CLOUDFILES_USERNAME"])
        if v.get("CLOUDFILES_APIKEY"):
            swift["password"] = _scalar(v["CLOUDFILES_APIKEY"])
    elif target.startswith("swift://"):
        mapping = {
            "SWIFT_AUTHURL": "auth_url",
            "SWIFT_USERNAME": "username",
            "SWIFT_PASSWORD": "password",
            "SWIFT_AUTHVERSION": "auth_version",
            "SWIFT_TENANTNAME": "project_name",
            "SWIFT_PROJECT_NAME": "project_name",
            "SWIFT_REGIONNAME": "region_name",
            "SWIFT_USER_DOMAIN_NAME": "user_domain_name",
            "SWIFT_PROJECT_DOMAIN_NAME": "project_domain_name",
        }
        for var, key in mapping.items():
            if v.get(var):
                swift[key] = _scalar(v[var])
        if swift.get("auth_version") == "2":
            warnings.append("SWIFT_AUTHVERSION=2 (Keystone v2) is gone from OpenStack; set v3 keys")
            swift["auth_version"] = "3"
    return swift


def _encryption_section(v: dict, warnings: list[str]) -> dict[str, Any]:
    enc: dict[str, Any] = {}
    keys = [k for k in (_scalar(v.get("GPG_KEY", "")), _scalar(v.get("GPG_ENC_KEY", ""))) if k]
    keys = [k for k in keys if k != "foobar_gpg_key"]  # the old sample's placeholder
    if _scalar(v.get("ENCRYPTION", "")).lower() == "no":
        enc["mode"] = "none"
    elif keys:
        enc["mode"] = "pubkey"
        enc["encrypt_keys"] = list(dict.fromkeys(keys))
    else:
        enc["mode"] = "symmetric"
    if v.get("GPG_SIGN_KEY"):
        enc["sign_key"] = _scalar(v["GPG_SIGN_KEY"])
    if v.get("PASSPHRASE") and enc["mode"] != "none":
        enc["passphrase"] = _scalar(v["PASSPHRASE"])
    return enc


def _static_options(static: str, profile: dict, warnings: list[str]) -> None:
    try:
        words = shlex.split(static)
    except ValueError:
        warnings.append(f"STATIC_OPTIONS could not be split ({static!r}); ignored")
        return
    extra: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        name, _, bound = word.partition("=")
        takes_value = name in ("--full-if-older-than", "--volsize")
        value = bound if bound else (words[i + 1] if takes_value and i + 1 < len(words) else "")
        if takes_value and not bound:
            i += 1
        if name == "--full-if-older-than":
            profile["full_if_older_than"] = value
        elif name == "--volsize":
            try:
                profile["volsize"] = int(value)
            except ValueError:
                warnings.append(f"--volsize {value!r} in STATIC_OPTIONS is not a number; ignored")
        elif name == "--s3-use-new-style":
            warnings.append("--s3-use-new-style in STATIC_OPTIONS is for S3 only; dropped")
        elif name == "--asynchronous-upload":
            warnings.append("--asynchronous-upload was removed in duplicity 3; dropped")
        elif (
            word.startswith("--")
            and i + 1 < len(words)
            and not words[i + 1].startswith("-")
            and not bound
        ):
            extra.append(f"{word}={words[i + 1]}")
            i += 1
        else:
            extra.append(word)
        i += 1
    if extra:
        profile["extra_options"] = extra


def _retention_section(v: dict, warnings: list[str]) -> dict[str, Any]:
    kind = _scalar(v.get("CLEAN_UP_TYPE", "")).strip()
    value = _scalar(v.get("CLEAN_UP_VARIABLE", "")).strip()
    retention: dict[str, Any] = {}
    if kind in ("", "none"):
        retention["after_backup"] = False
    elif kind == "remove-older-than":
        retention["remove_older_than"] = value
    elif kind in ("remove-all-but-n-full", "remove-all-inc-of-but-n-full"):
        try:
            count = int(value)
        except ValueError:
            warnings.append(f"CLEAN_UP_VARIABLE={value!r} is not a number; kept 2 full backups")
            count = 2
        key = "keep_full" if kind == "remove-all-but-n-full" else "keep_incrementals_of_full"
        retention[key] = count
    else:
        warnings.append(f"CLEAN_UP_TYPE={kind!r} is unknown; kept the default retention")
    return retention


def load_legacy(path: Path) -> tuple[dict[str, Any], list[str]]:
    variables = read_variables(path)
    if "ROOT" not in variables and "DEST" not in variables:
        raise ConfigError(f"{path}: neither ROOT nor DEST is set; is this a dt-cf-backup config?")
    return normalize(variables)
