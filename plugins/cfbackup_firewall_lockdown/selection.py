"""Which servers ``cfbackup firewall -s NAMES`` means, and where each is reached.

As fw-control.py did: a server is selected when its name contains one of the words
(case-insensitive), or with ``--exact`` when its name is one of them. The servers come from the
cloud's compute API (:mod:`compute`) and from the static inventory (:mod:`inventory`); a name in
both is the inventory's (it can give the user, port, jump host) while the cloud's status still
counts: a server the cloud does not report ACTIVE is skipped. Cloud servers are reached with the
inventory's ``[defaults]``. Nothing here connects: the result is the plan printed before acting.
"""

from __future__ import annotations

import dataclasses

from cfbackup.errors import ConfigError, ExitCode
from cfbackup_firewall_lockdown.compute import CloudServer, address_of
from cfbackup_firewall_lockdown.inventory import Inventory
from cfbackup_firewall_lockdown.remote import Outcome, Server

KNOWN_SHOWN = 20  # server names a "matches nothing" message lists at most


@dataclasses.dataclass(frozen=True)
class Target:
    """One selected server: where it is reached, or why it is not."""

    name: str
    source: str  # "inventory" or "cloud"
    server: Server | None = None  # None: skipped or no address
    how: str = ""  # how the address was chosen
    skip: str = ""  # why it is skipped (not ACTIVE)
    problem: str = ""  # why it cannot be reached (no usable address)

    def plan_line(self) -> str:
        if self.skip:
            return f"{self.name}: skipped: {self.skip} ({self.source})"
        if self.problem:
            return f"{self.name}: failed: {self.problem} ({self.source})"
        assert self.server is not None
        return f"{self.name}: {self.server.describe()} ({self.source}: {self.how})"

    def outcome(self) -> Outcome | None:
        """The result without connecting, for a target that is not reached."""
        if self.skip:
            return Outcome(self.name, "skipped", self.skip)
        if self.problem:
            return Outcome(self.name, "failed", self.problem, int(ExitCode.USAGE))
        return None


@dataclasses.dataclass(frozen=True)
class Selection:
    targets: list[Target]  # in name order
    unmatched: list[str]  # words of -s that no server matched
    exact: bool = False

    def outcomes(self) -> list[Outcome]:
        """Results known before connecting: skipped servers, unusable addresses, unmatched
        words."""
        known = [o for o in (t.outcome() for t in self.targets) if o is not None]
        return known + self._unmatched()

    def plan(self) -> list[str]:
        """What is about to happen, one line per server, then the words matching nothing."""
        return [t.plan_line() for t in self.targets] + [o.line() for o in self._unmatched()]

    def _unmatched(self) -> list[Outcome]:
        rule = _rule(self.exact)
        return [Outcome(word, "failed", f"no server {rule} {word!r}: check the names given "
                        "with -s", int(ExitCode.USAGE)) for word in self.unmatched]

    def reachable(self) -> list[Server]:
        return [t.server for t in self.targets if t.outcome() is None and t.server is not None]


def words_of(pattern: str) -> list[str]:
    return [w for w in pattern.replace(",", " ").split() if w]


def matches(name: str, word: str, *, exact: bool) -> bool:
    return name == word if exact else word.lower() in name.lower()


def _rule(exact: bool) -> str:
    return "is named" if exact else "name contains"


def select(inventory: Inventory, cloud: list[CloudServer] | None, pattern: str, *,
           exact: bool = False, network: str | None = None, where: str = "") -> Selection:
    """The servers ``pattern`` selects, from the inventory and the cloud (None: no cloud).
    ConfigError (exit 2) when no word matches any server; ``where`` names the sources."""
    words = words_of(pattern)
    hit: set[str] = set()

    def chosen(name: str) -> bool:
        found = [w for w in words if matches(name, w, exact=exact)]
        hit.update(found)
        return bool(found)

    listed = {s.name: s for s in inventory.servers if chosen(s.name)}
    in_cloud: dict[str, list[CloudServer]] = {}
    for server in cloud or []:
        if chosen(server.name):
            in_cloud.setdefault(server.name, []).append(server)
    targets = []
    for name in sorted(set(listed) | set(in_cloud)):
        if name in listed:
            targets.append(_listed(listed[name], in_cloud.get(name, [])))
            continue
        twins = in_cloud[name]
        for server in twins:  # names are not unique in a cloud: the id tells them apart
            label = name if len(twins) == 1 else f"{name} ({server.id[:8]})"
            targets.append(_from_cloud(label, server, inventory, network))
    if not targets:
        known = sorted({s.name for s in inventory.servers} | {s.name for s in cloud or []})
        shown = ", ".join(known[:KNOWN_SHOWN]) + (", ..." if len(known) > KNOWN_SHOWN else "")
        raise ConfigError(f"no server in {where} matches {pattern!r}"
                          + (" exactly" if exact else "")
                          + f" (servers: {shown or 'none'}): check the names given with -s.",
                          exit_code=ExitCode.USAGE)
    return Selection(targets, [w for w in words if w not in hit], exact)


def _listed(server: Server, in_cloud: list[CloudServer]) -> Target:
    statuses = {s.status for s in in_cloud}
    if in_cloud and "ACTIVE" not in statuses:
        return Target(server.name, "inventory", server,
                      skip=f"{'/'.join(sorted(statuses))} in the cloud, not ACTIVE")
    return Target(server.name, "inventory", server, how="its entry" +
                  (", also in the cloud" if in_cloud else ""))


def _from_cloud(label: str, server: CloudServer, inventory: Inventory,
                network: str | None) -> Target:
    if server.status != "ACTIVE":
        return Target(label, "cloud", skip=f"{server.status or 'no status'}, not ACTIVE")
    try:
        address, how = address_of(server, network)
    except LookupError as error:
        return Target(label, "cloud", problem=str(error))
    return Target(label, "cloud", inventory.server(label, address), how=how)
