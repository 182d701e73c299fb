"""Nova: versions and microversions, flavors, servers (boot, show, list, delete) and their actions
(createImage, os-stop, os-start, metadata)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from support.emulator.common import MAX_MICROVERSION, PROJECT_ID, HTTPError, not_found, now


def handle(h: Any, method, path, query, body, mv):
    emu = h.emu
    version = {
        "id": "v2.1",
        "status": "CURRENT",
        "version": MAX_MICROVERSION,
        "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": f"{h.base}/compute/v2.1/"}],
        "media-types": [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1",
            }
        ],
    }
    if path == "/compute":
        return 200, {"versions": [version]}, {}
    if not path.startswith("/compute/v2.1"):
        raise not_found(path)
    rest = path[len("/compute/v2.1") :] or "/"
    headers = {
        "OpenStack-API-Version": f"compute {'.'.join(map(str, mv))}",
        "Vary": "OpenStack-API-Version",
    }
    if rest == "/":
        return 200, {"version": version}, headers
    parts = rest.strip("/").split("/")
    if parts[0] == "flavors":
        return (*_flavors(emu, parts, query), headers)
    if parts[0] != "servers":
        raise not_found(path)
    if len(parts) == 1 or parts[1] == "detail":
        if method == "POST" and len(parts) == 1:
            status, payload = _boot(h, body, mv)
            return status, payload, headers
        servers = [s for s in emu.servers.values() if _name_matches(query, s["name"])]
        return 200, {"servers": [_server_view(h, s, mv) for s in servers]}, headers
    server = emu.servers.get(parts[1])
    if server is None:
        raise not_found(f"Instance {parts[1]}")
    if len(parts) == 2:
        if method == "DELETE":
            if "delete" in emu.conflicts:
                raise HTTPError(
                    409,
                    "conflictingRequest",
                    f"Cannot 'delete' instance {server['id']} while it is locked",
                )
            server["status"], server["deleting"] = "DELETED", 0
            return 204, None, headers
        if server.get("deleting") is not None:
            server["deleting"] += 1
            if server["deleting"] > 1:
                del emu.servers[server["id"]]
                raise not_found(f"Instance {parts[1]}")
        elif server.get("stopping") is not None:
            server["stopping"] += 1
            if server["stopping"] >= emu.stop_polls and emu.stop_fate == "shutoff":
                server["status"], server["task_state"], server["stopping"] = "SHUTOFF", None, None
        elif server["status"] == "BUILD":
            server["polls"] += 1
            if server["polls"] >= emu.build_polls:
                server["status"] = "ACTIVE" if emu.boot_fate == "active" else "ERROR"
                if server["status"] == "ERROR":
                    server["fault"] = {"code": 500, "created": now(), "message": emu.boot_fault}
                    server["addresses"] = {}
        return 200, {"server": _server_view(h, server, mv)}, headers
    if parts[2] == "action" and method == "POST":
        status, payload, extra = _action(h, server, body or {}, mv)
        return status, payload, {**headers, **extra}
    if parts[2] == "os-interface":
        names = {v: k for k, v in emu.networks.items()}
        attachments = [
            {
                "net_id": net,
                "port_id": str(uuid.uuid5(uuid.NAMESPACE_URL, server["id"] + net)),
                "mac_addr": a["OS-EXT-IPS-MAC:mac_addr"],
                "port_state": "ACTIVE",
                "fixed_ips": [{"ip_address": a["addr"], "subnet_id": "s-" + names[net]}],
            }
            for net in server["net_ids"]
            for a in server["addresses"].get(names[net], [])[:1]
        ]
        return 200, {"interfaceAttachments": attachments}, headers
    raise not_found(path)


def _name_matches(query, name: str) -> bool:
    """Nova's ``name`` filter: a regular expression search, case-insensitive as MySQL's
    collation, every ``|`` escaped first as Nova's MySQL path does (``_safe_regex_mysql``); one
    that is not a valid expression is a 400."""
    if "name" not in query:
        return True
    try:
        return re.search(query["name"].replace("|", "\\|"), name, re.IGNORECASE) is not None
    except re.error as error:
        raise HTTPError(400, "badRequest", f"Invalid regular expression: {error}") from None


def _flavors(emu: Any, parts, query):
    if len(parts) == 1 or parts[1] == "detail":
        return 200, {"flavors": [dict(f, links=[]) for f in emu.flavors.values()]}
    flavor = emu.flavors.get(parts[1])
    if flavor is None:
        raise not_found(f"Flavor {parts[1]}")
    if len(parts) == 3 and parts[2] == "os-extra_specs":
        return 200, {"extra_specs": flavor["extra_specs"]}
    return 200, {"flavor": dict(flavor, links=[])}


def _server_view(h: Any, server: dict, mv) -> dict:
    emu = h.emu
    flavor = emu.flavors[server["flavor_id"]]
    if mv >= (2, 47):
        flavor_view = {
            "original_name": flavor["name"],
            "vcpus": flavor["vcpus"],
            "ram": flavor["ram"],
            "disk": flavor["disk"],
            "ephemeral": 0,
            "swap": 0,
            "extra_specs": dict(flavor["extra_specs"]),
        }
    else:
        flavor_view = {"id": flavor["id"], "links": []}
    view = {
        "id": server["id"],
        "name": server["name"],
        "status": server["status"],
        "tenant_id": server["tenant_id"],
        "user_id": "u1",
        "created": server["created"],
        "updated": now(),
        "flavor": flavor_view,
        "image": server["image"],
        "key_name": server["key_name"],
        "metadata": server["metadata"],
        "security_groups": server["security_groups"],
        "addresses": server["addresses"],
        "OS-EXT-AZ:availability_zone": server["az"],
        "os-extended-volumes:volumes_attached": server.get("volumes", []),
        "OS-EXT-STS:task_state": server["task_state"],
        "OS-EXT-STS:vm_state": server["status"].lower(),
        "accessIPv4": server.get("access_ipv4", ""),
        "accessIPv6": "",
        "progress": 0,
        "hostId": "h1",
        "links": [{"rel": "self", "href": f"{h.base}/compute/v2.1/servers/{server['id']}"}],
    }
    if "fault" in server:
        view["fault"] = server["fault"]
    return view


def _boot(h: Any, body, mv):
    emu = h.emu
    spec = (body or {}).get("server", {})
    if "boot" in emu.conflicts:
        raise HTTPError(409, "conflictingRequest", "Quota exceeded or conflicting request.")
    networks = spec.get("networks")
    if mv >= (2, 37) and networks is None:
        raise HTTPError(
            400,
            "badRequest",
            "Invalid input for field/attribute server. 'networks' is a required property",
        )
    for key in ("name", "imageRef", "flavorRef"):
        if not spec.get(key):
            raise HTTPError(400, "badRequest", f"'{key}' is a required property")
    if spec["imageRef"] not in emu.images or emu.images[spec["imageRef"]]["status"] != "active":
        raise HTTPError(400, "badRequest", f"Image {spec['imageRef']} is not active.")
    flavor_id = spec["flavorRef"].rsplit("/", 1)[-1]
    if flavor_id not in emu.flavors:
        raise HTTPError(400, "badRequest", f"Flavor {flavor_id} could not be found.")
    if networks in ("auto", None):
        net_ids = [emu.networks["private"]]
    elif networks == "none":
        net_ids = []
    else:
        net_ids = [n.get("uuid") for n in networks]
        unknown = [n for n in net_ids if n not in emu.networks.values()]
        if unknown:
            raise HTTPError(400, "badRequest", f"Network {unknown[0]} could not be found.")
    groups = [g["name"] for g in spec.get("security_groups", [{"name": "default"}])]
    server = emu._new_server(
        spec["name"],
        flavor_id,
        net_ids,
        spec.get("key_name"),
        spec.get("metadata", {}),
        groups,
        spec.get("availability_zone") or "nova",
    )
    server["image"] = {"id": spec["imageRef"], "links": []}
    return 202, {
        "server": {
            "id": server["id"],
            "links": [],
            "adminPass": "emulated",
            "security_groups": server["security_groups"],
            "OS-DCF:diskConfig": "MANUAL",
        }
    }


def _action(h: Any, server: dict, body: dict, mv):
    emu = h.emu
    if "os-stop" in body or "os-start" in body:
        return _power(emu, server, "stop" if "os-stop" in body else "start")
    if "createImage" not in body:
        raise HTTPError(400, "badRequest", f"unsupported action {list(body)}")
    spec = body["createImage"]
    if "createImage" in emu.conflicts or server["task_state"]:
        raise HTTPError(
            409,
            "conflictingRequest",
            f"Cannot 'createImage' instance {server['id']} while it is in "
            "task_state image_snapshot",
        )
    if server["status"] not in ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED"):
        raise HTTPError(
            409,
            "conflictingRequest",
            f"Cannot 'createImage' instance {server['id']} while it is in "
            f"vm_state {server['status'].lower()}",
        )
    for key, value in (spec.get("metadata") or {}).items():
        if len(str(value)) > 255 or len(key) > 255:
            raise HTTPError(400, "badRequest", f"metadata {key} longer than 255 characters")
    image_id = str(uuid.uuid4())
    flavor = emu.flavors[server["flavor_id"]]
    emu.images[image_id] = {
        "id": image_id,
        "name": spec["name"],
        "status": "queued",
        "visibility": "private",
        "container_format": "bare",
        "disk_format": "qcow2",
        "min_disk": flavor["disk"],
        "min_ram": 0,
        "size": None,
        "owner": PROJECT_ID,
        "protected": False,
        "tags": [],
        "created_at": now(),
        "updated_at": now(),
        "image_type": "snapshot",
        "instance_uuid": server["id"],
        "self": f"/v2/images/{image_id}",
        "file": f"/v2/images/{image_id}/file",
        "schema": "/v2/schemas/image",
        "polls": 0,
        **{k: str(v) for k, v in (spec.get("metadata") or {}).items()},
    }
    server["task_state"] = "image_snapshot"
    emu.images[image_id]["_server"] = server["id"]
    emu.images[image_id]["_server_status"] = server["status"]  # running while imaged?
    if mv >= (2, 45):
        return 202, {"image_id": image_id}, {}
    return 202, None, {"Location": f"{h.base}/image/v2/images/{image_id}"}


def _power(emu: Any, server: dict, action: str):
    """os-stop: ACTIVE (or ERROR) -> task_state powering-off -> SHUTOFF after ``stop_polls``
    GETs; os-start: SHUTOFF -> ACTIVE. Other states are a 409, as in Nova."""
    allowed = ("ACTIVE", "ERROR") if action == "stop" else ("SHUTOFF",)
    if action in emu.conflicts or server["task_state"] or server["status"] not in allowed:
        raise HTTPError(
            409,
            "conflictingRequest",
            f"Cannot '{action}' instance {server['id']} while it is in vm_state "
            f"{server['status'].lower()}",
        )
    if action == "stop":
        server["task_state"], server["stopping"] = "powering-off", 0
    else:
        server["status"] = "ACTIVE"
    return 202, None, {}
