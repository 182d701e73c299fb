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
- power: ``os-stop`` takes an ACTIVE server through task_state ``powering-off`` to SHUTOFF
  after ``stop_polls`` GETs (``stop_fate="stuck"``: it never gets there), ``os-start`` makes a
  SHUTOFF server ACTIVE; an image keeps the server's status at the snapshot (``_server_status``);
- injected failures: ``image_fate="killed"`` (the image ends ``killed``), ``"stuck"``
  (saving forever), ``boot_fate="error"`` (the server goes to ERROR with ``fault``),
  ``conflicts`` (409 for an operation), ``hang(...)`` (a request answered only after a delay),
  ``recordset_faults`` (a 500 for the create/update of a Designate recordset),
  ``unavailable(...)`` (503 for a while, as an API behind a restarting load balancer).

Every request is logged in ``requests`` (method, path, microversion header) for assertions.
This module holds the state, the fault injection and the HTTP plumbing; each service answers
from its own module in ``support/emulator/`` (identity, compute, image, dns).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from support.emulator import compute, dns, identity, image
from support.emulator.common import PROJECT_ID, HTTPError, mv_tuple, now


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
        stop_polls: int = 1,
    ):
        self.username, self.password, self.project_name = username, password, project_name
        self.build_polls, self.image_polls = build_polls, image_polls
        self.stop_polls = stop_polls
        self.stop_fate = "shutoff"  # shutoff | stuck
        self.image_fate = "active"  # active | killed | stuck
        self.boot_fate = "active"  # active | error
        self.boot_fault = "No valid host was found. There are not enough hosts available."
        self.conflicts: set[str] = set()  # createImage | delete | boot | stop
        self._hangs: list[tuple[str, re.Pattern, float]] = []
        self._outages: list[dict] = []
        self.requests: list[tuple[str, str, str]] = []
        self.lock = threading.RLock()
        self.servers: dict[str, dict] = {}
        self.images: dict[str, dict] = {}
        self.zones: dict[str, dict] = {}
        self.recordsets: dict[str, dict] = {}
        # (name, type) of Designate recordsets whose create/update answers 500
        self.recordset_faults: set[tuple[str, str]] = set()
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
        fixed: dict[str, list[str]] | None = None,
        access_ipv4: str = "",
    ) -> dict:
        """A server as if booted long ago. ``fixed``: its fixed addresses by network name
        (default: one made up on each of ``networks``); ``access_ipv4``: Nova's accessIPv4."""
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
            server["access_ipv4"] = access_ipv4
            if fixed is not None:
                server["addresses"] = {
                    net: [self._address(6 if ":" in a else 4, "fixed", a) for a in addrs]
                    for net, addrs in fixed.items()
                }
            server["volumes"] = [{"id": v, "delete_on_termination": False} for v in volumes]
            if floating:
                server["addresses"].setdefault("public", []).append(self._address(4, "floating"))
            if ipv6:
                server["addresses"][networks[0]].append(self._address(6, "fixed"))
            return server

    def hang(self, method: str, path_pattern: str, seconds: float) -> None:
        """Answer requests matching ``method`` and the regex only after ``seconds``."""
        self._hangs.append((method, re.compile(path_pattern), seconds))

    def unavailable(
        self, method: str, path_pattern: str, seconds: float, status: int = 503
    ) -> None:
        """Answer requests matching ``method`` and the regex with ``status`` (503 Service
        Unavailable, 502 Bad Gateway, ...) for ``seconds``, counted from the first such
        request (so the outage hits the wait, whenever it starts). openstacksdk itself retries
        a 503 of the image API five times (0.5 s to 8 s apart), nothing else."""
        self._outages.append(
            {
                "method": method,
                "pattern": re.compile(path_pattern),
                "seconds": seconds,
                "status": status,
                "until": None,
                "answered": 0,
            }
        )

    def outage_answers(self) -> int:
        """How many requests the outages answered with 503."""
        return sum(o["answered"] for o in self._outages)

    def clear_faults(self) -> None:
        self.image_fate, self.boot_fate, self.stop_fate = "active", "active", "shutoff"
        self.conflicts.clear()
        self._hangs.clear()
        self.recordset_faults.clear()
        self._outages.clear()

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
    def _address(self, version: int, kind: str, addr: str = "") -> dict:
        n = next(self._ipv4)
        addr = addr or (f"10.0.{n // 250}.{n % 250 + 2}" if version == 4 else f"2001:db8::{n:x}")
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
            "created": now(),
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
        for outage in emu._outages:
            if outage["method"] == method and outage["pattern"].search(path):
                now_ = time.monotonic()
                if outage["until"] is None:
                    outage["until"] = now_ + outage["seconds"]
                if now_ < outage["until"]:
                    outage["answered"] += 1
                    code = outage["status"]
                    return self._send(code, {"error": {"code": code, "message": "outage"}})
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
                    self, method, path, query, body, mv_tuple(mv) if mv else (2, 1)
                )
        except HTTPError as error:
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


_ROUTES = {
    "identity": identity.handle,
    "compute": compute.handle,
    "image": image.handle,
    "dns": dns.handle,
}
