"""What command handlers (built-in and plugin) share: the config and the plugin manager."""

from __future__ import annotations

import functools
from typing import Any


class CliContext:
    """Loads plugins and the config lazily, once, when a command needs them."""

    def __init__(self) -> None:
        self.args: Any = None

    @functools.cached_property
    def plugin_manager(self):
        from cfbackup.plugins import make_plugin_manager

        return make_plugin_manager()

    def plugin_sections(self) -> dict:
        sections: dict = {}

        def register(section: str, options: tuple) -> None:
            sections[section] = tuple(options)

        self.plugin_manager.hook.cfbackup_config_schema(register=register)
        return sections

    @functools.cached_property
    def config(self):
        from cfbackup.config import load_config

        config = load_config(getattr(self.args, "config", None), self.plugin_sections())
        if config.environment:  # [environment]: for cfbackup's requests and every child's
            import os
            import urllib.parse

            from cfbackup import redact

            for value in config.environment.values():  # a proxy's user and password
                password = urllib.parse.urlsplit(value).password if "@" in value else None
                if password:
                    redact.register(password)
            os.environ.update(config.environment)
        if config.warnings:
            from cfbackup.cli.output import warn

            for warning in config.warnings:  # some name the file already ("FILE exports X")
                named = warning.startswith(f"{config.path}")
                warn(warning if named else f"{config.path}: {warning}")
        return config

    def load_config(self):
        return self.config
