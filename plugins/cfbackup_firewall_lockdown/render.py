"""Rulesets as text: pure functions from rules to an ``nft -f`` file or an ``iptables-restore``
script, so each change is loaded in one transaction (all of it or nothing).

Both the lock-down and the seed firewall only ever *restrict*: in nftables each lives in its own
table (a drop anywhere is final, an accept only ends that table's chain), and in iptables their
chains RETURN what they let through, so the rules after the jump in INPUT still apply.
"""

from __future__ import annotations

import re

from cfbackup_firewall_lockdown.settings import AllowRule

LOCKDOWN_TABLE = "cfbackup_lockdown"  # nftables, family inet
SEED_TABLE = "cfbackup_seed"
LOCKDOWN_CHAIN = "CFBACKUP_LOCKDOWN"  # iptables and ip6tables, table filter
SEED_CHAIN = "CFBACKUP_SEED"

# IPv6 stops working without neighbour discovery, which is "new" inbound traffic to conntrack.
ND_TYPES = ("nd-neighbor-solicit", "nd-neighbor-advert", "nd-router-solicit", "nd-router-advert")
ND_TYPES_IPTABLES = ("neighbour-solicitation", "neighbour-advertisement",
                     "router-solicitation", "router-advertisement")

_SAFE_COMMENT = re.compile(r"^[A-Za-z0-9 =:._/+-]*$")


def _check_comment(comment: str) -> str:
    if not _SAFE_COMMENT.match(comment) or len(comment) > 120:
        raise ValueError(f"unsafe firewall comment {comment!r}")
    return comment


# --- nftables ------------------------------------------------------------------------------


def _nft_ports(rule: AllowRule) -> str:
    low, high = rule.ports  # type: ignore[misc]
    return str(low) if low == high else f"{low}-{high}"


def nft_matches(rule: AllowRule) -> list[str]:
    """The match part of one nft rule per IP version the rule needs (an inet table)."""
    lines: list[str] = []
    for version, addr in ((4, "ip"), (6, "ip6")):
        if not rule.applies_to(version):
            continue
        sources = rule.sources_of(version)
        source = f"{addr} saddr {{ {', '.join(str(n) for n in sources)} }}" if sources else ""
        if rule.proto == "icmp":
            proto = "icmp type echo-request" if version == 4 else "icmpv6 type echo-request"
        elif rule.proto:
            proto = f"{rule.proto} dport {_nft_ports(rule)}"
        else:
            proto = ""
        line = " ".join(part for part in (source, proto) if part)
        if not sources and rule.proto != "icmp":
            return [line]  # one rule covers both versions
        lines.append(line)
    return lines


def nft_lockdown(rules: tuple[AllowRule, ...], comment: str) -> str:
    """The lock-down table: it runs before the usual filter priority and drops new inbound
    traffic that is not on loopback, established/related, neighbour discovery or allowed."""
    allowed = [f"\t\t{match} accept" for rule in rules for match in nft_matches(rule)]
    return "\n".join([
        f"table inet {LOCKDOWN_TABLE} {{",
        f'\tcomment "{_check_comment(comment)}"',
        "\tchain input {",
        "\t\ttype filter hook input priority filter - 10; policy accept;",
        '\t\tiif "lo" accept',
        "\t\tct state established,related accept",
        f"\t\ticmpv6 type {{ {', '.join(ND_TYPES)} }} accept",
        *allowed,
        "\t\tcounter drop",
        "\t}",
        "}",
        "",
    ])


def nft_seed(rules: tuple[AllowRule, ...], comment: str) -> str:
    """The seed firewall: a base policy dropping inbound traffic except what is listed (and
    ICMP, whose errors and pings a server is expected to answer)."""
    allowed = [f"\t\t{match} accept" for rule in rules for match in nft_matches(rule)]
    return "\n".join([
        f"table inet {SEED_TABLE} {{",
        f'\tcomment "{_check_comment(comment)}"',
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy drop;",
        '\t\tiif "lo" accept',
        "\t\tct state established,related accept",
        "\t\tct state invalid drop",
        "\t\tmeta l4proto { icmp, ipv6-icmp } accept",
        *allowed,
        "\t}",
        "}",
        "",
    ])


