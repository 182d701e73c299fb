"""Helpers of the incident-recovery tests, importable by name (a test module importing from
``conftest`` would get whichever conftest was imported first)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.bind import Bind

from cfbackup import plugins as _plugins

BUILTINS = ("server_image", "ip_fixup")
_ORIGINAL_MAKE = _plugins.make_plugin_manager
# openstacksdk warns about its own internal calls (create_server_image -> find_image with
# ignore_missing=True, ...): nothing cfbackup can act on.
SDK_DEPRECATIONS = [
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning"),
]
_ORIGINAL_MAKE = _plugins.make_plugin_manager


def plugin_manager():
    """The real plugin manager, plus the two plugins when their entry points are missing."""
    import cfbackup_ip_fixup
    import cfbackup_server_image

    pm = _ORIGINAL_MAKE(load_entry_points=True)
    for name, module in zip(BUILTINS, (cfbackup_server_image, cfbackup_ip_fixup), strict=True):
        if pm.get_plugin(name) is None and not pm.is_registered(module):
            pm.register(module, name=name)
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
