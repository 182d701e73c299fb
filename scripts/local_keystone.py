#!/usr/bin/env python3
"""A real, throw-away Keystone v3 on 127.0.0.1 for the Keystone test tier and for trying cfbackup.

``keystone`` from PyPI (in .venv-keystone/, made by scripts/setup_keystone.sh), sqlite, fernet
tokens, served by Debian's uwsgi. Standard library only at import time; Keystone itself runs in
.venv-keystone's Python (``keystone_config.py``, which also writes keystone.conf and holds the
test identities) and under uwsgi, started and stopped through ``supervise.py``.

    python scripts/local_keystone.py run [--expiration S] [--with-swift]    # foreground, JSON
    python scripts/local_keystone.py start --state-file F [--with-swift]    # background
    python scripts/local_keystone.py stop --state-file F

What it holds (keystone_config.IDENTITIES): the bootstrap admin; a ``swift`` service user for
Swift's keystonemiddleware; user ``backup`` (domain ``BackupDomain``) with ``member`` on the
projects ``backups``, ``expiry-password``, ``expiry-appcred`` and ``nocatalog``; user ``auditor``
(domain ``Default``) with only ``reader`` on ``backups`` (Swift refuses it: 403). The catalog has
identity and object-store (public + internal) in ``RegionOne``, and an empty ``RegionTwo``; project
``nocatalog`` sees only the identity endpoint (an endpoint-filter association).

Measured on this machine (keystone 30, uwsgi 2.0.21-debian; keep them true here):
- ``keystone-manage db_sync``, ``fernet_setup``, ``credential_setup`` and ``bootstrap`` as four
  processes cost four Keystone imports (~5 s CPU each). They run once, in one interpreter, when
  the template (.venv-keystone/cfbackup-template) is built; a session copies that template,
  points the identity endpoint at its own port (sqlite UPDATE) and starts uwsgi: a few seconds.
- uwsgi must serve ``--http11-socket`` with ``--http-keepalive`` (Debian: load the ``http``
  plugin for that option): a plain ``--http-socket`` resets keystoneauth1's pooled connection
  on the second request.
- ``[identity] password_hash_rounds = 4``: bcrypt's default (12) costs ~0.6 s per password or
  application-credential authentication; a test session makes hundreds.
- ``[cache] enabled`` with dogpile's in-process memory backend: without it every token
  validation recomputes the role assignments (~650 SQL lookups, 0.5 s of CPU, 1-3 s on a busy
  machine; with it 20 ms). One uwsgi process, so the cache is coherent. ``[catalog] caching``
  stays off, so an endpoint URL changed in sqlite (set_endpoint) is served at once.
- keystoneauth1 re-authenticates whenever a token has less than 120 s left, so with a short
  ``[token] expiration`` every fresh session asks for a new token; swiftclient keeps its token
  until Swift answers 401.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import supervise
from keystone_config import TEMPLATE_VERSION, config

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv-keystone"
UWSGI = "/usr/bin/uwsgi"

def _request(method: str, url: str, body: dict | None = None, headers: dict | None = None,
             timeout: float = 30.0) -> tuple[int, dict, dict]:
    """(status, headers, JSON body or {}) of one request; never raises for an HTTP status."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw, status, hdrs = resp.read(), resp.status, dict(resp.headers)
    except urllib.error.HTTPError as err:
        raw, status, hdrs = err.read(), err.code, dict(err.headers)
    try:
        return status, hdrs, json.loads(raw) if raw else {}
    except ValueError:
        return status, hdrs, {}


def password_auth(username: str, password: str, user_domain: str, project: str | None,
                  project_domain: str | None = None) -> dict:
    """A /v3/auth/tokens body for password authentication, scoped to ``project``."""
    body: dict = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": username, "domain": {"name": user_domain}, "password": password}}}}}
    if project:
        body["auth"]["scope"] = {"project": {"name": project,
                                             "domain": {"name": project_domain or user_domain}}}
    return body


