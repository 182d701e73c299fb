"""Check a parsed config against the schema, reporting every problem at once.

Each problem names the key by its dotted path and says what is allowed; the caller adds the
file name. Defaults from the schema are filled in here, so no other module repeats them.
"""

from __future__ import annotations

import copy
import difflib
import re
from typing import Any

from cfbackup import chains
from cfbackup.config.model import Profile
from cfbackup.config.schema import DURATION_RE, Option, secret_keys
from cfbackup.duplicity import options as duplicity_options
from cfbackup.duplicity import target as targets
from cfbackup.duplicity.times import FORMATS as TIME_FORMATS
from cfbackup.duplicity.times import duplicity_time
from cfbackup.errors import ConfigError


def validate_table(
    data: Any, options: tuple[Option, ...], path: str, problems: list[str]
) -> dict[str, Any]:
    """Return ``data`` with defaults filled in; append a message per problem to ``problems``."""
    if not isinstance(data, dict):
        problems.append(f"{path or 'the file'}: expected a table, got {_type_name(data)}")
        return {}
    known: dict[str, Option] = {}
    for option in options:
        if option.kind == "secret":
            for key in secret_keys(option):
                known[key] = option
        else:
            known[option.name] = option
    result: dict[str, Any] = {}
    for key in data:
        if key not in known:
            problems.append(unknown_key(path, key, list(known)))
    for option in options:
        here = _join(path, option.name)
        if option.kind == "secret":
            given = [k for k in secret_keys(option) if k in data]
            if len(given) > 1:
                problems.append(f"{here}: give only one of {', '.join(given)}")
            for key in given:
                value = data[key]
                if key.endswith("_command") and isinstance(value, list):
                    problems.append(  # the command's words are not shown: a secret may be one
                        f"{_join(path, key)}: expected one string, got a list: write the "
                        f'command as one string, such as {key} = "pass show backup" (cfbackup '
                        "splits it as a shell would and runs it without a shell)"
                    )
                elif not isinstance(value, str) or not value:
                    problems.append(f"{_join(path, key)}: expected a non-empty string")
                else:
                    result[key] = value
            continue
        if option.name not in data:
            if option.required:
                problems.append(f"{here}: required key is missing ({option.description})")
            elif option.kind == "table":
                result[option.name] = validate_table({}, option.children, here, problems)
            else:
                result[option.name] = copy.deepcopy(option.default)
            continue
        result[option.name] = _check_value(data[option.name], option, here, problems)
    return result


def unknown_key(path: str, key: str, known: list[str]) -> str:
    """The problem for ``key``, unknown at ``path``: the close match, and what is allowed."""
    allowed = ", ".join(sorted(known)) or "none"
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.75)
    guess = f": did you mean {close[0]}?" if close else ""
    return f"{_join(path, key)}: unknown key{guess} (allowed here: {allowed})"


