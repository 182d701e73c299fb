"""``cfbackup firewall -s "web db" OPERATION``: the same operation on many servers over SSH.

As fw-control.py did: servers whose names contain one of the given words (case-insensitive)
are selected, the operation runs on each with bounded parallelism, one line per server is
printed, and one server failing neither stops the others nor goes unnoticed (non-zero exit).

Servers come from a static inventory (TOML or JSON; ``--inventory``, ``$CFBACKUP_INVENTORY`` or
``/etc/cfbackup/inventory.toml``). Host keys are always checked against a known_hosts file and
only key authentication is used. The remote side runs ``cfbackup firewall OPERATION`` (the
``command`` key changes that, e.g. to ``sudo cfbackup firewall``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shlex
import tomllib
from pathlib import Path
from typing import Any

from cfbackup.errors import ConfigError, ExitCode

DEFAULT_INVENTORY = Path("/etc/cfbackup/inventory.toml")
SERVER_KEYS = {"address": str, "port": int, "user": str, "identity": str, "known_hosts": str,
               "command": str, "connect_timeout": int}
DEFAULTS: dict[str, Any] = {"port": 22, "user": "root", "identity": None,
                            "known_hosts": "~/.ssh/known_hosts", "command": "cfbackup firewall",
                            "connect_timeout": 10}


@dataclasses.dataclass(frozen=True)
class Server:
    name: str
    address: str
    port: int = 22
    user: str = "root"
    identity: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    command: str = "cfbackup firewall"
    connect_timeout: int = 10


@dataclasses.dataclass(frozen=True)
class Outcome:
    server: Server
    ok: bool
    message: str
    exit_code: int = 0


def inventory_path(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get("CFBACKUP_INVENTORY") or DEFAULT_INVENTORY)\
        .expanduser()


def load_inventory(path: Path) -> list[Server]:
    """Read and check the inventory; every problem is reported at once, naming the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such inventory: create it (see "
                          "docs/plugins/firewall_lockdown.md) or pass --inventory FILE.") from None
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
    servers = data.get("servers")
    if not isinstance(servers, dict) or not servers:
        problems.append("servers: at least one [servers.NAME] table with an address is required")
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
    return sorted(result, key=lambda server: server.name)


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
        else:
            values[key] = value
    return values


def select(servers: list[Server], pattern: str, path: Path) -> list[Server]:
    """Servers whose name contains one of the words of ``pattern`` (case-insensitive)."""
    words = [w.lower() for w in pattern.replace(",", " ").split()]
    chosen = [s for s in servers if any(w in s.name.lower() for w in words)]
    if not chosen:
        known = ", ".join(s.name for s in servers)
        raise ConfigError(f"no server in {path} matches {pattern!r} (servers: {known}): check "
                          "the names given with -s.", exit_code=ExitCode.USAGE)
    return chosen


async def _run_one(server: Server, argv: list[str], limit: asyncio.Semaphore,
                   timeout: float) -> Outcome:
    import asyncssh

    command = f"{server.command} {shlex.join(argv)}"
    known_hosts = os.path.expanduser(server.known_hosts)
    identity = os.path.expanduser(server.identity) if server.identity else None
    async with limit:
        if not os.path.exists(known_hosts):
            return Outcome(server, False, f"no known_hosts file {known_hosts}: add the server's "
                           "host key (ssh-keyscan, checked by hand) first",
                           int(ExitCode.CONFIG))
        if identity and not os.path.exists(identity):
            return Outcome(server, False, f"no identity file {identity}: fix identity in the "
                           "inventory", int(ExitCode.CONFIG))
        try:
            async with asyncssh.connect(
                server.address, port=server.port, username=server.user,
                known_hosts=known_hosts,
                client_keys=[identity] if identity else (),
                password_auth=False, kbdint_auth=False,
                connect_timeout=server.connect_timeout,
            ) as connection:
                result = await asyncio.wait_for(connection.run(command, check=False), timeout)
        except asyncssh.HostKeyNotVerifiable as error:
            return Outcome(server, False, f"host key not trusted ({error.reason}): check "
                           f"{known_hosts}", int(ExitCode.BACKEND))
        except asyncssh.PermissionDenied:
            return Outcome(server, False, f"key authentication as {server.user} refused",
                           int(ExitCode.BACKEND))
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as error:
            return Outcome(server, False, f"cannot use identity file {identity} ({error}): it "
                           "must be an unencrypted private key", int(ExitCode.CONFIG))
        except TimeoutError:
            return Outcome(server, False, f"no answer within {timeout:.0f} s",
                           int(ExitCode.BACKEND))
        except (OSError, asyncssh.Error) as error:
            if isinstance(error, OSError) and error.errno:
                reason = os.strerror(error.errno)
            else:
                reason = getattr(error, "reason", None) or str(error) or type(error).__name__
            return Outcome(server, False, f"cannot connect to {server.address}:{server.port} "
                           f"({reason})", int(ExitCode.BACKEND))
    output = _lines(result.stdout) + _lines(result.stderr)
    summary = "; ".join(output) or "(no output)"
    code = result.exit_status if result.exit_status is not None else -1
    if code == 0:
        return Outcome(server, True, summary)
    known = code in ExitCode._value2member_map_
    return Outcome(server, False, f"exit {code}: {summary}",
                   code if known else int(ExitCode.BACKEND))


def _lines(text: Any) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def run_everywhere(servers: list[Server], argv: list[str], *, parallel: int,
                   timeout: float) -> list[Outcome]:
    """Run ``argv`` on every server, at most ``parallel`` at a time; results in name order."""

    async def everything() -> list[Outcome]:
        limit = asyncio.Semaphore(max(1, parallel))
        return list(await asyncio.gather(*(_run_one(s, argv, limit, timeout) for s in servers)))

    return asyncio.run(everything())


def exit_code(outcomes: list[Outcome]) -> int:
    """0 when every server succeeded; else the first failing server's code (the remote
    cfbackup's own exit code when it ran, BACKEND when the server could not be reached)."""
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return int(ExitCode.OK)
    return failed[0].exit_code or int(ExitCode.BACKEND)
