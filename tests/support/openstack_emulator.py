"""A test double of Keystone v3 (tokens), Nova and Glance (and a sliver of Designate) for
openstacksdk: NOT a real OpenStack server.

It answers the subset of requests that real openstacksdk sends for ``server park``/``unpark``,
``images prune`` and the Designate branch of ``ip_fixup``, on a free 127.0.0.1 port, from one
thread per request (stdlib ``http.server``). What matters about real Nova/Glance is mimicked
(DESIGN.md section 5):

- version documents and microversions: the compute root lists v2.1 with max version 2.96;
  ``OpenStack-API-Version: compute 2.X`` selects the shape of replies (flavor by id before
  2.47, by name and properties from 2.47; the createImage image id in a ``Location`` header
  before 2.45, in the body from 2.45; ``networks`` required on boot from 2.37);
- state machines advanced by polls: a server is BUILD for ``build_polls`` GETs, then ACTIVE;
  an image is queued, then saving for ``image_polls`` GETs of that image, then active;
- injected failures: ``image_fate="killed"`` (the image ends ``killed``), ``"stuck"``
  (saving forever), ``boot_fate="error"`` (the server goes to ERROR with ``fault``),
  ``conflicts`` (409 for an operation), ``hang(...)`` (a request answered only after a delay).

Every request is logged in ``requests`` (method, path, microversion header) for assertions.
"""

from __future__ import annotations