def nft_replace(table: str, body: str) -> str:
    """One transaction that replaces ``table`` whether it exists or not."""
    return f"table inet {table}\ndelete table inet {table}\n{body}"


# --- iptables / ip6tables --------------------------------------------------------------------


def iptables_matches(rule: AllowRule, version: int) -> list[list[str]]:
    """iptables arguments (without -A CHAIN and the verdict) for one IP version."""
    if not rule.applies_to(version):
        return []
    if rule.proto == "icmp":
        proto = (["-p", "icmp", "-m", "icmp", "--icmp-type", "echo-request"] if version == 4
                 else ["-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", "echo-request"])
    elif rule.proto:
        low, high = rule.ports  # type: ignore[misc]
        ports = str(low) if low == high else f"{low}:{high}"
        proto = ["-p", rule.proto, "-m", rule.proto, "--dport", ports]
    else:
        proto = []
    sources = rule.sources_of(version)
    if not sources:
        return [proto]
    return [["-s", str(net), *proto] for net in sources]


def _jump_deletions(jumps: list[str]) -> list[str]:
    """``-A INPUT ... -j CHAIN`` lines (from ``iptables -S INPUT``) turned into deletions."""
    return ["-D" + line[2:] for line in jumps if line.startswith("-A INPUT ")]


def iptables_lockdown(rules: tuple[AllowRule, ...], version: int, comment: str,
                      jumps: list[str] | None = None) -> str:
    """An ``iptables-restore --noflush`` script adding the lock-down chain and its jump at the
    top of INPUT, in one commit; ``jumps`` (those of a lock-down in force) are replaced."""
    chain = LOCKDOWN_CHAIN
    lines = ["*filter", *_jump_deletions(jumps or []), f":{chain} - [0:0]",
             *([f"-F {chain}"] if jumps else []), f"-A {chain} -i lo -j RETURN",
             f"-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"]
    if version == 6:
        lines += [f"-A {chain} -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN"
                  for t in ND_TYPES_IPTABLES]
    lines += [" ".join([f"-A {chain}", *args, "-j RETURN"])
              for rule in rules for args in iptables_matches(rule, version)]
    lines += [f"-A {chain} -j DROP",
              f'-I INPUT 1 -m comment --comment "{_check_comment(comment)}" -j {chain}',
              "COMMIT", ""]
    return "\n".join(lines)


def iptables_seed(rules: tuple[AllowRule, ...], version: int, comment: str,
                  jumps: list[str]) -> str:
    """Replace the seed chain (and its jump) in one commit; ``jumps`` are the current ones."""
    chain = SEED_CHAIN
    lines = ["*filter", *_jump_deletions(jumps), f":{chain} - [0:0]", f"-F {chain}",
             f"-A {chain} -i lo -j RETURN",
             f"-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
             f"-A {chain} -m conntrack --ctstate INVALID -j DROP",
             f"-A {chain} -p {'icmp' if version == 4 else 'ipv6-icmp'} -j RETURN"]
    lines += [" ".join([f"-A {chain}", *args, "-j RETURN"])
              for rule in rules for args in iptables_matches(rule, version)]
    lines += [f"-A {chain} -j DROP",
              f'-I INPUT 1 -m comment --comment "{_check_comment(comment)}" -j {chain}',
              "COMMIT", ""]
    return "\n".join(lines)


def iptables_remove(chain: str, jumps: list[str]) -> str:
    """Delete ``chain`` and every jump to it in one commit."""
    return "\n".join(["*filter", *_jump_deletions(jumps), f"-F {chain}", f"-X {chain}",
                      "COMMIT", ""])
