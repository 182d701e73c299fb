#!/usr/bin/env python3
"""A real, throw-away OpenStack Swift on 127.0.0.1 for the tests, the demo and the benchmarks.

Proxy, account, container and object servers from the ``swift`` package, their updaters,
memcached (tempauth keeps tokens there) and tempauth users, all on free loopback ports under
one directory. Standard library only at import time; Swift itself runs in child processes.

    python scripts/local_swift.py run [--dir DIR]          # foreground, prints JSON
    python scripts/local_swift.py start --state-file F     # background, state in F
    python scripts/local_swift.py stop --state-file F

Surprises about Swift on this machine (measured with swift 2.38.3, keep them true here):
- Swift finds swift.conf (the hash path suffix) through ``swift_dir`` only in a WSGI server's
  conf; its daemons (updaters) always open /etc/swift/swift.conf (FileNotFoundError without
  it). Every Swift process therefore starts through ``local_swift.py _launch``, which calls
  ``utils.set_swift_dir`` (and reloads policies/constraints) before the real ``main()``:
  nothing is written to /etc/swift.
- No syslog here: without ``-v`` (log to console) Swift's errors are invisible.
- Every Swift server and daemon calls setsid() at start (clean_up_daemon_hygiene), leaving
  the caller's process group; start_new_session=True makes that a no-op, so each one is its
  own group and stop() kills it with its forks. ``workers = 0``: one process per server.
- Daemons drop privileges to ``user`` (default "swift", absent here): we use the current user.
- X-Account-Bytes-Used only moves when the container-updater sweeps (300 s by default);
  it runs here as a daemon every ``updater_interval`` seconds. Each sweep is a fork of that
  daemon (no new interpreter), but walking the containers costs: with a 5 s interval the
  container and object updaters took about 80 s of CPU in 380 s (measured). Tests that need
  the account's usage to catch up call ``run_container_updaters_once()`` instead.
- swift-ring-builder costs ~0.7 s of imports per call; the nine calls run in one interpreter
  (which must update sys.argv in place: swift.cli.ringbuilder binds it at import).
- Start-up takes 3.5-4.5 s (5.5-6.5 s with three object servers) on this 2-core machine.

Keystone mode (``LocalSwift(keystone={...})``, see scripts/local_keystone.py) trusts a Keystone
instead of tempauth; what its proxy config needs is in ``swift_config.py``, which writes every
config, swift.conf and the rings. ``supervise.py`` runs and stops the processes.
"""
from __future__ import annotations

import argparse
import atexit
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import supervise
import swift_config


def _launch(argv: list[str]) -> int:
    """`_launch SWIFT_DIR MODULE ARGS...`: run a Swift entry point after pointing Swift at our
    swift.conf (its daemons otherwise read /etc/swift/swift.conf; see module doc)."""
    from swift.common import utils

    utils.set_swift_dir(argv[0])
    from swift.common import constraints, storage_policy

    storage_policy.reload_storage_policies()
    constraints.reload_constraints()
    sys.argv = [argv[1], *argv[2:]]
    return importlib.import_module(argv[1]).main()


def _account_sysmeta(argv: list[str]) -> int:
    """`_account_sysmeta SWIFT_DIR ACCOUNT HEADERS_JSON`: PUT the account on its account
    server(s) with those headers (sysmeta is stripped from client requests by the proxy)."""
    import http.client

    from swift.common import utils

    utils.set_swift_dir(argv[0])
    from swift.common.ring import Ring

    account, headers = argv[1], json.loads(argv[2])
    part, nodes = Ring(argv[0], ring_name="account").get_nodes(account)
    for node in nodes:
        conn = http.client.HTTPConnection(node["ip"], node["port"], timeout=10)
        path = f"/{node['device']}/{part}/{urllib.request.quote(account)}"
        conn.request("PUT", path, headers={"X-Timestamp": utils.Timestamp.now().internal,
                                           **headers})
        resp = conn.getresponse()
        resp.read()
        if resp.status // 100 != 2:
            sys.exit(f"account server {node['port']} answered {resp.status} to PUT {path}")
    return 0