import datetime
import itertools
import json
import re
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_MICROVERSION = "2.96"
PROJECT_ID = "0123456789abcdef0123456789abcdef"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mv_tuple(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


class OpenStackEmulator:
    """Start with ``with OpenStackEmulator() as emu:``; ``emu.auth_url`` is Keystone v3."""

    def __init__(
        self,
        *,
        username: str = "admin",
        password: str = "secret",
        project_name: str = "demo",
        build_polls: int = 1,
        image_polls: int = 1,
    ):
        self.username, self.password, self.project_name = username, password, project_name
        self.build_polls, self.image_polls = build_polls, image_polls
        self.image_fate = "active"  # active | killed | stuck
        self.boot_fate = "active"  # active | error
        self.boot_fault = "No valid host was found. There are not enough hosts available."
        self.conflicts: set[str] = set()  # createImage | delete | boot
        self._hangs: list[tuple[str, re.Pattern, float]] = []
        self.requests: list[tuple[str, str, str]] = []
        self.lock = threading.RLock()
        self.servers: dict[str, dict] = {}
        self.images: dict[str, dict] = {}
        self.zones: dict[str, dict] = {}
        self.recordsets: dict[str, dict] = {}
        self.networks = {"private": str(uuid.uuid4()), "public": str(uuid.uuid4())}
        self.flavors = {
            fid: {
                "id": fid,
                "name": name,
                "vcpus": vcpus,
                "ram": ram,
                "disk": disk,
                "OS-FLV-EXT-DATA:ephemeral": 0,
                "swap": 0,
                "rxtx_factor": 1.0,
                "os-flavor-access:is_public": True,
                "OS-FLV-DISABLED:disabled": False,
                "extra_specs": {},
            }
            for fid, name, vcpus, ram, disk in (
                ("1", "m1.small", 1, 2048, 20),
                ("2", "m1.medium", 2, 4096, 40),
                ("3", "m1.large", 4, 8192, 80),
            )
        }
        self._ipv4 = itertools.count(10)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ---- life cycle ---------------------------------------------------------------------
    def start(self) -> OpenStackEmulator:
        emulator = self

        class Handler(_Handler):
            emu = emulator

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> OpenStackEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def auth_url(self) -> str:
        return f"{self.url}/identity/v3"

    def clouds_yaml(self, name: str = "emulator") -> str:
        """A clouds.yaml text naming this emulator as cloud ``name``."""
        return (
            f"clouds:\n  {name}:\n    auth:\n      auth_url: {self.auth_url}\n"
            f"      username: {self.username}\n      password: {self.password}\n"
            f"      project_name: {self.project_name}\n      user_domain_name: Default\n"
            "      project_domain_name: Default\n    region_name: RegionOne\n"
            "    identity_api_version: 3\n"
        )

    # ---- fixtures and fault injection ---------------------------------------------------
    def add_server(
        self,
        name: str,
        *,
        flavor_id: str = "2",
        networks=("private",),
        key_name: str | None = "ops",
        metadata: dict | None = None,
        security_groups=("default",),
        az: str = "nova",
        status: str = "ACTIVE",
        floating: bool = False,
        ipv6: bool = False,
        volumes: tuple[str, ...] = (),
    ) -> dict:
        with self.lock:
            server = self._new_server(
                name,
                flavor_id,
                [self.networks[n] for n in networks],
                key_name,
                metadata or {},
                list(security_groups),
                az,
            )
            server["status"] = status
            server["volumes"] = [{"id": v, "delete_on_termination": False} for v in volumes]
            if floating:
                server["addresses"].setdefault("public", []).append(self._address(4, "floating"))
            if ipv6:
                server["addresses"][networks[0]].append(self._address(6, "fixed"))
            return server

    def hang(self, method: str, path_pattern: str, seconds: float) -> None:
        """Answer requests matching ``method`` and the regex only after ``seconds``."""
        self._hangs.append((method, re.compile(path_pattern), seconds))

    def clear_faults(self) -> None:
        self.image_fate, self.boot_fate = "active", "active"
        self.conflicts.clear()
        self._hangs.clear()

    def add_zone(self, name: str) -> dict:
        zone = {
            "id": str(uuid.uuid4()),
            "name": name,
            "status": "ACTIVE",
            "ttl": 3600,
            "email": "hostmaster@" + name.rstrip("."),
            "type": "PRIMARY",
            "project_id": PROJECT_ID,
            "serial": 1,
            "links": {},
        }
        self.zones[zone["id"]] = zone
        return zone

    def server_named(self, name: str) -> dict | None:
        found = [s for s in self.servers.values() if s["name"] == name]
        return found[0] if found else None

    def microversions(self, path_fragment: str) -> list[str]:
        """The compute microversions requested for paths containing ``path_fragment``."""
        return [mv for _m, p, mv in self.requests if path_fragment in p and mv]

    # ---- internals ------------------------------------------------------------------------
    def _address(self, version: int, kind: str) -> dict:
        n = next(self._ipv4)
        addr = f"10.0.{n // 250}.{n % 250 + 2}" if version == 4 else f"2001:db8::{n:x}"
        if kind == "floating":
            addr = f"203.0.113.{n % 250 + 2}"
        return {
            "addr": addr,
            "version": version,
            "OS-EXT-IPS:type": kind,
            "OS-EXT-IPS-MAC:mac_addr": f"fa:16:3e:00:{n // 256 % 256:02x}:{n % 256:02x}",
        }

    def _new_server(self, name, flavor_id, net_ids, key_name, metadata, groups, az) -> dict:
        names = {v: k for k, v in self.networks.items()}
        server = {
            "id": str(uuid.uuid4()),
            "name": name,
            "status": "BUILD",
            "flavor_id": flavor_id,
            "image": {},
            "key_name": key_name,
            "metadata": dict(metadata),
            "security_groups": [{"name": g} for g in groups],
            "az": az,
            "addresses": {names[n]: [self._address(4, "fixed")] for n in net_ids},
            "net_ids": list(net_ids),
            "created": _now(),
            "polls": 0,
            "tenant_id": PROJECT_ID,
            "task_state": None,
        }
        self.servers[server["id"]] = server
        return server


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that gave up (the injected hang) is expected: no traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    emu: OpenStackEmulator
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes

    def log_message(self, *args) -> None:  # quiet
        pass

    # ---- plumbing -------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw.strip() else None
        mv_header = self.headers.get("OpenStack-API-Version", "")
        match = re.search(r"compute\s+([\d.]+)", mv_header)
        mv = match.group(1) if match else self.headers.get("X-OpenStack-Nova-API-Version", "")
        emu = self.emu
        emu.requests.append((method, path, mv))
        for hang_method, pattern, seconds in list(emu._hangs):
            if hang_method == method and pattern.search(path):
                time.sleep(seconds)
        if (
            not path.startswith("/identity")
            and path not in ("/", "/compute", "/image", "/dns")
            and self.headers.get("X-Auth-Token") != "emulator-token"
        ):
            return self._send(401, {"error": {"code": 401, "message": "not authenticated"}})
        try:
            route = _ROUTES.get(path.split("/")[1] if path != "/" else "")
            if route is None:
                return self._send(404, {"itemNotFound": {"code": 404, "message": path}})
            with emu.lock:
                status, payload, headers = route(
                    self, method, path, query, body, _mv_tuple(mv) if mv else (2, 1)
                )
        except _HTTPError as error:
            status, payload, headers = error.status, error.payload, {}
        self._send(status, payload, headers)

    def _send(self, status: int, payload, headers: dict | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self):  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self):  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self):  # noqa: N802
        self._dispatch("DELETE")

    def do_HEAD(self):  # noqa: N802
        self._dispatch("GET")

    @property
    def base(self) -> str:
        return f"http://{self.headers.get('Host')}"


