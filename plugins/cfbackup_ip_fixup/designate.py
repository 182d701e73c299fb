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
from cfbackup.errors import BackendError, CfbackupError, ConfigError

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
    check_old: dict[str, dict[str, list[str]]] | None = None,
    *,
    rerun: str,
) -> list[str]:
    """Create or update each ``{name: {"A": [...]}}`` recordset; returns what was done.

    Every recordset is read before any is written. With ``check_old`` each is judged as in
    RFC 2136 (checkold.py): holding only the server's old or new addresses it is updated,
    already holding the new ones it is left alone, holding anything else refuses the whole
    fix-up before any write.
    Designate has no multi-recordset transaction: the writes are one by one, so a failure
    part-way names the recordsets already changed and ``rerun``, the command that completes it.
    """
    from . import checkold
    from .rerun import part_way

    conn = connect(profile)
    done: list[str] = []
    plan = []  # (fqdn, rtype, addresses, zone, existing recordset or None)
    refused = []
    for name, by_type in records.items():
        fqdn = name if name.endswith(".") else name + "."
        zone = _zone(conn, zone_name, fqdn, where)
        for rtype, addresses in by_type.items():
            with cloud_errors(f"reading the {rtype} recordset of {shown(fqdn)} in Designate"):
                existing = next(iter(conn.dns.recordsets(zone, name=fqdn, type=rtype)), None)
            old = (check_old or {}).get(name, {}).get(rtype) or []
            if check_old is not None:
                current = list(existing.records or []) if existing is not None else []
                verdict = checkold.state(current, old, addresses)
                if verdict == checkold.CHANGED:
                    refused.append(
                        checkold.describe(
                            f"the {rtype} record of {shown(fqdn)}", current, old, addresses
                        )
                    )
                    continue
                if verdict == checkold.ALREADY:
                    done.append(f"{fqdn} {rtype} {' '.join(addresses)} (already so)")
                    continue
            plan.append((fqdn, rtype, addresses, zone, existing))
    if refused:
        raise BackendError(
            f"Designate: {'; '.join(refused)}: "
            f"{checkold.refusal_fix(where, len(refused), rerun)}; "
            "nothing was changed."
        )
    changed: list[str] = []  # as shown in a sentence
    for fqdn, rtype, addresses, zone, existing in plan:
        try:
            with cloud_errors(f"updating the {rtype} recordset of {shown(fqdn)} in Designate"):
                if existing is not None:
                    conn.dns.update_recordset(existing, records=addresses, ttl=ttl)
                else:
                    conn.dns.create_recordset(
                        zone, name=fqdn, type=rtype, records=addresses, ttl=ttl
                    )
        except CfbackupError as error:
            cause = error.message.rstrip(".")
            if not changed:
                raise type(error)(
                    f"{cause}; nothing was changed.", exit_code=error.exit_code
                ) from None
            raise part_way(error, "Designate updates are not atomic", changed, rerun) from None
        changed.append(f"{shown(fqdn)} {rtype} {' '.join(addresses)}")
        done.append(f"{fqdn} {rtype} {' '.join(addresses)}")
    return done
