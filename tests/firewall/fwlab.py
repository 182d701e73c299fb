"""Network-namespace helpers for the firewall_lockdown tests: real packets, real nft/iptables.

Topology (all addresses live inside namespaces this session creates; nothing leaves them):

    client ns  eth0 10.231.0.2 (management), 10.231.0.3 (not management),
                    fd31:231::2 (management), fd31:231::3
        |  veth
    server ns  eth0 10.231.0.1, fd31:231::1
               listeners (threads of this pytest process, created inside the namespace):
               22/tcp (stands for SSH) and 8080/tcp (the service), IPv4 and IPv6

Probing runs in threads that entered the client namespace (setns), so a probe costs no
process start. cfbackup itself runs as the user runs it: the installed ``cfbackup`` command
under ``ip netns exec server``. Every namespace and every process started inside one is removed
at the end, also when a test fails. :func:`start_restore` starts a real restore that waits
inside the lock-down (in its before_restore hook) until the test lets it go.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import errno
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

CFBACKUP = str(Path(sys.executable).with_name("cfbackup"))
PREFIX = f"cfbfw{os.getpid() % 100000}"
CLONE_NEWNET = 0x40000000

SERVER4, MGMT4, OTHER4 = "10.231.0.1", "10.231.0.2", "10.231.0.3"
SERVER6, MGMT6, OTHER6 = "fd31:231::1", "fd31:231::2", "fd31:231::3"
SSH_PORT, SERVICE_PORT = 22, 8080

# The site's own firewall, there before cfbackup: a lock-down must leave it exactly as it is.
SITE_RULESET = """table inet site {
\tchain input {
\t\ttype filter hook input priority filter + 5; policy accept;
\t\ttcp dport 9 drop
\t}
}
"""


def missing_capability(reason: str) -> None:
    """CI runs as root: there a missing capability is a failure. Elsewhere (a developer
    without root) the firewall tests are skipped, loudly: a warning in the summary too."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the firewall tests: {reason}", pytrace=False)
    import warnings

    warnings.warn(f"firewall tests SKIPPED: {reason}", stacklevel=2)
    pytest.skip(reason)


def sh(*argv: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True, **kwargs)