class _HTTPError(Exception):
    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status = status
        self.payload = {kind: {"code": status, "message": message}}


def _not_found(what: str):
    return _HTTPError(404, "itemNotFound", f"{what} could not be found.")


# ---- Keystone -------------------------------------------------------------------------------
def _identity(h: _Handler, method, path, query, body, mv):
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
            raise _HTTPError(401, "error", "The request you have made requires authentication.")
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
            "issued_at": _now(),
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
    raise _not_found(path)


# ---- Nova -----------------------------------------------------------------------------------
def _compute(h: _Handler, method, path, query, body, mv):
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
        raise _not_found(path)
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
        raise _not_found(path)
    if len(parts) == 1 or parts[1] == "detail":
        if method == "POST" and len(parts) == 1:
            status, payload = _boot(h, body, mv)
            return status, payload, headers
        servers = [
            s
            for s in emu.servers.values()
            if "name" not in query or re.search(query["name"], s["name"])
        ]
        return 200, {"servers": [_server_view(h, s, mv) for s in servers]}, headers
    server = emu.servers.get(parts[1])
    if server is None:
        raise _not_found(f"Instance {parts[1]}")
    if len(parts) == 2:
        if method == "DELETE":
            if "delete" in emu.conflicts:
                raise _HTTPError(
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
                raise _not_found(f"Instance {parts[1]}")
        elif server["status"] == "BUILD":
            server["polls"] += 1
            if server["polls"] >= emu.build_polls:
                server["status"] = "ACTIVE" if emu.boot_fate == "active" else "ERROR"
                if server["status"] == "ERROR":
                    server["fault"] = {"code": 500, "created": _now(), "message": emu.boot_fault}
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
    raise _not_found(path)


def _flavors(emu: OpenStackEmulator, parts, query):
    if len(parts) == 1 or parts[1] == "detail":
        return 200, {"flavors": [dict(f, links=[]) for f in emu.flavors.values()]}
    flavor = emu.flavors.get(parts[1])
    if flavor is None:
        raise _not_found(f"Flavor {parts[1]}")
    if len(parts) == 3 and parts[2] == "os-extra_specs":
        return 200, {"extra_specs": flavor["extra_specs"]}
    return 200, {"flavor": dict(flavor, links=[])}


def _server_view(h: _Handler, server: dict, mv) -> dict:
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
        "updated": _now(),
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
        "accessIPv4": "",
        "accessIPv6": "",
        "progress": 0,
        "hostId": "h1",
        "links": [{"rel": "self", "href": f"{h.base}/compute/v2.1/servers/{server['id']}"}],
    }
    if "fault" in server:
        view["fault"] = server["fault"]
    return view


def _boot(h: _Handler, body, mv):
    emu = h.emu
    spec = (body or {}).get("server", {})
    if "boot" in emu.conflicts:
        raise _HTTPError(409, "conflictingRequest", "Quota exceeded or conflicting request.")
    networks = spec.get("networks")
    if mv >= (2, 37) and networks is None:
        raise _HTTPError(
            400,
            "badRequest",
            "Invalid input for field/attribute server. 'networks' is a required property",
        )
    for key in ("name", "imageRef", "flavorRef"):
        if not spec.get(key):
            raise _HTTPError(400, "badRequest", f"'{key}' is a required property")
    if spec["imageRef"] not in emu.images or emu.images[spec["imageRef"]]["status"] != "active":
        raise _HTTPError(400, "badRequest", f"Image {spec['imageRef']} is not active.")
    flavor_id = spec["flavorRef"].rsplit("/", 1)[-1]
    if flavor_id not in emu.flavors:
        raise _HTTPError(400, "badRequest", f"Flavor {flavor_id} could not be found.")
    if networks in ("auto", None):
        net_ids = [emu.networks["private"]]
    elif networks == "none":
        net_ids = []
    else:
        net_ids = [n.get("uuid") for n in networks]
        unknown = [n for n in net_ids if n not in emu.networks.values()]
        if unknown:
            raise _HTTPError(400, "badRequest", f"Network {unknown[0]} could not be found.")
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