def _check_value(value: Any, option: Option, here: str, problems: list[str]) -> Any:
    kind = option.kind
    if kind == "table":
        return validate_table(value, option.children, here, problems)
    if kind in ("string", "path", "duration", "time", "choice"):
        if kind == "choice" and type(value) is int and str(value) in option.choices:
            value = str(value)  # auth_version = 3, as the reference writes `1` | `3`
        if not isinstance(value, str):
            problems.append(f"{here}: expected a string, got {_type_name(value)}")
            return None
        if "\x00" in value or len(value) > 4096:
            problems.append(f"{here}: a string without NUL bytes, at most 4096 characters")
            return None
        if kind == "choice" and value not in option.choices:
            problems.append(f"{here}: {value!r} is not one of {', '.join(option.choices)}")
            return None
        if kind == "duration" and not DURATION_RE.match(value) and value not in option.choices:
            problems.append(
                f"{here}: {value!r} is not a duration such as 14D, 6M, 1Y, 12h or a date "
                "2026-01-31" + "".join(f" or {c!r}" for c in option.choices)
            )
            return None
        if kind == "time" and value not in option.choices:
            try:
                duplicity_time(value)
            except ValueError:  # duplicity would refuse it mid-run (retention: after a backup)
                named = "".join(f"{c!r}, or " for c in option.choices)
                problems.append(
                    f"{here}: {value!r} is not a time duplicity reads: give {named}{TIME_FORMATS}"
                )
                return None
        if kind == "path" and not value:
            problems.append(f"{here}: expected a non-empty path")
            return None
        return value
    if kind == "integer":
        if isinstance(value, str) and value in option.choices:  # a named value ("auto")
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            named = "".join(f"{c!r} or " for c in option.choices)
            problems.append(f"{here}: expected {named}an integer, got {_type_name(value)}")
            return None
        if option.minimum is not None and value < option.minimum:
            problems.append(f"{here}: must be at least {option.minimum}, got {value}")
            return None
        if option.maximum is not None and value > option.maximum:
            problems.append(f"{here}: must be at most {option.maximum}, got {value}")
            return None
        if value > 2**40:
            problems.append(f"{here}: {value} is too large")
            return None
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{here}: expected true or false, got {_type_name(value)}")
            return None
        return value
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"{here}: expected a list of strings")
            return None
        if any("\x00" in v or "\n" in v for v in value):
            problems.append(f"{here}: list items must not contain NUL bytes or newlines")
            return None
        return list(value)
    raise AssertionError(f"unknown option kind {kind}")


def _join(path: str, key: str) -> str:
    key = key if key.isprintable() and key and len(key) <= 64 else repr(key[:64])
    return f"{path}.{key}" if path else key


