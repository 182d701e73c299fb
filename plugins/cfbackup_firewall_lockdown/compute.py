"""The servers of a cloud, through its compute API (core's openstacksdk connection), and the
address ``cfbackup firewall -s`` reaches each one at.

The cloud is a clouds.yaml entry (``--cloud NAME``) or a profile's: the one server parking uses
(``[server_image]`` cloud settings first, then the profile's Swift credentials), read by name as
docs/plugins/firewall_lockdown.md says. The address: with ``--network NAME``, the server's
address on that network (IPv4 first, a floating address before a fixed one: an option given is
never overridden); else its access IPv4 (its owner declared it the way in); else its first
fixed address (IPv4 first).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cfbackup import cloud

CLOUD_SECTION = "server_image"  # the plugin whose cloud settings a profile's cloud comes from


@dataclasses.dataclass(frozen=True)
class CloudServer:
    id: str
    name: str
    status: str
    access_ipv4: str
    addresses: dict[str, list[dict[str, Any]]]  # network name -> Nova's address entries


def profile_names_cloud(profile: Any) -> bool:
    return cloud.names_cloud(profile, section=CLOUD_SECTION)


def list_servers(*, profile: Any = None, cloud_name: str | None = None) -> list[CloudServer]:
    """Every server of the project, from ``cloud_name`` (clouds.yaml) or else ``profile``.
    Raises ConfigError or BackendError (one sentence with the fix)."""
    conn = cloud.connect(profile, cloud=cloud_name, section=CLOUD_SECTION)
    setting = None if cloud_name else f"profiles.{profile.name}.{CLOUD_SECTION}.api_timeout"
    with cloud.cloud_errors(f"listing the servers of {describe(profile, cloud_name)}",
                            timeout_setting=setting):
        return [
            CloudServer(id=s.id, name=s.name or "", status=(s.status or "").upper(),
                        access_ipv4=s.access_ipv4 or "", addresses=dict(s.addresses or {}))
            for s in conn.compute.servers(details=True)
        ]


def describe(profile: Any, cloud_name: str | None) -> str:
    if cloud_name:
        return f"cloud {cloud_name}"
    return f"the cloud of profile {profile.name}"


def address_of(server: CloudServer, network: str | None) -> tuple[str, str]:
    """(address, how it was chosen); LookupError naming what is missing when there is none."""
    if network:
        entries = server.addresses.get(network)
        if not entries:
            known = ", ".join(server.addresses) or "none"
            raise LookupError(f"no address on network {network} (its networks: {known})")
        best = sorted(entries, key=lambda a: (a.get("version") != 4,
                                              a.get("OS-EXT-IPS:type") != "floating"))[0]
        return best["addr"], f"network {network}"
    if server.access_ipv4:
        return server.access_ipv4, "access IPv4"
    fixed = [(a.get("version") != 4, net, a["addr"])
             for net, entries in server.addresses.items() for a in entries
             if a.get("OS-EXT-IPS:type", "fixed") == "fixed" and a.get("addr")]
    if not fixed:
        raise LookupError("no access IPv4 and no fixed address: name the network to use with "
                          "--network, or list the server in the inventory")
    _, net, addr = min(fixed, key=lambda entry: entry[0])  # stable: the first IPv4 wins
    return addr, f"first fixed address, network {net}"