class Netns:
    """One network namespace: run commands in it, or open sockets from a thread inside it."""

    def __init__(self, short: str):
        self.name = f"{PREFIX}{short}"
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def create(self) -> None:
        result = sh("ip", "netns", "add", self.name, check=False)
        if result.returncode != 0:
            if "Operation not permitted" in result.stderr or os.geteuid() != 0:
                missing_capability(f"network namespaces cannot be created here (ip netns add: "
                                   f"{result.stderr.strip()}): run the firewall tests as root")
            raise RuntimeError(f"ip netns add {self.name}: {result.stderr}")
        self.run("ip", "link", "set", "lo", "up")

    def run(self, *argv: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.name, *argv, check=check, **kwargs)

    def popen(self, *argv: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kwargs)

    def enter(self) -> None:
        """Move the calling thread into this namespace (only that thread)."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
        finally:
            os.close(fd)

    def pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(8, initializer=self.enter)
        return self._pool

    def pids(self) -> list[int]:
        result = sh("ip", "netns", "pids", self.name, check=False)
        return [int(p) for p in result.stdout.split() if p.isdigit() and int(p) != os.getpid()]

    def kill_all(self) -> None:
        """SIGKILL what runs inside (dead-men, sshd, cfbackup): all of it started by the tests."""
        for _ in range(3):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

    def delete(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.kill_all()
        sh("ip", "netns", "del", self.name, check=False)


def link(a: Netns, b: Netns, addrs_a: list[str], addrs_b: list[str], ifname: str = "eth0"):
    sh("ip", "link", "add", "name", ifname, "netns", a.name, "type", "veth",
       "peer", "name", ifname, "netns", b.name)
    for ns, addrs in ((a, addrs_a), (b, addrs_b)):
        for addr in addrs:
            extra = ("nodad",) if ":" in addr else ()
            ns.run("ip", "addr", "add", addr, "dev", ifname, *extra)
        ns.run("ip", "link", "set", ifname, "up")


def serve_in(ns: Netns, setup: Callable[[], None], serve: Callable[[], None]) -> threading.Thread:
    """Run ``setup()`` and then ``serve()`` on a daemon thread inside ``ns`` (a socket belongs to
    the namespace of the thread that creates it); returns once ``setup`` is done, raising its
    error if it failed."""
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            ns.enter()
            setup()
        except BaseException as error:
            failure.append(error)
            return
        finally:
            ready.set()
        serve()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    if failure:
        raise failure[0]
    return thread


class Listeners:
    """TCP servers in a namespace that greet each connection with b"hello"."""

    def __init__(self, ns: Netns, ports: tuple[int, ...]):
        self.sockets: list[socket.socket] = []
        self.stop = threading.Event()

        def listen() -> None:
            for port in ports:
                sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.bind(("::", port))
                sock.listen(64)
                self.sockets.append(sock)

        def serve() -> None:
            while not self.stop.is_set():
                readable, _, _ = select.select(self.sockets, [], [], 0.1)
                for sock in readable:
                    with contextlib.suppress(OSError):
                        conn, _ = sock.accept()
                        conn.sendall(b"hello\n")
                        conn.close()

        self.thread = serve_in(ns, listen, serve)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for sock in self.sockets:
            sock.close()


def _probe(src: str, dst: str, port: int, timeout: float) -> str:
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.bind((src, 0))
        try:
            sock.connect((dst, port))
        except TimeoutError:
            return "blocked"  # the SYN was dropped (a refused one gets an RST at once)
        except ConnectionRefusedError:
            return "refused"
        except OSError as error:
            if error.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                return "unreachable"
            raise
        sock.settimeout(10)  # the handshake is the kernel's; the greeting needs our thread
        return "open" if sock.recv(16).startswith(b"hello") else "no greeting"


class Lab:
    """The namespaces, the listeners and the probe."""

    def __init__(self, server: Netns, client: Netns, listeners: Listeners):
        self.server, self.client, self.listeners = server, client, listeners

    def probe(self, src: str, dst: str, port: int, timeout: float = 0.6) -> str:
        return self.client.pool().submit(_probe, src, dst, port, timeout).result()

    def probes(self, wanted: dict[tuple[str, str, int], str], timeout: float = 0.6) -> None:
        """Run every probe at once (a blocked one waits for its timeout) and compare."""
        futures = {key: self.client.pool().submit(_probe, *key, timeout) for key in wanted}
        got = {key: future.result() for key, future in futures.items()}
        assert got == wanted, {k: v for k, v in got.items() if wanted[k] != v}

    def expect(self, *, service: str, ssh_mgmt: str = "open", ssh_other: str | None = None,
               v6: bool = True) -> None:
        """The usual picture: service from both clients, SSH from management and other."""
        ssh_other = ssh_other or service
        wanted = {
            (MGMT4, SERVER4, SERVICE_PORT): service,
            (OTHER4, SERVER4, SERVICE_PORT): service,
            (MGMT4, SERVER4, SSH_PORT): ssh_mgmt,
            (OTHER4, SERVER4, SSH_PORT): ssh_other,
        }
        if v6:
            wanted.update({
                (MGMT6, SERVER6, SERVICE_PORT): service,
                (MGMT6, SERVER6, SSH_PORT): ssh_mgmt,
                (OTHER6, SERVER6, SSH_PORT): ssh_other,
            })
        self.probes(wanted)

    def cfbackup(self, *args: str, env: dict | None = None, check: bool = False,
                 timeout: float = 60) -> subprocess.CompletedProcess:
        """The installed cfbackup, run inside the server namespace."""
        return self.server.run(CFBACKUP, *args, env=cfbackup_env(env), check=check,
                               timeout=timeout)

    def ruleset(self) -> str:
        return self.server.run("nft", "list", "ruleset").stdout

    def iptables_save(self) -> str:
        text = self.server.run("iptables-save").stdout + self.server.run("ip6tables-save").stdout
        return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def cfbackup_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CFBACKUP_")}
    # only the plugins under test: the other built-ins are developed elsewhere
    env["CFBACKUP_LOAD_PLUGINS"] = "command_hooks,firewall_lockdown"
    env.update(extra or {})
    return env


def write_config(path: Path, *, backend: str = "nft", deadman_timeout: int = 60,
                 hook: str | None = None, extra_profile: str = "", ssh_port: int = SSH_PORT,
                 management: tuple[str, ...] = (f"{MGMT4}/32", f"{MGMT6}/128"),
                 data: Path | None = None) -> Path:
    """A config with one profile (file:// target, no encryption) and the lock-down enabled;
    state in the config's folder, source and backup in ``data`` (default: that folder too)."""
    state, base = path.parent, data or path.parent
    hooks = f"\n[profiles.site.command_hooks]\nbefore_restore = [{hook!r}]\n" if hook else ""
    nets = ", ".join(f'"{n}"' for n in management)
    path.write_text(f"""state_dir = "{state}/state"
[profiles.site]
source = "{base}/src"
target = "file://{base}/backup"
archive_dir = "{base}/archive"
{extra_profile}
[profiles.site.encryption]
mode = "none"
[profiles.site.firewall_lockdown]
enabled = true
management_networks = [{nets}]
ssh_port = {ssh_port}
allow = ["tcp/8443 from 10.231.9.0/24", "icmp"]
deadman_timeout = {deadman_timeout}
backend = "{backend}"
{hooks}""")
    return path


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


HOLD_HOOK = """#!/bin/sh
# before_restore hook: says "locked" and waits for the test to say how the hook ends
touch "$1/locked"
n=0
# -s, not -e: write_text("0") creates the file before it writes the code, and a hook that saw
# it empty ran `exit ""` (Illegal number, exit 2: CI run 5d9521e)
while [ ! -s "$1/go" ]; do
  sleep 0.05; n=$((n+1)); [ "$n" -gt 1200 ] && exit 3
done
exit "$(cat "$1/go")"
"""


def _sigint_as_at_a_terminal() -> None:
    """A suite started as a background job inherits SIGINT ignored (POSIX shells do that
    without job control), and so would cfbackup: the interrupt tests need Ctrl-C's default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_restore(site, tmp_path, data, backend="nft", deadman_timeout=60):
    """Start ``cfbackup restore`` of the backup in ``data`` in the server namespace; it stops
    in its before_restore hook, inside the lock-down, until the test writes flags/go."""
    (tmp_path / "flags").mkdir()
    (tmp_path / "hook.sh").write_text(HOLD_HOOK)
    config = str(write_config(tmp_path / "config.toml", backend=backend, data=data,
                              deadman_timeout=deadman_timeout,
                              hook=f"sh {tmp_path}/hook.sh {tmp_path}/flags"))
    process = site.server.popen(CFBACKUP, "-c", config, "restore", "site",
                                str(tmp_path / "restored"), env=cfbackup_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_sigint_as_at_a_terminal)
    try:
        assert wait_for(lambda: (tmp_path / "flags" / "locked").exists(), 30), \
            process.communicate(timeout=5) if process.poll() is not None else "hook not reached"
    except BaseException:
        process.kill()
        raise
    return process, config