def _type_name(value: Any) -> str:
    return {
        dict: "a table",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }.get(type(value), type(value).__name__)


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` on top of ``base``; tables merge, everything else is replaced."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


SUPPORTED_SCHEMES = ("swift", "file")  # file://: a local directory (tests, a copy)
OTHER_SERVICES = {
    "s3": "S3",
    "s3+http": "S3",
    "boto3+s3": "S3",
    "gs": "Google Cloud Storage",
    "b2": "Backblaze B2",
    "azure": "Azure",
}


def unsupported_target(target: str) -> str | None:
    """Why cfbackup refuses this target's scheme, or None. duplicity has other backends, but
    cfbackup reads, prunes and checks only these: anything else failed at the first backup
    (UnsupportedBackendScheme)."""
    if "://" not in target:
        return None
    scheme = target.split("://", 1)[0].lower()
    if scheme in SUPPORTED_SCHEMES or scheme.startswith("cf+http"):
        return None
    service = OTHER_SERVICES.get(scheme, f"the {scheme}:// scheme")
    return (
        f"{scheme}://... : {service} is not supported by cfbackup: back up to a Swift container "
        "(swift://CONTAINER)"
    )


def pattern_under(pattern: str, source: str) -> bool:
    """duplicity refuses a selection pattern that cannot match inside source (FilePrefixError)."""
    pattern = pattern.removeprefix("ignorecase:")
    if pattern.startswith("**"):
        return True
    if not pattern.startswith("/"):
        return False
    root = source.rstrip("/") + "/"
    literal = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    return (
        (pattern.rstrip("/") + "/").startswith(root)
        or root.startswith(literal)
        or pattern.rstrip("/") == source.rstrip("/")
    )


PREFIX_OPTIONS = ("--file-prefix", "--file-prefix-archive", "--file-prefix-manifest",
                  "--file-prefix-signature")  # fmt: skip


def shared_targets(profiles: dict[str, dict[str, Any]]) -> list[str]:
    """A problem for each two profiles that back up to one place: their targets are one place,
    or one's target is where a ``split_chains`` profile keeps one of its chains
    (``<target>/<slug>``). Each one's full backup and retention would delete the other's
    backups (duplicity sees them as one collection, and a changed source is refused with the
    advice to start a new chain). Targets only nested (``swift://c/a`` and ``swift://c/a/b``)
    are apart: duplicity's file names are matched from the start of the name in the folder, and
    Swift is listed under ``prefix/`` only."""
    seen: list[tuple[str, dict[tuple[str, ...], str], tuple]] = []
    problems: list[str] = []
    for name, data in profiles.items():
        places = _places(name, data)
        if not places:
            continue
        kept_apart = _kept_apart(data)
        where = targets.place(data["target"])
        for other, other_places, other_apart in seen:
            if other_apart != kept_apart:  # duplicity only sees the files of its own prefix
                continue
            other_where = targets.place(profiles[other]["target"])
            if where == other_where and data["target"] == profiles[other]["target"]:
                how = f"profiles {other} and {name} both back up to {data['target']}"
            elif where == other_where:
                how = (
                    f"profile {other}'s target {profiles[other]['target']} and profile {name}'s "
                    f"target {data['target']} are the same place"
                )
            elif where in other_places:
                how = (
                    f"profile {name}'s target {data['target']} is where profile {other} keeps "
                    f"its chain of {other_places[where]} (split_chains)"
                )
            elif other_where in places:
                how = (
                    f"profile {other}'s target {profiles[other]['target']} is where profile "
                    f"{name} keeps its chain of {places[other_where]} (split_chains)"
                )
            else:
                continue
            problems.append(
                f"{how}, so each one's full backups and retention would delete the other's "
                "backups: give each profile its own container or prefix (such as "
                f"{_beside(profiles[other]['target'], other)} and "
                f"{_beside(data['target'], name)})"
            )
        seen.append((name, places, kept_apart))
    return problems


def _places(name: str, data: dict[str, Any]) -> dict[tuple[str, ...], str]:
    """Where a profile's backups are: its target, and with ``split_chains`` each chain's
    ``<target>/<slug>`` (the value: the chain's include root, as the message names it)."""
    where = targets.place(data.get("target") or "")
    if where is None:
        return {}
    places = {where: ""}
    profile = Profile(name=name, data=data)
    if chains.is_split(profile):
        try:
            split = chains.of(profile)
        except ConfigError:  # include roots that cannot be chains: refused when it runs
            split = []
        for chain in split:
            chain_where = targets.place(chain.profile.target)
            if chain_where is not None:
                places[chain_where] = chain.label
    return places


def _kept_apart(data: dict[str, Any]) -> tuple:
    """What keeps a profile's files apart at a shared target: its duplicity file prefixes and,
    for Swift, the account (another account's container of that name is another container)."""
    words = list(data.get("extra_options") or [])
    prefixes = []
    for i, word in enumerate(words):
        name = duplicity_options.option_name(word)
        if name in PREFIX_OPTIONS:
            value = word.split("=", 1)[1] if "=" in word else (words[i + 1 : i + 2] or [""])[0]
            prefixes.append((name, value))
    swift = data.get("swift") or {}
    if swift.get("cloud"):
        account: tuple = ("cloud", swift["cloud"], swift.get("region_name"))
    elif swift.get("auth_version") == "3":
        project = swift.get("project_id") or swift.get("project_name")
        account = (
            (swift.get("auth_url") or "").rstrip("/"),
            swift.get("region_name"),
            project or swift.get("application_credential_id"),
            swift.get("project_domain_id") or swift.get("project_domain_name"),
        )
    else:  # v1: the account is the user's (tempauth: the part before the colon)
        user = (swift.get("username") or "").split(":")[0]
        account = ((swift.get("auth_url") or "").rstrip("/"), swift.get("region_name"), user)
    scheme = (data.get("target") or "").split("://", 1)[0].lower()
    return (tuple(sorted(prefixes)), account if scheme != "file" else ())


def _beside(target: str, name: str) -> str:
    return f"{target.rstrip('/')}-{name}"
