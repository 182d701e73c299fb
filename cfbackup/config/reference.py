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
        "into every profile. A secret may be given as `NAME_env` (an environment variable),",
        "`NAME_file` (a file holding it), `NAME_command` (a command printing it, run without a",
        "shell) or inline as `NAME`, which requires the config file to be mode 0600.",
        "",
        "## Top level",
        "",
    ]
    _table(lines, tuple(o for o in TOP if o.kind != "table"), "")
    lines += ["", "## Profile: `[profiles.NAME]`", ""]
    profile = with_plugin_sections(plugin_sections)
    _table(lines, tuple(o for o in profile if o.kind != "table"), "")
    for section in (o for o in profile if o.kind == "table"):
        lines += ["", f"### `[profiles.NAME.{section.name}]`", "", section.description, ""]
        _table(lines, section.children, "")
    return "\n".join(lines) + "\n"


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
