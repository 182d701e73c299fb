"""Helpers of the incident-recovery tests, importable by name (a test module importing from
``conftest`` would get whichever conftest was imported first)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.bind import Bind

from cfbackup import plugins as _plugins

BUILTINS = ("server_image", "ip_fixup")
# openstacksdk warns about its own internal calls (create_server_image -> find_image with
# ignore_missing=True, ...): nothing cfbackup can act on.
SDK_DEPRECATIONS = [
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning"),
]
_ORIGINAL_MAKE = _plugins.make_plugin_manager


def plugin_manager():
    """The real plugin manager, as the CLI makes it: the two plugins must come from their
    entry points (pyproject.toml); a broken or missing entry point fails the test."""
    pm = _ORIGINAL_MAKE(load_entry_points=True)
    missing = [name for name in BUILTINS if pm.get_plugin(name) is None]
    if missing:
        pytest.fail(
            f"built-in plugin(s) {', '.join(missing)} not loaded through the 'cfbackup' "
            "entry points: reinstall (uv sync) or fix pyproject.toml",
            pytrace=False,
        )
    return pm


def load_config(path):
    """The validated Config, with the plugins' sections, as the CLI would load it."""
    from cfbackup.config import load_config as load

    sections: dict = {}
    plugin_manager().hook.cfbackup_config_schema(
        register=lambda section, options: sections.__setitem__(section, tuple(options))
    )
    return load(path, sections)


def server_image_section(**overrides) -> str:
    settings = {
        "cloud": '"emulator"',
        "image_timeout": 5,
        "server_timeout": 5,
        "api_timeout": 3,
        "poll_interval": 1,
    }
    settings.update(overrides)
    return "".join(f"{k} = {v}\n" for k, v in settings.items())


def ip_fixup_section(bind: Bind, hosts: Path, names: list[str], **overrides) -> str:
    settings = {
        "dns_names": "[" + ", ".join(f'"{n}"' for n in names) + "]",
        "dns_server": '"127.0.0.1"',
        "dns_port": bind.port,
        "dns_timeout": 3,
        "tsig_key_name": f'"{bind.key_name}"',
        "tsig_secret_env": '"T_TSIG_SECRET"',
        "hosts_file": f'"{hosts}"',
    }
    settings.update(overrides)
    return "".join(f"{k} = {v}\n" for k, v in settings.items())


def config_path(result) -> str:
    """The -c FILE a message must repeat (the fixture writes config.toml)."""
    import re

    found = re.search(r"cfbackup -c (\S+config\.toml)", result.output)
    assert found, result
    return found.group(1)


def park_record(tmp_path, name="web1"):
    """The park record of server ``name`` that the config fixture's state dir holds."""
    from cfbackup_server_image import records

    return json.loads((tmp_path / "state" / "parked" / records.file_name(name)).read_text())


def alive(emulator, name: str) -> list[str]:
    """The ids of the emulator's servers named exactly ``name`` that are not deleted."""
    return [
        s["id"] for s in emulator.servers.values() if s["name"] == name and s["status"] != "DELETED"
    ]
