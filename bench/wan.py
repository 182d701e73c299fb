"""A network that is not loopback for ``compare.py --wan``: the local Swift in one network
namespace, the contestants in another, a veth pair between them with a rate limit (``tbf``)
and a delay relay (``wanlink.py``) in the client namespace.

    swift ns   eth0 10.232.0.1   Swift proxy (bound here; its other servers on the ns's lo),
                                 wanlink echo server (for the probe)
        |  veth, tbf RATE on both ends
    client ns  eth0 10.232.0.2   the contestants, wanlink relay on 127.0.0.1 (delay RTT/2
                                 each way) -> 10.232.0.1:PROXY

Every address lives inside the two namespaces this module creates (and removes), so nothing
else on the machine is slowed or reached. The benchmark's own thread enters the client
namespace while the rig is up: every contestant it starts runs there. Needs root (``ip netns``
and ``tc``); :class:`Rig` refuses with :class:`WanError` when it cannot build the network.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLONE_NEWNET = 0x40000000
SWIFT_IP, CLIENT_IP, PREFIX_LEN = "10.232.0.1", "10.232.0.2", 24


class WanError(RuntimeError):
    pass


@contextlib.contextmanager
def swift_over(profile: Profile, work: Path):
    """``(harness.Swift, probe figures)`` over a rig of ``profile``: the benchmarks' entry
    point. Exits with the reason when the rig cannot be built."""
    import harness

    print(f"wan: building {profile.name}", file=sys.stderr, flush=True)
    try:
        rig = Rig(profile, work).__enter__()
    except WanError as error:
        sys.exit(f"--wan: {error}")
    try:
        probed = rig.probe()
        print(f"wan: probe {json.dumps(probed)}", file=sys.stderr, flush=True)
        with harness.Swift(rig=rig) as swift:
            yield swift, probed
    finally:
        rig.close()


def describe(profile: Profile, probed: dict) -> str:
    """The link as asked and as probed, one Markdown list item."""
    relay, veth = probed["relay"], probed["veth"]
    return (
        f"- link: {profile.name} asked; probed through the relay: round trip "
        f"{relay['rtt_ms_median']} ms median ({relay['rtt_ms_min']}-{relay['rtt_ms_max']}), "
        f"first exchange of a new connection {relay['first_exchange_ms']} ms, "
        f"{relay['down_mbit']} Mbit/s down, {relay['up_mbit']} Mbit/s up "
        f"({relay['megabytes']:g} MB each way); the bare veth: {veth['rtt_ms_median']} ms, "
        f"{veth['down_mbit']}/{veth['up_mbit']} Mbit/s"
    )


@dataclasses.dataclass(frozen=True)
class Profile:
    rtt_ms: float
    mbit: float

    @property
    def name(self) -> str:
        return f"{self.rtt_ms:g} ms RTT, {self.mbit:g} Mbit/s"

    @classmethod
    def parse(cls, text: str) -> Profile:
        """``RTT_MS:MBIT``, e.g. ``20:200``."""
        try:
            rtt, mbit = (float(x) for x in text.split(":"))
        except ValueError:
            raise ValueError(f"{text!r}: a WAN profile is RTT_MS:MBIT, e.g. 20:200") from None
        if rtt < 0 or mbit <= 0:
            raise ValueError(f"{text!r}: RTT must be >= 0 and the rate > 0")
        return cls(rtt, mbit)


def _sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise WanError(f"{' '.join(argv)}: {result.stderr.strip() or result.returncode}")
    return result


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")


class Rig:
    """The two namespaces, the link, the Swift, the relay and the echo server; a context
    manager that removes all of it on the way out (exceptions and signals included)."""

    def __init__(self, profile: Profile, work: Path) -> None:
        self.profile = profile
        self.work = work
        tag = f"cfbwan{os.getpid() % 100000}"
        self.swift_ns, self.client_ns = f"{tag}s", f"{tag}c"
        self.processes: dict[str, subprocess.Popen] = {}
        self.swift_state: dict | None = None
        self._home_fd: int | None = None
        self.relay_port = self.echo_port = 0

    # ---- building -----------------------------------------------------------------------
    def __enter__(self) -> Rig:
        if os.geteuid() != 0:
            raise WanError("the WAN benchmark needs root (network namespaces, tc): run it as root")
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _build(self) -> None:
        for ns in (self.swift_ns, self.client_ns):
            result = _sh("ip", "netns", "add", ns, check=False)
            if result.returncode != 0:
                raise WanError(
                    f"cannot create network namespace {ns} ({result.stderr.strip()}): the WAN "
                    "benchmark needs them; run it as root on a kernel with network namespaces"
                )
            self.ns(ns, "ip", "link", "set", "lo", "up")
        _sh(
            "ip", "link", "add", "name", "eth0", "netns", self.swift_ns, "type", "veth",
            "peer", "name", "eth0", "netns", self.client_ns,
        )  # fmt: skip
        rate = f"{self.profile.mbit:g}mbit"
        # burst: at least one 64 KiB GSO segment and a 1 ms worth of the rate
        burst = max(128 * 1024, int(self.profile.mbit * 1e6 / 8 / 1000))
        for ns, ip in ((self.swift_ns, SWIFT_IP), (self.client_ns, CLIENT_IP)):
            self.ns(ns, "ip", "addr", "add", f"{ip}/{PREFIX_LEN}", "dev", "eth0")
            self.ns(ns, "ip", "link", "set", "eth0", "up")
            result = self.ns(
                ns, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", rate,
                "burst", str(burst), "latency", "50ms", check=False,
            )  # fmt: skip
            if result.returncode != 0:
                raise WanError(f"tc cannot rate-limit the veth pair: {result.stderr.strip()}")
        self._start_swift()
        self.echo_port = self._spawn("echo", self.swift_ns, "echo", "--listen", f"{SWIFT_IP}:0")
        self.relay_port = self._spawn(
            "relay", self.client_ns, "relay", "--listen", "127.0.0.1:0",
            "--upstream", f"{SWIFT_IP}:{self.proxy_port}",
            "--rtt-ms", f"{self.profile.rtt_ms:g}", "--rate-mbit", f"{self.profile.mbit:g}",
        )  # fmt: skip
        self.enter_client()

    def ns(self, ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return _sh("ip", "netns", "exec", ns, *argv, check=check)

    def _start_swift(self) -> None:
        state_file = self.work / "wan-swift.json"
        state_file.unlink(missing_ok=True)
        result = subprocess.run(
            [
                "ip", "netns", "exec", self.swift_ns, sys.executable,
                str(ROOT / "scripts" / "local_swift.py"), "start", "--state-file",
                str(state_file), "--proxy-ip", SWIFT_IP, "--updater-interval", "3600",
            ],
            capture_output=True, text=True,
        )  # fmt: skip
        if state_file.exists():
            self.swift_state = json.loads(state_file.read_text())
            state_file.unlink()
        if result.returncode != 0 or self.swift_state is None:
            raise WanError(f"the local Swift did not start in {self.swift_ns}:\n{result.stderr}")
        self.proxy_port = int(self.swift_state["proxy_url"].rsplit(":", 1)[1])

    def _spawn(self, name: str, ns: str, *args: str) -> int:
        process = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, str(Path(__file__).with_name("wanlink.py")),
             *args],
            stdout=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        self.processes[name] = process
        line = process.stdout.readline()
        if not line:
            raise WanError(f"wanlink {name} did not start in {ns}")
        return int(json.loads(line)["port"])

    def enter_client(self) -> None:
        """This thread (and every process it starts from now on) in the client namespace."""
        self._home_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.client_ns}", os.O_RDONLY)
        try:
            _setns(fd)
        finally:
            os.close(fd)

    # ---- using --------------------------------------------------------------------------
    @property
    def auth_url(self) -> str:
        """Through the relay: tempauth answers with storage URLs on the host asked for."""
        return f"http://127.0.0.1:{self.relay_port}/auth/v1.0"

    @property
    def direct_auth_url(self) -> str:
        """Straight over the veth (rate-limited, no delay): the benchmark's own bookkeeping."""
        return f"http://{SWIFT_IP}:{self.proxy_port}/auth/v1.0"

    def pids(self) -> list[int]:
        """The relay's pid, whose CPU the link costs this machine."""
        return [p.pid for p in self.processes.values() if p.poll() is None]

    def probe(self, count: int = 20, megabytes: float = 16) -> dict:
        """A ping-like probe through the relay to the echo server, and a transfer each way."""
        # through the relay, which connects to the Swift proxy: probe the echo server with a
        # second relay process of the same settings
        port = self._spawn(
            "probe-relay", self.client_ns, "relay", "--listen", "127.0.0.1:0",
            "--upstream", f"{SWIFT_IP}:{self.echo_port}",
            "--rtt-ms", f"{self.profile.rtt_ms:g}", "--rate-mbit", f"{self.profile.mbit:g}",
        )  # fmt: skip
        try:
            out = subprocess.run(
                [sys.executable, str(Path(__file__).with_name("wanlink.py")), "probe", "--to",
                 f"127.0.0.1:{port}", "--count", str(count), "--mb", str(megabytes)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            bare = subprocess.run(
                [sys.executable, str(Path(__file__).with_name("wanlink.py")), "probe", "--to",
                 f"{SWIFT_IP}:{self.echo_port}", "--count", str(count), "--mb", str(megabytes)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
        finally:
            self._stop("probe-relay")
        return {"relay": json.loads(out.stdout), "veth": json.loads(bare.stdout)}

    # ---- removing -----------------------------------------------------------------------
    def _stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def close(self) -> None:
        if self._home_fd is not None:
            _setns(self._home_fd)
            os.close(self._home_fd)
            self._home_fd = None
        for name in list(self.processes):
            self._stop(name)
        if self.swift_state is not None:
            sys.path.insert(0, str(ROOT / "scripts"))
            from local_swift import LocalSwift

            LocalSwift.from_state(self.swift_state).stop()
            self.swift_state = None
        for ns in (self.client_ns, self.swift_ns):
            if not os.path.exists(f"/run/netns/{ns}"):
                continue
            # anything still inside was started by this rig (the namespaces are its own)
            left = _sh("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in left:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    if int(pid) != os.getpid():
                        os.kill(int(pid), signal.SIGKILL)
            time.sleep(0.1 if left else 0)
            _sh("ip", "netns", "del", ns, check=False)
