"""DNS A/AAAA updates through OpenStack Designate (openstacksdk's ``dns`` proxy).

The connection is core's (``cfbackup.cloud``) with the cloud the servers are parked in: the
``server_image`` section's ``cloud``, ``region_name`` and ``api_timeout`` (read as config, not
imported), then ``swift.cloud``, the Keystone v3 keys of ``[swift]``, ``$OS_CLOUD``.
Tested against the emulator in tests/support, not against a real Designate.
"""

from __future__ import annotations

import functools

from cfbackup import cloud
from cfbackup.config.model import Profile
from cfbackup.errors import ConfigError

from .rfc2136 import shown

CLOUD_SECTION = "server_image"  # docs/plugins/ip_fixup.md: the same cloud as server_image's
cloud_errors = functools.partial(cloud.cloud_errors, timeout_setting=f"{CLOUD_SECTION}.api_timeout")
connect = functools.partial(cloud.connect, section=CLOUD_SECTION)


def _zone(conn, wanted: str | None, name: str, where: str):
    from openstack import exceptions as sdk

    with cloud_errors("looking up Designate zones"):
        if wanted:
            try:
                return conn.dns.find_zone(
                    wanted if wanted.endswith(".") else wanted + ".", ignore_missing=False
                )
            except sdk.NotFoundException:
                raise ConfigError(
                    f"{where}.dns_zone: Designate has no zone {shown(wanted)} in this "
                    "project: check the name and the credentials."
                ) from None
        fqdn = name if name.endswith(".") else name + "."
        matches = [z for z in conn.dns.zones() if fqdn == z.name or fqdn.endswith("." + z.name)]
    if not matches:
        raise ConfigError(
            f"{where}.dns_zone: Designate has no zone containing {shown(name)}: set "
            "dns_zone or create the zone."
        )
    return max(matches, key=lambda z: len(z.name))


def replace(
    profile: Profile,
    zone_name: str | None,
    records: dict[str, dict[str, list[str]]],
    ttl: int,
    where: str,
) -> list[str]:
    """Create or update each ``{name: {"A": [...]}}`` recordset; returns what was done."""
    conn = connect(profile)
    done = []
    for name, by_type in records.items():
        fqdn = name if name.endswith(".") else name + "."
        zone = _zone(conn, zone_name, fqdn, where)
        for rtype, addresses in by_type.items():
            with cloud_errors(f"updating the {rtype} recordset of {shown(fqdn)} in Designate"):
                existing = list(conn.dns.recordsets(zone, name=fqdn, type=rtype))
                if existing:
                    conn.dns.update_recordset(existing[0], records=addresses, ttl=ttl)
                else:
                    conn.dns.create_recordset(
                        zone, name=fqdn, type=rtype, records=addresses, ttl=ttl
                    )
            done.append(f"{fqdn} {rtype} {' '.join(addresses)}")
    return done