def _action(h: _Handler, server: dict, body: dict, mv):
    emu = h.emu
    if "createImage" not in body:
        raise _HTTPError(400, "badRequest", f"unsupported action {list(body)}")
    spec = body["createImage"]
    if "createImage" in emu.conflicts or server["task_state"]:
        raise _HTTPError(
            409,
            "conflictingRequest",
            f"Cannot 'createImage' instance {server['id']} while it is in "
            "task_state image_snapshot",
        )
    if server["status"] not in ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED"):
        raise _HTTPError(
            409,
            "conflictingRequest",
            f"Cannot 'createImage' instance {server['id']} while it is in "
            f"vm_state {server['status'].lower()}",
        )
    for key, value in (spec.get("metadata") or {}).items():
        if len(str(value)) > 255 or len(key) > 255:
            raise _HTTPError(400, "badRequest", f"metadata {key} longer than 255 characters")
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
        "created_at": _now(),
        "updated_at": _now(),
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
    if mv >= (2, 45):
        return 202, {"image_id": image_id}, {}
    return 202, None, {"Location": f"{h.base}/image/v2/images/{image_id}"}


# ---- Glance ---------------------------------------------------------------------------------
_IMAGE_PRIVATE = ("polls", "_server")


def _image_view(image: dict) -> dict:
    return {k: v for k, v in image.items() if k not in _IMAGE_PRIVATE}


def _image(h: _Handler, method, path, query, body, mv):
    emu = h.emu
    if path == "/image":
        return (
            300,
            {
                "versions": [
                    {
                        "id": "v2.16",
                        "status": "CURRENT",
                        "links": [{"rel": "self", "href": f"{h.base}/image/v2/"}],
                    }
                ]
            },
            {},
        )
    parts = path.split("/")[2:]
    if parts[:2] != ["v2", "images"]:
        raise _not_found(path)
    if len(parts) == 2:
        images = sorted(emu.images.values(), key=lambda i: i["created_at"])
        if "name" in query:
            images = [i for i in images if i["name"] == query["name"]]
        return (
            200,
            {
                "images": [_image_view(i) for i in images],
                "schema": "/v2/schemas/images",
                "first": "/v2/images",
            },
            {},
        )
    image = emu.images.get(parts[2])
    if image is None:
        raise _not_found(f"Image {parts[2]}")
    if method == "DELETE":
        del emu.images[image["id"]]
        return 204, None, {}
    if method == "GET" and image["status"] in ("queued", "saving"):
        image["polls"] += 1
        if image["status"] == "queued":
            image["status"] = "saving"
        elif image["polls"] > emu.image_polls and emu.image_fate != "stuck":
            image["status"] = "active" if emu.image_fate == "active" else "killed"
            image["size"] = 123456789 if image["status"] == "active" else None
            image["updated_at"] = _now()
            owner = emu.servers.get(image["_server"])
            if owner is not None:
                owner["task_state"] = None
    return 200, _image_view(image), {}


# ---- Designate (zones and recordsets) -------------------------------------------------------
def _dns(h: _Handler, method, path, query, body, mv):
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
        raise _not_found(path)
    if len(parts) == 2:
        zones = [z for z in emu.zones.values() if query.get("name") in (None, z["name"])]
        return 200, {"zones": zones, "links": {}, "metadata": {"total_count": len(zones)}}, {}
    zone = emu.zones.get(parts[2])
    if zone is None:
        raise _not_found(f"zone {parts[2]}")
    if len(parts) == 3:
        return 200, zone, {}
    if parts[3] != "recordsets":
        raise _not_found(path)
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
        raise _not_found(f"recordset {parts[4]}")
    if method == "PUT":
        rs.update({k: v for k, v in body.items() if k in ("records", "ttl", "description")})
        return 202, rs, {}
    if method == "DELETE":
        del emu.recordsets[rs["id"]]
        return 202, rs, {}
    return 200, rs, {}


_ROUTES = {"identity": _identity, "compute": _compute, "image": _image, "dns": _dns}
