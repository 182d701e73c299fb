"""The seed firewall: the base policy fw-control.py used to manage, now as cfbackup commands.

fw-control.py (``fw-control.py -s "web db" enable``) drove ufw: ``enable`` allowed 22/tcp and
turned on a default-deny inbound policy, ``disable`` allowed everything, ``allow port N`` and
``deny port N`` added and removed an allowed port. Here:

- ``enable``: inbound traffic is dropped except loopback, established/related, ICMP, SSH
  (``ssh_port``) from the management networks (from anywhere when none is configured), and
  the allowed ports and networks. Re-running it re-applies the same rules.
- ``disable``: the seed rules are removed (nothing of ours filters traffic any more); the lists
  are kept for the next ``enable``.
- ``allow port N[/tcp|/udp]`` / ``allow network CIDR``: add to the lists (and apply at once when
  enabled); ``disallow`` (alias ``deny``) removes. Each is idempotent: adding what is there, or
  removing what is not, changes nothing and says so.

The lists live in ``STATE_DIR/firewall/seed.json``; the rules in the nft table
``inet cfbackup_seed`` (or the iptables chain CFBACKUP_SEED). The seed is separate from the
lock-down: a lock-down saves and restores whatever the seed looks like at that moment.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from cfbackup.errors import CfbackupError, ExitCode
from cfbackup_firewall_lockdown import backends, record
from cfbackup_firewall_lockdown.settings import (
    AllowRule,
    Settings,
    parse_allow_rule,
    parse_network,
    parse_port,
)

SEED_FILE = "seed.json"
COMMENT = "cfbackup seed firewall"


@dataclasses.dataclass
class Seed:
    enabled: bool = False
    ports: list[str] = dataclasses.field(default_factory=list)  # "80/tcp", "60000-61000/udp"
    networks: list[str] = dataclasses.field(default_factory=list)  # normalized CIDR

    def rules(self, settings: Settings) -> tuple[AllowRule, ...]:
        ports = [parse_allow_rule(f"{p.split('/')[1]}/{p.split('/')[0]}") for p in self.ports]
        networks = [AllowRule(None, None, (parse_network(n),)) for n in self.networks]
        return (settings.ssh_rule, *ports, *networks)


def normalize_port(text: str) -> str:
    """``80`` -> ``80/tcp``; ``53/udp``; ``60000-61000/udp``."""
    match = re.fullmatch(r"\s*(\d+)(?:-(\d+))?(?:/(tcp|udp))?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"{text!r} is not a port such as 80, 53/udp or 60000-61000/udp")
    low = parse_port(match[1])
    high = parse_port(match[2]) if match[2] else low
    if high < low:
        raise ValueError(f"{text!r}: the port range is reversed")
    ports = str(low) if high == low else f"{low}-{high}"
    return f"{ports}/{(match[3] or 'tcp').lower()}"


def normalize_network(text: str) -> str:
    return str(parse_network(text))


def load(state_dir: Path) -> Seed:
    data = record.read_json(record.firewall_dir(state_dir) / SEED_FILE) or {}
    return Seed(bool(data.get("enabled")), list(data.get("ports", [])),
                list(data.get("networks", [])))


def save(state_dir: Path, seed: Seed) -> None:
    path = record.firewall_dir(state_dir, create=True) / SEED_FILE
    record.write_json(path, dataclasses.asdict(seed))


def apply(backend: backends.Backend, seed: Seed, settings: Settings) -> None:
    """Make the kernel match ``seed`` (one transaction per IP family)."""
    if seed.enabled:
        backend.apply_seed(seed.rules(settings), COMMENT)
    else:
        backend.remove_seed()


def change(backend: backends.Backend, settings: Settings, state_dir: Path, verb: str,
           what: str | None = None, value: str | None = None) -> str:
    """Run one seed operation; returns the line to print."""
    with record.exclusive(state_dir):
        seed = load(state_dir)
        if verb in ("enable", "disable"):
            was = seed.enabled
            seed.enabled = verb == "enable"
            apply(backend, seed, settings)
            save(state_dir, seed)
            state = "enabled" if seed.enabled else "disabled"
            return f"seed firewall {state}" + (" (it already was)" if was == seed.enabled else "")
        assert what in ("port", "network") and value is not None
        try:
            item = normalize_port(value) if what == "port" else normalize_network(value)
        except ValueError as error:
            raise CfbackupError(f"{error}.", exit_code=ExitCode.USAGE) from None
        items = seed.ports if what == "port" else seed.networks
        allow = verb == "allow"
        if (item in items) == allow:
            return f"{what} {item} " + ("already allowed" if allow else "was not allowed")
        if allow:
            items.append(item)
        else:
            items.remove(item)
        if seed.enabled:
            apply(backend, seed, settings)
        save(state_dir, seed)
        suffix = "" if seed.enabled else " (applies once the seed firewall is enabled)"
        return f"{what} {item} " + ("allowed" if allow else "no longer allowed") + suffix


def describe(backend: backends.Backend, settings: Settings, state_dir: Path) -> dict:
    seed = load(state_dir)
    ssh_from = ", ".join(str(n) for n in settings.management_networks) or "anywhere"
    return {
        "enabled": seed.enabled,
        "active": backend.seed_active(),
        "ports": seed.ports,
        "networks": seed.networks,
        "ssh": f"{settings.ssh_port}/tcp from {ssh_from}",
    }
