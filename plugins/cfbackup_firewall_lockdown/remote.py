"""``cfbackup firewall -s NAMES OPERATION``: the same operation on many servers over SSH.

The operation runs on each server with bounded parallelism; one server failing neither stops
the others nor goes unnoticed (non-zero exit). Which servers, and at which address, is
:mod:`selection`'s business; this module only connects and runs.

Host keys are always checked against a known_hosts file and only key authentication is used,
also on the jump host when there is one (the same identity and known_hosts). The remote side
runs ``cfbackup firewall OPERATION`` (the ``command`` setting changes that, e.g. to ``sudo
cfbackup firewall``). What a server prints comes back masked like any other program's output
(a ``command`` wrapper may print more than cfbackup does).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shlex
from typing import Any

from cfbackup.errors import ExitCode
from cfbackup.redact import redact_output


@dataclasses.dataclass(frozen=True)
class Server:
    """Where and how to reach one server."""

    name: str
    address: str
    port: int = 22
    user: str = "root"
    identity: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    command: str = "cfbackup firewall"
    connect_timeout: int = 10
    jump: str | None = None  # [user@]host[:port]: an SSH jump host (ProxyJump)

    def describe(self) -> str:
        """``user@address:port`` and the jump host: what the plan shows."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        via = f" via {self.jump}" if self.jump else ""
        return f"{self.user}@{host}:{self.port}{via}"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One line of the result: a server (or a word of -s matching none) and what happened."""

    name: str
    state: str  # ok | failed | skipped
    message: str
    exit_code: int = 0

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    def line(self) -> str:
        return f"{self.name}: {self.state}: {self.message}"


def parse_jump(text: str) -> tuple[str | None, str, int]:
    """``[user@]host[:port]`` (an IPv6 host in brackets) -> (user, host, port); ValueError
    when it is none of these."""
    user, _, hostport = text.strip().rpartition("@")
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
    elif hostport.count(":") == 1:
        host, port = hostport.split(":")
    else:
        host, port = hostport, ""
    if not host or (port and not port.isdigit()) or " " in text.strip() or "@" in user:
        raise ValueError(f"{text!r} is not [user@]host[:port]")
    return user or None, host, int(port) if port else 22


class _Unreachable(Exception):
    def __init__(self, message: str, exit_code: ExitCode):
        super().__init__(message)
        self.message, self.exit_code = message, int(exit_code)


async def _open(stack: contextlib.AsyncExitStack, where: str, host: str, port: int,
                user: str, options: dict[str, Any]):
    """One SSH connection, kept open by ``stack``; failures as :class:`_Unreachable`."""
    import asyncssh

    try:
        return await stack.enter_async_context(
            asyncssh.connect(host, port=port, username=user, **options))
    except asyncssh.HostKeyNotVerifiable as error:
        raise _Unreachable(f"{where}host key not trusted ({error.reason}): check "
                           f"{options['known_hosts']}", ExitCode.BACKEND) from None
    except asyncssh.PermissionDenied:
        raise _Unreachable(f"{where}key authentication as {user} refused",
                           ExitCode.BACKEND) from None
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as error:
        raise _Unreachable(f"cannot use identity file {options['client_keys'][0]} ({error}): "
                           "it must be an unencrypted private key", ExitCode.CONFIG) from None
    except (OSError, asyncssh.Error) as error:
        if isinstance(error, OSError) and error.errno:
            reason = os.strerror(error.errno)
        else:
            reason = redact_output(getattr(error, "reason", None) or str(error)) \
                or type(error).__name__
        shown = f"[{host}]" if ":" in host else host
        raise _Unreachable(f"{where}cannot connect to {shown}:{port} ({reason})",
                           ExitCode.BACKEND) from None


async def _run_one(server: Server, argv: list[str], limit: asyncio.Semaphore,
                   timeout: float) -> Outcome:
    command = f"{server.command} {shlex.join(argv)}"
    known_hosts = os.path.expanduser(server.known_hosts)
    identity = os.path.expanduser(server.identity) if server.identity else None
    async with limit:
        if not os.path.exists(known_hosts):
            return Outcome(server.name, "failed", f"no known_hosts file {known_hosts}: add the "
                           "server's host key (ssh-keyscan, checked by hand) first",
                           int(ExitCode.CONFIG))
        if identity and not os.path.exists(identity):
            return Outcome(server.name, "failed", f"no identity file {identity}: fix identity "
                           "in the inventory", int(ExitCode.CONFIG))
        options: dict[str, Any] = {
            "known_hosts": known_hosts, "client_keys": [identity] if identity else (),
            "password_auth": False, "kbdint_auth": False,
            "connect_timeout": server.connect_timeout,
        }
        try:
            async with contextlib.AsyncExitStack() as stack:
                if server.jump:
                    user, host, port = parse_jump(server.jump)
                    options["tunnel"] = await _open(stack, f"jump host {server.jump}: ", host,
                                                    port, user or server.user, options)
                connection = await _open(stack, "", server.address, server.port, server.user,
                                         options)
                result = await asyncio.wait_for(connection.run(command, check=False), timeout)
        except _Unreachable as error:
            return Outcome(server.name, "failed", error.message, error.exit_code)
        except TimeoutError:
            return Outcome(server.name, "failed", f"no answer within {timeout:.0f} s",
                           int(ExitCode.BACKEND))
    output = _lines(result.stdout) + _lines(result.stderr)
    summary = redact_output("; ".join(output)) or "(no output)"  # another host's words
    code = result.exit_status if result.exit_status is not None else -1
    if code == 0:
        return Outcome(server.name, "ok", summary)
    known = code in ExitCode._value2member_map_
    return Outcome(server.name, "failed", f"exit {code}: {summary}",
                   code if known else int(ExitCode.BACKEND))


def _lines(text: Any) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def run_everywhere(servers: list[Server], argv: list[str], *, parallel: int,
                   timeout: float) -> list[Outcome]:
    """Run ``argv`` on every server, at most ``parallel`` at a time; results in their order."""
    if not servers:
        return []

    async def everything() -> list[Outcome]:
        limit = asyncio.Semaphore(max(1, parallel))
        return list(await asyncio.gather(*(_run_one(s, argv, limit, timeout) for s in servers)))

    return asyncio.run(everything())


def exit_code(outcomes: list[Outcome]) -> int:
    """0 when nothing failed (skipped servers are not failures); else the first failure's
    code: the remote cfbackup's own exit code when it ran, BACKEND when the server could not
    be reached, USAGE for a word of -s that matched no server."""
    failed = [o for o in outcomes if o.state == "failed"]
    if not failed:
        return int(ExitCode.OK)
    return failed[0].exit_code or int(ExitCode.BACKEND)
