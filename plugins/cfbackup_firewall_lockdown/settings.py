"""The ``firewall_lockdown`` config section: its schema, and parsing it into typed settings.

Pure code (no processes, no files): the allow-rule grammar lives here, once, for the config
section, the ``cfbackup check`` rows and the seed firewall's ``allow port`` / ``allow network``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from typing import Any

from cfbackup.config.schema import Option
from cfbackup.errors import ConfigError, ExitCode

SECTION = "firewall_lockdown"
BACKENDS = ("auto", "nft", "iptables")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

OPTIONS = (
    Option(
        "enabled",
        "boolean",
        "Lock the firewall down for the whole of every restore of this profile: new inbound "
        "connections are dropped except loopback, established traffic, SSH from the management "
        "networks and the allow list. The saved ruleset comes back when the restore ends.",
        default=False,
    ),
    Option(
        "management_networks",
        "list",
        "Networks (CIDR) from which SSH (ssh_port/tcp) stays open during a lock-down and under "
        "the seed firewall. When empty, SSH stays open from anywhere, so the admin is never "
        "locked out: set it to narrow SSH to your management network.",
        default=[],
        example=["10.0.0.0/8", "2001:db8:100::/48"],
    ),
    Option(
        "ssh_port",
        "integer",
        "TCP port of the SSH daemon that must stay reachable from the management networks.",
        default=22,
        minimum=1,
    ),
    Option(
        "allow",
        "list",
        "More inbound traffic allowed during a lock-down, one rule per item: "
        "PROTO/PORT[-PORT] [from CIDR[, CIDR...]] with PROTO tcp or udp, \"icmp\" (ping, v4 and "
        "v6) or \"from CIDR[, CIDR...]\" alone (anything from those networks).",
        default=[],
        example=["tcp/5666 from 10.0.5.10", "udp/161 from 10.0.5.0/24", "icmp"],
    ),
    Option(
        "deadman_timeout",
        "integer",
        "Seconds after which the dead-man lifts a lock-down whatever happens (it also lifts it "
        "as soon as the cfbackup process holding it is gone). Raise it for restores that take "
        "longer; 0 keeps only the process watch.",
        default=3600,
        minimum=0,
    ),
    Option(
        "backend",
        "choice",
        "Firewall tool: auto (nftables when nft is installed, else iptables/ip6tables), nft, "
        "or iptables.",
        default="auto",
        choices=BACKENDS,
    ),
)

DEFAULTS: dict[str, Any] = {option.name: option.default for option in OPTIONS}

_RULE_RE = re.compile(
    r"^\s*(?:(?P<proto>tcp|udp)\s*/\s*(?P<low>\d+)(?:\s*-\s*(?P<high>\d+))?|(?P<icmp>icmp))?"
    r"\s*(?:(?P<from>from)\s+(?P<sources>.+?))?\s*$",
    re.IGNORECASE,
)


@dataclasses.dataclass(frozen=True)
class AllowRule:
    """Inbound traffic let through: a protocol and ports, sources, or both.

    ``proto`` is ``tcp``, ``udp``, ``icmp`` (echo requests, v4 and v6) or None (any protocol);
    ``ports`` an inclusive range for tcp/udp; ``sources`` empty means from anywhere.
    """

    proto: str | None
    ports: tuple[int, int] | None = None
    sources: tuple[IPNetwork, ...] = ()

    def sources_of(self, version: int) -> tuple[IPNetwork, ...]:
        return tuple(net for net in self.sources if net.version == version)

    def applies_to(self, version: int) -> bool:
        """False when every source is of the other IP version."""
        return not self.sources or bool(self.sources_of(version))

    def describe(self) -> str:
        what = "anything" if self.proto is None else self.proto
        if self.ports:
            low, high = self.ports
            what = f"{self.proto}/{low}" + (f"-{high}" if high != low else "")
        where = ", ".join(str(n) for n in self.sources) if self.sources else "anywhere"
        return f"{what} from {where}"


def parse_network(text: str) -> IPNetwork:
    """A CIDR or a single address; host bits are cleared (10.1.2.3/8 is 10.0.0.0/8)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(
            f"{text.strip()!r} is not a network such as 10.0.0.0/8 or 2001:db8::/32"
        ) from None


def parse_port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{text!r} is not a port number (1-65535)")
    return int(text)


def parse_allow_rule(text: str) -> AllowRule:
    """Parse ``tcp/443``, ``udp/60000-61000 from 10.0.0.0/8``, ``icmp``, ``from 10.1.2.3``."""
    match = _RULE_RE.match(text)
    if not match or not text.strip() or not (match["proto"] or match["icmp"] or match["from"]):
        raise ValueError(
            f"{text!r} is not a rule such as \"tcp/443\", \"udp/53 from 10.0.0.0/8\", \"icmp\" "
            "or \"from 10.0.0.0/8\""
        )
    sources: tuple[IPNetwork, ...] = ()
    if match["from"]:
        sources = tuple(parse_network(s) for s in re.split(r"[,\s]+", match["sources"]) if s)
    if match["icmp"]:
        return AllowRule("icmp", None, sources)
    if not match["proto"]:
        return AllowRule(None, None, sources)
    low = parse_port(match["low"])
    high = parse_port(match["high"]) if match["high"] else low
    if high < low:
        raise ValueError(f"{text!r}: the port range {low}-{high} is reversed")
    return AllowRule(match["proto"].lower(), (low, high), sources)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The validated ``firewall_lockdown`` section, typed."""

    enabled: bool = DEFAULTS["enabled"]
    management_networks: tuple[IPNetwork, ...] = ()
    ssh_port: int = DEFAULTS["ssh_port"]
    allow: tuple[AllowRule, ...] = ()
    deadman_timeout: int = DEFAULTS["deadman_timeout"]
    backend: str = DEFAULTS["backend"]

    @property
    def ssh_rule(self) -> AllowRule:
        """SSH from the management networks, or from anywhere when none is configured."""
        return AllowRule("tcp", (self.ssh_port, self.ssh_port), self.management_networks)

    @property
    def lockdown_rules(self) -> tuple[AllowRule, ...]:
        return (self.ssh_rule, *self.allow)


def settings_from_section(section: dict[str, Any] | None, where: str = SECTION) -> Settings:
    """Typed settings from a validated section (defaults filled for missing keys).

    The config validator checks types; the network and rule syntax is checked here, and every
    problem is reported at once, naming the key.
    """
    data = {**DEFAULTS, **{k: v for k, v in (section or {}).items() if v is not None}}
    problems: list[str] = []
    networks: list[IPNetwork] = []
    for item in data["management_networks"]:
        try:
            networks.append(parse_network(item))
        except ValueError as error:
            problems.append(f"{where}.management_networks: {error}")
    rules: list[AllowRule] = []
    for item in data["allow"]:
        try:
            rules.append(parse_allow_rule(item))
        except ValueError as error:
            problems.append(f"{where}.allow: {error}")
    backend = data["backend"]
    if backend not in BACKENDS:
        problems.append(f"{where}.backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    if problems:
        raise ConfigError("; ".join(problems) + ".", exit_code=ExitCode.CONFIG)
    return Settings(
        enabled=bool(data["enabled"]),
        management_networks=tuple(networks),
        ssh_port=int(data["ssh_port"]),
        allow=tuple(rules),
        deadman_timeout=int(data["deadman_timeout"]),
        backend=backend,
    )
