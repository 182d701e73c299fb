"""The static inventory of ``cfbackup firewall -s``: servers and how to reach them over SSH.

TOML or JSON (by the ``.json`` suffix): ``--inventory``, ``$CFBACKUP_INVENTORY`` or
``/etc/cfbackup/inventory.toml``. ``[defaults]`` holds the SSH settings every server shares,
also the servers found in the cloud; ``[servers.NAME]`` the servers it lists (an address each).
A server in the inventory wins over the cloud's of the same name (:mod:`selection`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from pathlib import Path
from typing import Any

from cfbackup.errors import ConfigError
from cfbackup_firewall_lockdown.remote import Server, parse_jump

DEFAULT_INVENTORY = Path("/etc/cfbackup/inventory.toml")
SERVER_KEYS = {"address": str, "port": int, "user": str, "identity": str, "known_hosts": str,
               "command": str, "connect_timeout": int, "jump": str}
DEFAULTS: dict[str, Any] = {"port": 22, "user": "root", "identity": None,
                            "known_hosts": "~/.ssh/known_hosts", "command": "cfbackup firewall",
                            "connect_timeout": 10, "jump": None}


@dataclasses.dataclass(frozen=True)
class Inventory:
    path: Path
    servers: list[Server]  # in name order
    defaults: dict[str, Any]  # the SSH settings of a server it does not list
    found: bool = True  # False: the default path, absent (the cloud is the only source)

    def server(self, name: str, address: str) -> Server:
        """A server it does not list, reached with its defaults."""
        return Server(name=name, address=address, **self.defaults)


def inventory_path(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get("CFBACKUP_INVENTORY") or DEFAULT_INVENTORY)\
        .expanduser()


def read(explicit: str | None, *, required: bool) -> Inventory:
    """The inventory named (``--inventory``, ``$CFBACKUP_INVENTORY``) or the default one. Only
    the default may be absent, and only when it is not ``required`` (a cloud lists servers)."""
    path = inventory_path(explicit)
    named = bool(explicit or os.environ.get("CFBACKUP_INVENTORY"))
    if not required and not named and not path.exists():
        return Inventory(path, [], dict(DEFAULTS), found=False)
    return load_inventory(path)


def load_inventory(path: Path) -> Inventory:
    """Read and check the inventory; every problem is reported at once, naming the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such inventory: create it (see docs/plugins/"
                          "firewall_lockdown.md), pass --inventory FILE, or list the servers "
                          "from a cloud with --cloud NAME (or --profile NAME).") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the inventory ({error.strerror}).") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: "
                          f"{error}.") from None
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table with [defaults] and [servers.NAME].")
    for key in data:
        if key not in ("defaults", "servers"):
            problems.append(f"{key}: unknown key (allowed: defaults, servers)")
    defaults = {**DEFAULTS, **_checked(data.get("defaults", {}), "defaults", problems)}
    if defaults.pop("address", None):
        problems.append("defaults.address: an address is each server's own: move it to "
                        "[servers.NAME]")
    servers = data.get("servers", {})
    if not isinstance(servers, dict):
        problems.append("servers: expected [servers.NAME] tables")
        servers = {}
    result = []
    for name, body in servers.items():
        entry = {**defaults, **_checked(body, f"servers.{name}", problems)}
        if not entry.get("address"):
            problems.append(f"servers.{name}.address: required (host name or IP address)")
            continue
        result.append(Server(name=name, **entry))
    if problems:
        raise ConfigError(f"{path}: {len(problems)} problem(s) in the inventory: "
                          + "; ".join(problems) + ".")
    return Inventory(path, sorted(result, key=lambda server: server.name), defaults)


def _checked(table: Any, where: str, problems: list[str]) -> dict[str, Any]:
    if not isinstance(table, dict):
        problems.append(f"{where}: expected a table")
        return {}
    values = {}
    for key, value in table.items():
        kind = SERVER_KEYS.get(key)
        if kind is None:
            problems.append(f"{where}.{key}: unknown key (allowed: {', '.join(SERVER_KEYS)})")
        elif not isinstance(value, kind) or isinstance(value, bool):
            expected = "an integer" if kind is int else "a string"
            problems.append(f"{where}.{key}: expected {expected}")
        elif key == "jump" and not _jump_ok(value):
            problems.append(f"{where}.jump: {value!r} is not [user@]host[:port]")
        else:
            values[key] = value
    return values


def _jump_ok(text: str) -> bool:
    try:
        parse_jump(text)
    except ValueError:
        return False
    return True
