"""Designate v2: zones and their recordsets (the sliver ip_fixup uses)."""

from __future__ import annotations

import uuid
from typing import Any

from support.emulator.common import HTTPError, not_found


def _fault(emu, name: str, rtype: str) -> None:
    if (name, rtype) in emu.recordset_faults:
        raise HTTPError(500, "error", f"injected failure writing {name} {rtype}")


# ---- Designate (zones and recordsets) -------------------------------------------------------
def handle(h: Any, method, path, query, body, mv):
    emu = h.emu
    if path == "/dns":
        return (
            300,
            {
                "versions": {
                    "values": [
                        {
                            "id": "v2",
                            "status": "CURRENT",
                            "links": [{"rel": "self", "href": f"{h.base}/dns/v2/"}],
                        }
                    ]
                }
            },
            {},
        )
    parts = path.split("/")[2:]
    if parts == ["v2"]:
        return 200, {"version": {"id": "v2", "status": "CURRENT"}}, {}
    if parts[:2] != ["v2", "zones"]:
        raise not_found(path)
    if len(parts) == 2:
        zones = [z for z in emu.zones.values() if query.get("name") in (None, z["name"])]
        return 200, {"zones": zones, "links": {}, "metadata": {"total_count": len(zones)}}, {}
    zone = emu.zones.get(parts[2])
    if zone is None:
        raise not_found(f"zone {parts[2]}")
    if len(parts) == 3:
        return 200, zone, {}
    if parts[3] != "recordsets":
        raise not_found(path)
    if len(parts) == 4 and method == "GET":
        found = [
            r
            for r in emu.recordsets.values()
            if r["zone_id"] == zone["id"]
            and query.get("name") in (None, r["name"])
            and query.get("type") in (None, r["type"])
        ]
        return 200, {"recordsets": found, "links": {}, "metadata": {"total_count": len(found)}}, {}
    if len(parts) == 4 and method == "POST":
        _fault(emu, body["name"], body["type"])
        rs = {
            "id": str(uuid.uuid4()),
            "zone_id": zone["id"],
            "zone_name": zone["name"],
            "name": body["name"],
            "type": body["type"],
            "records": list(body["records"]),
            "ttl": body.get("ttl"),
            "status": "ACTIVE",
            "action": "NONE",
            "links": {},
        }
        emu.recordsets[rs["id"]] = rs
        return 202, rs, {}
    rs = emu.recordsets.get(parts[4])
    if rs is None:
        raise not_found(f"recordset {parts[4]}")
    if method == "PUT":
        _fault(emu, rs["name"], rs["type"])
        rs.update({k: v for k, v in body.items() if k in ("records", "ttl", "description")})
        return 202, rs, {}
    if method == "DELETE":
        del emu.recordsets[rs["id"]]
        return 202, rs, {}
    return 200, rs, {}