def _http(method: str, url: str, headers: dict | None = None, timeout: float = 5.0):
    """(status, headers) of one request; never raises for an HTTP error status."""
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            return resp.status, resp.headers
    except urllib.error.HTTPError as err:
        return err.code, err.headers


class LocalSwift:
    """A real Swift (proxy + account + container + object servers from the `swift` package,
    memcached, tempauth) on free 127.0.0.1 ports under a temp dir."""

    def __init__(self, base_dir: str | os.PathLike | None = None, *, replicas: int = 1,
                 object_servers: int = 1, updater_interval: float = 2.0,
                 keystone: dict | None = None, proxy_ip: str = "127.0.0.1"):
        """``keystone``: trust that Keystone instead of tempauth. Keys: auth_url, the service
        user (username, password, user_domain_name, project_name, project_domain_name),
        optional operator_roles, and ``probe`` (a user and project, same keys) whose token
        proves readiness. ``proxy_ip``: the address the proxy listens on (the benchmark's
        WAN binds it to a veth address inside a network namespace; tempauth hands out storage
        URLs on the host the client asked); the other servers stay on 127.0.0.1."""
        if not 1 <= replicas <= object_servers:
            raise ValueError("need 1 <= replicas <= object_servers")
        self.keystone = dict(keystone) if keystone else None
        self.proxy_ip = proxy_ip
        self._owns_dir = base_dir is None
        self.base_dir = Path(base_dir) if base_dir else None
        self.replicas, self.object_servers = replicas, object_servers
        self.updater_interval = updater_interval
        self.users = ({} if keystone else
                      {name: (u, k) for name, (u, k, _g) in swift_config.TEMPAUTH.items()})
        self._procs: dict[str, dict] = {}  # name -> {"argv", "log", "pid", "port"}
        self._popen: dict[str, subprocess.Popen] = {}
        self.auth_url = self.proxy_url = ""

    # ---- public API -------------------------------------------------------------------
    @property
    def log_dir(self) -> Path:
        return self.base_dir / "log"

    @property
    def memcache_port(self) -> int:
        """memcached's port: tempauth keeps its tokens there and nowhere else (flushing it
        revokes every token issued so far, which tempauth has no call for)."""
        return self._procs["memcached"]["port"]

    def storage_url(self, account: str = "test") -> str:
        return f"{self.proxy_url}/v1/AUTH_{account}"

    def set_account_sysmeta(self, account: str, headers: dict[str, str]) -> None:
        """Write ``X-Account-Sysmeta-*`` headers (which the proxy never accepts from a client)
        straight to the account server, creating the account. Do it before the proxy first
        touches the account: it caches account info."""
        out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "_account_sysmeta",
                              str(self.base_dir), account, json.dumps(headers)],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"setting sysmeta of {account} failed:\n{out.stdout}{out.stderr}")

    def env_v1(self, who: str = "admin") -> dict[str, str]:
        """Environment for duplicity (SWIFT_*) and swiftclient (ST_*; DESIGN.md section 5)."""
        user, key = self.users[who]
        return {"SWIFT_AUTHURL": self.auth_url, "SWIFT_USERNAME": user, "SWIFT_PASSWORD": key,
                "SWIFT_AUTHVERSION": "1", "ST_AUTH": self.auth_url, "ST_USER": user,
                "ST_KEY": key}

    def start(self, timeout: float = 120.0) -> LocalSwift:
        """Build rings, write configs, start everything, wait until an authenticated
        request works (a deadline, not a wait: a loaded machine may need a minute). On
        failure everything started is stopped and the logs are quoted."""
        if self._procs:
            raise RuntimeError("already started")
        if importlib.util.find_spec("swift") is None:
            raise RuntimeError("run me with the project's .venv python (`uv sync --all-extras`)")
        if shutil.which("memcached") is None:
            raise RuntimeError("memcached not found (Debian: apt-get install memcached)")
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="local-swift-"))
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        try:
            self._setup()
            for name in self._procs:
                self._spawn(name)
            self._wait_ready(deadline)
        except BaseException as exc:
            logs = self._log_tails()
            self.stop()
            if isinstance(exc, Exception):
                raise RuntimeError(f"local Swift failed to start: {exc}\n{logs}") from exc
            raise
        return self

    def stop(self) -> None:
        """SIGTERM every process group, SIGKILL what is left after 5 s; idempotent."""
        self._kill(list(self._procs), grace=5.0)
        self._procs.clear()
        atexit.unregister(self.stop)
        if self._owns_dir and self.base_dir is not None and self.base_dir.exists():
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def stop_proxy(self) -> None:
        """Stop the proxy (clients get connection refused) until start_proxy()."""
        self._kill(["proxy"], grace=5.0)

    def start_proxy(self, timeout: float = 60.0) -> None:
        """Start the proxy again on the same port and wait for its /healthcheck."""
        self._spawn("proxy")
        self._wait_healthy("proxy", time.monotonic() + timeout)

    def run_container_updaters_once(self, timeout: float = 120.0) -> None:
        """One sweep of every container-updater now (``once`` mode, a separate process each):
        the account's usage (X-Account-Bytes-Used) catches up with its containers, without
        running the updater daemons often (each sweep forks and costs CPU all session long)."""
        self._run_updaters_once("container", timeout)

    def run_object_updaters_once(self, timeout: float = 120.0) -> None:
        """One sweep of every object-updater now: the container updates an object server could
        not make at once (its container server answered after ``container_update_timeout``,
        1 s: a loaded machine) and left in ``async_pending`` reach the container's usage."""
        self._run_updaters_once("object", timeout)

    def _run_updaters_once(self, kind: str, timeout: float) -> None:
        updaters = [n for n in self._procs if n.startswith(kind) and n.endswith("-updater")]
        if not updaters:
            raise RuntimeError(f"no {kind}-updater in this Swift: {sorted(self._procs)}")
        for name, proc in self._procs.items():
            if name in updaters:
                conf = proc["argv"][proc["argv"].index("-v") - 1]
                module = proc["argv"][proc["argv"].index("-v") - 2]
                done = subprocess.run(
                    [*self._swift_argv(module, Path(conf)), "once"], capture_output=True,
                    text=True, timeout=timeout, cwd=self.base_dir,
                    env=dict(os.environ, TMPDIR=str(self.base_dir / "tmp")))
                if done.returncode != 0:
                    raise RuntimeError(f"{name} once failed:\n{done.stdout}{done.stderr}")

    def kill_object_server(self, index: int) -> None:
        """SIGKILL object server ``index`` (a disk/node failure for replicas=3 tests)."""
        self._kill([f"object{index}"], grace=0.0)

    def start_object_server(self, index: int, timeout: float = 60.0) -> None:
        """Bring a killed object server back."""
        self._spawn(f"object{index}")
        self._wait_healthy(f"object{index}", time.monotonic() + timeout)

    def __enter__(self) -> LocalSwift:
        return self.start() if not self._procs else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- state file (for `start`/`stop` from the command line) -------------------------
    def state(self) -> dict:
        return {"base_dir": str(self.base_dir), "owns_dir": self._owns_dir,
                "auth_url": self.auth_url, "proxy_url": self.proxy_url,
                "storage_url": self.storage_url(), "users": self.users,
                "log_dir": str(self.log_dir), "processes": self._procs,
                "keystone": self.keystone}

    def detach(self) -> None:
        """Forget the processes (stop() becomes a no-op) and leave them running; the state
        saved before lets `from_state(...).stop()` end them later."""
        atexit.unregister(self.stop)
        self._popen.clear()
        self._procs = {}
        self._owns_dir = False

    @classmethod
    def from_state(cls, state: dict) -> LocalSwift:
        self = cls(state["base_dir"], keystone=state.get("keystone"))
        self._owns_dir = state["owns_dir"]
        self._procs = state["processes"]
        self.auth_url, self.proxy_url = state["auth_url"], state["proxy_url"]
        self.users = {k: tuple(v) for k, v in state["users"].items()}
        return self

    # ---- internals ---------------------------------------------------------------------
    def _setup(self) -> None:
        """Directories, swift.conf, rings and server configs; fills self._procs."""
        base = self.base_dir
        for sub in ("log", "tmp", "recon"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        swift_config.write_swift_conf(base)
        ports = supervise.free_ports(4 + self.object_servers)
        mc_port, proxy_port, acc_port, con_port, *obj_ports = ports
        self.proxy_url = f"http://{self.proxy_ip}:{proxy_port}"
        self.auth_url = (self.keystone["auth_url"] if self.keystone
                         else f"{self.proxy_url}/auth/v1.0")

        backends = [("account", acc_port), ("container", con_port)]
        backends += [(f"object{i}", p) for i, p in enumerate(obj_ports)]
        for name, _port in backends:
            (base / "nodes" / name / name).mkdir(parents=True, exist_ok=True)
        swift_config.build_rings(base, self.log_dir, backends, self.replicas)
        self._add("memcached", swift_config.memcached_argv(mc_port), mc_port)
        for name, port in backends:
            kind = name.rstrip("0123456789")
            pkg = {"account": "account", "container": "container", "object": "obj"}[kind]
            sections = swift_config.backend_sections(kind, self.updater_interval)
            conf = swift_config.write_conf(base, name, port, sections)
            self._add(name, self._swift_argv(f"swift.{pkg}.server", conf), port)
            if kind in ("container", "object"):
                self._add(f"{name}-updater", self._swift_argv(f"swift.{pkg}.updater", conf), None)
        sections = swift_config.proxy_sections(mc_port, self.keystone)
        conf = swift_config.write_conf(base, "proxy", proxy_port, sections, self.proxy_ip)
        self._add("proxy", self._swift_argv("swift.proxy.server", conf), proxy_port)

    def _swift_argv(self, module: str, conf: Path) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), "_launch", str(self.base_dir),
                module, str(conf), "-v"]

    def _add(self, name: str, argv: list[str], port: int | None) -> None:
        self._procs[name] = {"argv": argv, "log": str(self.log_dir / f"{name}.log"),
                             "pid": None, "port": port}

    def _spawn(self, name: str) -> None:
        proc = self._procs[name]
        env = dict(os.environ, TMPDIR=str(self.base_dir / "tmp"), PYTHONUNBUFFERED="1")
        popen = supervise.spawn(proc["argv"], proc["log"], env, self.base_dir)
        proc["pid"] = popen.pid
        self._popen[name] = popen

    def _alive(self, name: str) -> bool:
        return supervise.group_alive(self._procs[name]["pid"], self._popen.get(name))

    def _owned(self, name: str) -> bool:
        """Guard against pid reuse when stopping from a state file: same command line."""
        if name in self._popen:
            return True
        argv = supervise.cmdline(self._procs[name]["pid"])
        return argv == [a.encode() for a in self._procs[name]["argv"]]

    def _kill(self, names: list[str], grace: float) -> None:
        """SIGTERM the groups, wait up to `grace` s, then SIGKILL the rest."""
        names = [n for n in names if n in self._procs and self._procs[n]["pid"]]
        by_pgid = {self._procs[n]["pid"]: n for n in names if self._owned(n)}
        supervise.stop_groups(list(by_pgid), lambda pgid: self._alive(by_pgid[pgid]),
                              grace=grace)
        for n in names:
            popen = self._popen.pop(n, None)
            if popen is not None:
                popen.wait(timeout=5)
            self._procs[n]["pid"] = None

    def _wait_healthy(self, name: str, deadline: float) -> None:
        """Until GET /healthcheck answers 200 (memcached: until its port accepts)."""
        port = self._procs[name]["port"]
        host = self.proxy_ip if name == "proxy" else "127.0.0.1"
        url = f"http://{host}:{port}/healthcheck"
        while self._alive(name):
            try:
                if name == "memcached":
                    return socket.create_connection(("127.0.0.1", port), timeout=1).close()
                if _http("GET", url, timeout=1.0)[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: not ready on port {port}")
            time.sleep(0.05)
        raise RuntimeError(f"{name} exited (log: {self._procs[name]['log']})")

    def _wait_ready(self, deadline: float) -> None:
        """Every server healthy, then tempauth issues a token that the account accepts."""
        for name, proc in self._procs.items():
            if proc["port"]:
                self._wait_healthy(name, deadline)
        if self.keystone:
            return self._wait_keystone_ready(deadline)
        user, key = self.users["admin"]
        status, headers = _http("GET", self.auth_url, {"X-Auth-User": user, "X-Auth-Key": key})
        if status != 200:
            raise RuntimeError(f"tempauth answered {status}")
        status, _ = _http("HEAD", headers["X-Storage-Url"],
                          {"X-Auth-Token": headers["X-Auth-Token"]})
        if status // 100 != 2:
            raise RuntimeError(f"authenticated HEAD of the account answered {status}")
        dead = [n for n in self._procs if not self._alive(n)]
        if dead:
            raise RuntimeError(f"exited during start: {', '.join(dead)}")

    def _wait_keystone_ready(self, deadline: float) -> None:
        """A Keystone token of the probe user opens its account (authtoken validated it and
        keystoneauth accepted its role). Keystone may still be starting: retry until then."""
        probe = self.keystone["probe"]
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": probe["username"], "password": probe["password"],
                "domain": {"name": probe.get("user_domain_name", "Default")}}}},
            "scope": {"project": {"name": probe["project_name"], "domain": {
                "name": probe.get("project_domain_name", "Default")}}}}}
        url = self.keystone["auth_url"].rstrip("/") + "/auth/tokens"
        last = ""
        while True:
            req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    token = resp.headers["X-Subject-Token"]
                    project = json.loads(resp.read())["token"]["project"]["id"]
                status, _ = _http("HEAD", f"{self.proxy_url}/v1/AUTH_{project}",
                                  {"X-Auth-Token": token}, timeout=30)
                if status // 100 == 2:
                    break
                last = f"authenticated HEAD of the account answered {status}"
            except (OSError, urllib.error.HTTPError, ValueError, KeyError) as exc:
                last = f"Keystone: {exc}"
            if time.monotonic() > deadline:
                raise TimeoutError(last)
            time.sleep(0.2)
        dead = [n for n in self._procs if not self._alive(n)]
        if dead:
            raise RuntimeError(f"exited during start: {', '.join(dead)}")

    def _log_tails(self, lines: int = 15) -> str:
        """The end of every non-empty log, for the error message of a failed start."""
        logs = [(n, Path(p["log"])) for n, p in self._procs.items()]
        return "\n".join(f"--- {n} ---\n" + "\n".join(log.read_text(errors="replace")
                                                       .splitlines()[-lines:])
                         for n, log in logs if log.exists() and log.stat().st_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "start", "stop"])
    parser.add_argument("--dir", help="base directory (default: a new temp dir, removed)")
    parser.add_argument("--state-file", help="JSON state for start/stop")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--object-servers", type=int, default=None)
    parser.add_argument("--proxy-ip", default="127.0.0.1",
                        help="address the proxy listens on (default 127.0.0.1)")
    parser.add_argument("--updater-interval", type=float, default=2.0,
                        help="seconds between the updaters' sweeps (default 2)")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_launch"]:
        return _launch(argv[1:])
    if argv[:1] == ["_account_sysmeta"]:
        return _account_sysmeta(argv[1:])
    args = parser.parse_args(argv)
    if args.command in ("start", "stop") and not args.state_file:
        parser.error(f"{args.command} needs --state-file")
    if args.command == "stop":
        state_file = Path(args.state_file)
        LocalSwift.from_state(json.loads(state_file.read_text())).stop()
        state_file.unlink()
        return 0

    def interrupt(*_):
        raise KeyboardInterrupt  # also for SIGINT, which a background job may ignore

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)
    swift = LocalSwift(args.dir, replicas=args.replicas,
                       object_servers=args.object_servers or args.replicas,
                       updater_interval=args.updater_interval, proxy_ip=args.proxy_ip)
    try:
        swift.start()
        info = swift.state()
        if args.command == "start":
            Path(args.state_file).write_text(json.dumps(info, indent=2))
            swift.detach()
        del info["processes"]
        print(json.dumps(info, indent=2), flush=True)
        while args.command == "run":
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # let stop() finish
        swift.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