class LocalKeystone:
    """A real Keystone (sqlite, fernet) under uwsgi on a free 127.0.0.1 port."""

    def __init__(self, base_dir: str | os.PathLike | None = None, *, token_expiration: int = 3600,
                 venv: str | os.PathLike = VENV):
        self._owns_dir = base_dir is None
        self.base_dir = Path(base_dir) if base_dir else None
        self.token_expiration = int(token_expiration)
        self.venv = Path(venv)
        self.port = 0
        self.pid: int | None = None
        self._popen: subprocess.Popen | None = None
        self.identities: dict = {}

    # ---- public API -------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The identity endpoint, as clients are given it (``auth_url``)."""
        return f"http://127.0.0.1:{self.port}/v3"

    @property
    def template_dir(self) -> Path:
        return self.venv / "cfbackup-template"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "uwsgi.log"

    def start(self, timeout: float = 90.0, *, wait: bool = True) -> LocalKeystone:
        """Copy (building it first if needed) the bootstrapped template, start uwsgi and wait
        until /v3 answers (``wait=False``: call wait_ready() later, e.g. after starting Swift
        while Keystone imports). On failure everything is stopped and the log is quoted."""
        if self.pid:
            raise RuntimeError("already started")
        for need in (self.venv / "bin" / "python", Path(UWSGI)):
            if not need.exists():
                raise RuntimeError(f"{need} is missing: run scripts/setup_keystone.sh")
        self.ensure_template()
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="local-keystone-"))
        atexit.register(self.stop)
        try:
            self._setup()
            self._spawn()
        except BaseException:
            self.stop()
            raise
        return self.wait_ready(timeout) if wait else self

    def wait_ready(self, timeout: float = 90.0) -> LocalKeystone:
        try:
            self._wait_ready(time.monotonic() + timeout)
        except BaseException as exc:
            log = self._log_tail()
            self.stop()
            if isinstance(exc, Exception):
                raise RuntimeError(f"local Keystone failed to start: {exc}\n{log}") from exc
            raise
        return self

    def stop(self) -> None:
        """SIGTERM uwsgi's process group, SIGKILL after 10 s; idempotent."""
        if self.pid and self._owned():
            supervise.stop_groups([self.pid], lambda _pgid: self._alive(), grace=10.0,
                                  kill_wait=5.0)
            if self._popen is not None:
                self._popen.wait(timeout=5)
        self.pid, self._popen = None, None
        atexit.unregister(self.stop)
        if self._owns_dir and self.base_dir is not None and self.base_dir.exists():
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> LocalKeystone:
        return self.start() if not self.pid else self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _template_ready(self) -> bool:
        stamp = self.template_dir / "identities.json"
        try:
            return json.loads(stamp.read_text()).get("version") == TEMPLATE_VERSION
        except (OSError, ValueError):
            return False

    def ensure_template(self) -> None:
        """Build .venv-keystone/cfbackup-template unless it is there for this version."""
        if self._template_ready():
            return
        building = self.venv / f"cfbackup-template.{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        script = Path(__file__).resolve().parent / "keystone_config.py"
        out = subprocess.run([str(self.venv / "bin" / "python"), "-W", "ignore", str(script),
                              str(building)], capture_output=True, text=True)
        if out.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            raise RuntimeError(f"building the Keystone template failed:\n{out.stdout}"
                               f"{out.stderr[-4000:]}")
        if self._template_ready():  # another session built it meanwhile: theirs is as good
            shutil.rmtree(building, ignore_errors=True)
            return
        shutil.rmtree(self.template_dir, ignore_errors=True)
        try:
            building.rename(self.template_dir)
        except OSError:
            shutil.rmtree(building, ignore_errors=True)

    def set_endpoint(self, service_type: str, url: str, interface: str | None = None) -> None:
        """Point every endpoint of ``service_type`` (or only its ``interface`` one) at ``url``
        (may hold ``%(project_id)s``)."""
        with sqlite3.connect(self.base_dir / "keystone.db", timeout=30) as db:
            db.execute("UPDATE endpoint SET url = ? WHERE service_id IN "
                       "(SELECT id FROM service WHERE type = ?)"
                       + (" AND interface = ?" if interface else ""),
                       (url, service_type, *([interface] if interface else [])))

    def user(self, key: str) -> dict:
        """{"id", "name", "domain", "domain_id", "password"} of a user in IDENTITIES."""
        return self.identities["users"][key]

    def project(self, name: str) -> dict:
        """{"id", "name", "domain", "domain_id"} of a project in IDENTITIES."""
        return self.identities["projects"][name]

    def token(self, user: str = "backup", project: str | None = "backups") -> tuple[str, dict]:
        """(token, token body) for a user in IDENTITIES, scoped to ``project``."""
        u = self.user(user)
        body = password_auth(u["name"], u["password"], u["domain"], project,
                             self.project(project)["domain"] if project else None)
        status, headers, data = _request("POST", f"{self.url}/auth/tokens", body)
        if status != 201:
            raise RuntimeError(f"Keystone answered {status} for {user}: {data}")
        return headers["X-Subject-Token"], data["token"]

    def swift_settings(self) -> dict:
        """Keystone settings for ``LocalSwift(keystone=...)``: its service user and a probe
        user for the readiness check."""
        service, probe = self.user("swift"), self.user("backup")
        return {
            "auth_url": self.url,
            "username": service["name"], "password": service["password"],
            "user_domain_name": service["domain"], "project_name": "service",
            "project_domain_name": "Default",
            "probe": {"username": probe["name"], "password": probe["password"],
                      "user_domain_name": probe["domain"], "project_name": "backups",
                      "project_domain_name": self.project("backups")["domain"]},
        }

    def create_application_credential(self, name: str, *, user: str = "backup",
                                      project: str = "backups",
                                      expires_at: str | None = None) -> tuple[str, str]:
        """(id, secret) of a new application credential of ``user`` on ``project``."""
        token, _ = self.token(user, project)
        body = {"application_credential": {"name": name}}
        if expires_at:
            body["application_credential"]["expires_at"] = expires_at
        status, _, data = _request(
            "POST", f"{self.url}/users/{self.user(user)['id']}/application_credentials", body,
            {"X-Auth-Token": token})
        if status != 201:
            raise RuntimeError(f"creating application credential {name}: {status} {data}")
        cred = data["application_credential"]
        return cred["id"], cred["secret"]

    def delete_application_credential(self, credential_id: str, *, user: str = "backup",
                                      project: str = "backups") -> None:
        token, _ = self.token(user, project)
        status, _, data = _request(
            "DELETE",
            f"{self.url}/users/{self.user(user)['id']}/application_credentials/{credential_id}",
            None, {"X-Auth-Token": token})
        if status != 204:
            raise RuntimeError(f"deleting application credential: {status} {data}")

    # ---- state file (for `start`/`stop` from the command line) -------------------------
    def state(self) -> dict:
        return {"base_dir": str(self.base_dir), "owns_dir": self._owns_dir, "url": self.url,
                "port": self.port, "pid": self.pid, "log": str(self.log_file),
                "token_expiration": self.token_expiration, "identities": self.identities}

    def detach(self) -> None:
        atexit.unregister(self.stop)
        self._popen = None
        self.pid = None
        self._owns_dir = False

    @classmethod
    def from_state(cls, state: dict) -> LocalKeystone:
        self = cls(state["base_dir"], token_expiration=state["token_expiration"])
        self._owns_dir, self.port, self.pid = state["owns_dir"], state["port"], state["pid"]
        self.identities = state["identities"]
        return self

    # ---- internals ---------------------------------------------------------------------
    def _setup(self) -> None:
        base = self.base_dir
        template = self.template_dir
        shutil.copy2(template / "keystone.db", base / "keystone.db")
        for keys in ("fernet-keys", "credential-keys"):
            shutil.rmtree(base / keys, ignore_errors=True)
            shutil.copytree(template / keys, base / keys)
        self.identities = json.loads((template / "identities.json").read_text())
        self.port = supervise.free_ports(1)[0]
        (base / "keystone.conf").write_text(config(base, self.token_expiration))
        self.set_endpoint("identity", self.url)

    def _spawn(self) -> None:
        argv = [UWSGI, "--plugins", "http,python3", "--http11-socket", f"127.0.0.1:{self.port}",
                "--http-keepalive", "--virtualenv", str(self.venv),
                "--module", "keystone.wsgi.api:application", "--master", "--processes", "1",
                "--threads", "4", "--die-on-term", "--need-app", "--buffer-size", "65535",
                "--disable-logging", "--log-5xx", "--log-4xx"]
        env = dict(os.environ, OS_KEYSTONE_CONFIG_FILES=str(self.base_dir / "keystone.conf"),
                   PYTHONWARNINGS="ignore")
        env.pop("PYTHONPATH", None)
        self._popen = supervise.spawn(argv, self.log_file, env, self.base_dir)
        self.pid = self._popen.pid

    def _owned(self) -> bool:
        """Guard against pid reuse when stopping from a state file: our uwsgi, our port."""
        if self._popen is not None:
            return True
        argv = supervise.cmdline(self.pid) or []
        return argv[:1] == [UWSGI.encode()] and f"127.0.0.1:{self.port}".encode() in argv

    def _alive(self) -> bool:
        return supervise.group_alive(self.pid, self._popen)

    def _wait_ready(self, deadline: float) -> None:
        while True:
            if self._popen is not None and self._popen.poll() is not None:
                raise RuntimeError(f"uwsgi exited with {self._popen.returncode}")
            try:
                if _request("GET", self.url, timeout=2.0)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"Keystone not ready on port {self.port}")
            time.sleep(0.1)
        self.token("backup", "backups")  # the database and the fernet keys work

    def _log_tail(self, lines: int = 30) -> str:
        if self.base_dir is None:
            return ""
        texts = []
        for log in (self.log_file, self.base_dir / "keystone.log"):
            if log.exists():
                texts.append(f"--- {log.name} ---\n" + "\n".join(
                    log.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(texts)


def start_with_swift(keystone: LocalKeystone, **swift_kwargs):
    """Start ``keystone`` (when it is not yet) and a keystone-mode LocalSwift trusting it, and
    point the catalog's object-store endpoints at that Swift. Returns the LocalSwift."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from local_swift import LocalSwift

    if not keystone.pid:
        keystone.start(wait=False)  # Swift starts while Keystone imports (~4 s of CPU each)
    swift = LocalSwift(keystone=keystone.swift_settings(), **swift_kwargs)
    try:
        swift.start(timeout=120)  # its readiness check waits for Keystone's first token
        keystone.wait_ready()
        keystone.set_endpoint("object-store", f"{swift.proxy_url}/v1/AUTH_%(project_id)s")
    except BaseException:
        swift.stop()
        keystone.stop()
        raise
    return swift


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "start", "stop"])
    parser.add_argument("--dir", help="base directory (default: a new temp dir, removed)")
    parser.add_argument("--state-file", help="JSON state for start/stop")
    parser.add_argument("--expiration", type=int, default=3600, help="[token] expiration, s")
    parser.add_argument("--with-swift", action="store_true",
                        help="also start a local Swift that trusts this Keystone")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command in ("start", "stop") and not args.state_file:
        parser.error(f"{args.command} needs --state-file")
    if args.command == "stop":
        state_file = Path(args.state_file)
        state = json.loads(state_file.read_text())
        if state.get("swift"):
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from local_swift import LocalSwift

            LocalSwift.from_state(state["swift"]).stop()
        LocalKeystone.from_state(state).stop()
        state_file.unlink()
        return 0

    def interrupt(*_):
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)
    keystone = LocalKeystone(args.dir, token_expiration=args.expiration)
    swift = None
    try:
        keystone.start()
        if args.with_swift:
            swift = start_with_swift(keystone)
        info = keystone.state()
        if swift is not None:
            info["swift"] = swift.state()
        if args.command == "start":
            Path(args.state_file).write_text(json.dumps(info, indent=2))
            keystone.detach()
            if swift is not None:
                swift.detach()
        if swift is not None:
            del info["swift"]["processes"]
        print(json.dumps(info, indent=2), flush=True)
        while args.command == "run":
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        if swift is not None:
            swift.stop()
        keystone.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
