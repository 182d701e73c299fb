"""Keystone v3: the version documents and password tokens with a catalog of the other services."""

from __future__ import annotations

import datetime
from typing import Any

from support.emulator.common import PROJECT_ID, HTTPError, not_found, now


def handle(h: Any, method, path, query, body, mv):
    emu = h.emu
    v3 = {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{h.base}/identity/v3/"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    }
    if path == "/identity" and method == "GET":
        return 300, {"versions": {"values": [v3]}}, {}
    if path == "/identity/v3" and method == "GET":
        return 200, {"version": v3}, {}
    if path == "/identity/v3/auth/tokens" and method == "POST":
        ident = (body or {}).get("auth", {}).get("identity", {})
        user = ident.get("password", {}).get("user", {})
        if user.get("name") != emu.username or user.get("password") != emu.password:
            raise HTTPError(401, "error", "The request you have made requires authentication.")
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
        catalog = [
            {
                "type": kind,
                "name": name,
                "id": name,
                "endpoints": [
                    {
                        "id": f"{name}-{i}",
                        "interface": i,
                        "region": "RegionOne",
                        "region_id": "RegionOne",
                        "url": f"{h.base}{suffix}",
                    }
                    for i in ("public", "internal", "admin")
                ],
            }
            for kind, name, suffix in (
                ("compute", "nova", "/compute/v2.1"),
                ("image", "glance", "/image"),
                ("dns", "designate", "/dns"),
                ("identity", "keystone", "/identity"),
            )
        ]
        token = {
            "methods": ["password"],
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "issued_at": now(),
            "audit_ids": ["emulator"],
            "user": {
                "id": "u1",
                "name": emu.username,
                "domain": {"id": "default", "name": "Default"},
            },
            "project": {
                "id": PROJECT_ID,
                "name": emu.project_name,
                "domain": {"id": "default", "name": "Default"},
            },
            "roles": [{"id": "r1", "name": "member"}],
            "catalog": catalog,
        }
        return 201, {"token": token}, {"X-Subject-Token": "emulator-token"}
    raise not_found(path)
