"""The config reference page, rendered from the schema (docs/config-reference.md is its output;
a test fails when the committed page differs)."""

from __future__ import annotations

import json

from cfbackup.config.schema import REQUIRED, TOP, Option, secret_keys, with_plugin_sections


def render_reference(plugin_sections: dict[str, tuple[Option, ...]]) -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from the schema (`cfbackup/config/schema.py`) by `cfbackup config reference`;",
        "do not edit by hand. Profiles live in `[profiles.NAME]` tables; `[defaults]` is merged",
        "into every profile (its mistakes are named as `defaults.KEY`; one that every profile",
        "overrides is only a warning). A secret may be given as `NAME_env` (an environment",
        "variable), `NAME_file` (a file holding it), `NAME_command` (a command printing it, run",
        "without a shell) or inline as `NAME`, which requires the config file to be mode 0600.",
        "",
        "## Top level",
        "",
    ]
    _table(lines, tuple(o for o in TOP if o.kind != "table"), "")
    for section in (o for o in TOP if o.kind == "table" and o.name not in ("profiles", "defaults")):
        lines += ["", f"### `[{section.name}]`", "", section.description, ""]
        _table(lines, section.children, "")
    lines += ["", "## Profile: `[profiles.NAME]`", ""]
    profile = with_plugin_sections(plugin_sections)
    _table(lines, tuple(o for o in profile if o.kind != "table"), "")
    for section in (o for o in profile if o.kind == "table"):
        lines += ["", f"### `[profiles.NAME.{section.name}]`", "", section.description, ""]
        _table(lines, section.children, "")
    _legacy(lines)
    return "\n".join(lines) + "\n"


def _legacy(lines: list[str]) -> None:
    """Where each variable of a legacy file goes (cfbackup/config/legacy_vars.py)."""
    from cfbackup.config.legacy_form import OLD_DEFAULTS, ZERTRIN_ONLY, as_bash
    from cfbackup.config.legacy_vars import MAPPING, NOT_CARRIED

    defaults = ", ".join(f"`{k}={as_bash(v)}`" for k, v in OLD_DEFAULTS.items())
    markers = ", ".join(f"`{name}`" for name in ZERTRIN_ONLY)
    lines += [
        "",
        "## Legacy `~/.dt-cf-backup.conf`",
        "",
        "A bash file of dt-cf-backup.sh, dt-s3-backup.sh or zertrin's duplicity-backup.sh is",
        "read by bash itself and becomes the profile `dt-cf-backup` (`cfbackup config migrate",
        "FILE -o OUT` writes the native equivalent, mode 0600). A file setting one of",
        markers,
        "is read as duplicity-backup.sh's, which had no defaults: without `CLEAN_UP_TYPE` and",
        "`CLEAN_UP_VARIABLE` no backup is removed, and without `--full-if-older-than` in",
        '`STATIC_OPTIONS` no full backup is forced (`full_if_older_than = "never"`), with a',
        "warning saying so. Any other file is read as dt-cf-backup.sh's, whose defaults apply",
        "to what it omits (`config migrate` names them; default excludes outside `ROOT`, which",
        "its duplicity refused, are left out with a warning):",
        defaults + ".",
        "Swift credentials come from the file only: `SWIFT_*` or `CLOUDFILES_*` exported in",
        "the environment (which the old scripts' duplicity inherited) are named in the error",
        "about the missing ones, never read.",
        "Every variable set is carried over or named in a warning (the proxy and CA",
        "variables it exports become `[environment]`, as the old script's duplicity ran with",
        "them; any other export is named); a legacy file holding",
        "secrets with a mode other users can read runs, with a warning on every run (stderr,",
        "run history, notifications, a failing `check` row).",
        "",
        "| variable | becomes | how |",
        "|---|---|---|",
    ]
    for name, (where, how) in MAPPING.items():
        escaped = how.replace("|", "\\|") or "-"
        lines.append(f"| `{name}` | `{where}` | {escaped} |")
    for name, why in NOT_CARRIED.items():
        lines.append(f"| `{name}` | not carried over | {why} |")


def _table(lines: list[str], options: tuple[Option, ...], prefix: str) -> None:
    lines.append("| key | type | default | description |")
    lines.append("|---|---|---|---|")
    for option in options:
        key = (
            " / ".join(f"`{k}`" for k in secret_keys(option))
            if option.kind == "secret"
            else f"`{option.name}`"
        )
        kind = option.kind
        if option.choices:
            kind = " \\| ".join(f"`{c}`" for c in option.choices)
            if option.kind == "integer":  # named values besides a number
                kind += f" \\| integer {option.minimum}-{option.maximum}"
            elif option.kind in ("duration", "time"):
                kind += f" \\| {option.kind}"
        if option.default is REQUIRED:
            default = "**required**"
        elif option.default in (None, [], ""):
            default = "-"
        else:
            default = f"`{json.dumps(option.default)}`"
        text = option.description
        if option.example is not None:
            example = option.example
            shown = example if isinstance(example, str) else json.dumps(example)
            text += f" Example: `{shown}`."
        escaped = text.replace("|", "\\|")
        lines.append(f"| {key} | {kind} | {default} | {escaped} |")
