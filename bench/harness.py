"""Shared pieces of the benchmarks: a local Swift, one measured child process, medians, tables.

A measured run is one child process waited for with ``os.wait4``: wall time, CPU time (user and
system of the child and every descendant it waited for: duplicity's gpg, cfbackup's duplicity),
the CPU time the local Swift and the rest of the machine spent meanwhile and the load average
at its start (``cpu.py``), and peak memory (GNU time's %M: the largest maximum RSS among those
processes: the kernel keeps a maximum, not a sum, so cfbackup's own interpreter and its
duplicity count separately).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import cpu

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
CFBACKUP = VENV_BIN / "cfbackup"
DUPLICITY = VENV_BIN / "duplicity"
RESTIC = shutil.which("restic") or "/usr/bin/restic"
TIME = "/usr/bin/time"  # GNU time (Debian package "time"), for peak RSS

sys.path.insert(0, str(ROOT / "scripts"))


@dataclasses.dataclass
class Sample:
    """One timed run. CPU figures are seconds (``cpu.charge``); ``rep`` and ``position`` (its
    place in the repetition's order, from 0) are set by the loop that ran it."""

    wall: float
    cpu: float  # user + system
    peak_rss: int  # bytes
    returncode: int
    swift_cpu: float = 0.0  # CPU the local Swift spent meanwhile (serving this run)
    user: float = 0.0
    system: float = 0.0
    swift_user: float = 0.0
    swift_system: float = 0.0
    other_user: float = 0.0  # the rest of the machine (cpu.py)
    other_system: float = 0.0
    idle: float = 0.0
    steal: float = 0.0
    load: float = 0.0  # 1-minute load average at the start
    rep: int = -1
    position: int = -1

    @property
    def other(self) -> float:
        return self.other_user + self.other_system

    def plus(self, later: Sample) -> Sample:
        """This run and a later one as one (dup-same's retention rules): times and CPU added,
        the larger peak, the later exit code, the first's load, repetition and place."""
        added = {
            f.name: getattr(self, f.name) + getattr(later, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("peak_rss", "returncode", "load", "rep", "position")
        }
        return dataclasses.replace(
            self, **added, peak_rss=max(self.peak_rss, later.peak_rss), returncode=later.returncode
        )


# set while a benchmark Swift runs: measure() also charges each run the Swift's CPU time
swift_cpu_probe = None  # -> seconds (levers.py)
swift_pids_probe = None  # -> the Swift's pids (and a WAN rig's relay)


class BenchError(RuntimeError):
    pass


def measure(
    argv: Sequence[str],
    env: Mapping[str, str],
    log_path: Path,
    *,
    pass_fds: Sequence[int] = (),
    check: bool = True,
) -> Sample:
    """Run ``argv`` (output appended to ``log_path``) and measure it."""
    argv = [str(a) for a in argv]
    peak_file = log_path.with_name(log_path.name + ".peak")
    with open(log_path, "ab") as log:
        log.write(f"\n$ {shlex.join(argv)}\n".encode())
        log.flush()
        settle()
        swift_pids = swift_pids_probe() if swift_pids_probe else []
        before = cpu.read(swift_pids)
        start = time.perf_counter()
        process = subprocess.Popen(
            [*peak_wrapper(peak_file), *argv],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=tuple(pass_fds),
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
    charged = cpu.charge(before, cpu.read(swift_pids), usage.ru_utime, usage.ru_stime)
    sample = Sample(
        wall,
        usage.ru_utime + usage.ru_stime,
        read_peak(peak_file, usage),
        process.returncode,
        charged["swift_user"] + charged["swift_system"],
        **charged,
    )
    if check and sample.returncode != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-25:]
        raise BenchError(f"exit code {sample.returncode}: {shlex.join(argv)}\n" + "\n".join(tail))
    return sample


def settle() -> None:
    """Write back dirty pages before a timed run: otherwise a run pays for the writeback of
    what the previous one wrote (a restored tree, Swift's objects), and the tools' order
    decides the numbers."""
    os.sync()


# Where the tools restore. This machine's root is ext4 without a journal (a journal is
# mkfs.ext4's default), which will not reuse an inode freed less than 60 s ago, 360 s while
# its inode table block is dirty (as creating a file next to it makes it): each new file then
# walks the recently freed inodes of its group (fs/ext4/ialloc.c, recently_deleted). A 2,000-file
# restore made after a removed tree spent 0.7 ms in each open() instead of 0.02 ms (strace;
# perf: find_inode_bit, recently_deleted), and whoever restored after the bench's own clean-up
# paid up to a second for it, so the order of the tools moved the figures.
restore_disk_note = ""  # for the report: where the restores landed


@contextlib.contextmanager
def restore_disk(work: Path, size: int) -> Iterator[Path]:
    """Where the tools restore: a fresh ext4 of ``size`` bytes (mkfs.ext4's defaults, a
    journal included, as on most servers) mounted from a sparse file in ``work``; a folder in
    ``work`` when that cannot be made (not root, no loop device), said in the report."""
    global restore_disk_note
    image, mount = work / "restore-disk.img", work / "restore-disk"
    mount.mkdir(exist_ok=True)
    subprocess.run(["umount", str(mount)], capture_output=True)  # one a killed run left
    image.unlink(missing_ok=True)
    with open(image, "wb") as handle:
        handle.truncate(size)
    # inode tables written now, not by ext4lazyinit while the tools run
    init = "lazy_itable_init=0,lazy_journal_init=0"
    made = subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-E", init, str(image)], capture_output=True, text=True
    )
    mounted = (
        made.returncode == 0
        and not subprocess.run(
            ["mount", "-o", "loop", str(image), str(mount)], capture_output=True, text=True
        ).returncode
    )
    if mounted:
        restore_disk_note = (
            f"- restores into a fresh ext4 ({size / 2**30:.1f} GiB, mkfs.ext4 defaults: with a "
            "journal) on a loop device, made for this run"
        )
    else:
        image.unlink(missing_ok=True)
        restore_disk_note = f"- restores into {mount} (no loop device: {work}'s file system)"
        print(restore_disk_note[2:], file=sys.stderr)
    try:
        yield mount
    finally:
        if mounted:
            subprocess.run(["umount", str(mount)], capture_output=True)
            image.unlink(missing_ok=True)
        else:
            shutil.rmtree(mount, ignore_errors=True)


def stop_on_signals() -> None:
    """SIGTERM (and SIGINT, which a background job ignores) unwind normally, so the Swift and
    the contestants' processes are stopped and temporary data removed."""
    import signal

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)


def peak_wrapper(peak_file: Path) -> list[str]:
    """``/usr/bin/time -f %M``: a child of *this* process starts with our (large) RSS high-water
    mark, which Linux carries across exec; a child of the small ``time`` process does not."""
    if os.access(TIME, os.X_OK):
        return [TIME, "-f", "%M", "-o", str(peak_file)]
    return []


def read_peak(peak_file: Path, usage) -> int:
    """Peak RSS in bytes: the largest process of the run's tree (a maximum, not a sum)."""
    try:
        lines = peak_file.read_text().split()
        peak_file.unlink()
        return int(lines[-1]) * 1024
    except (OSError, ValueError, IndexError):
        return usage.ru_maxrss * 1024  # includes our own RSS: an upper bound


def base_environment() -> dict[str, str]:
    """What every tool gets from us besides its own secrets: the same minimal environment."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    return env


class Throttle:
    """A TCP relay in front of the Swift proxy that caps throughput at ``rate`` bytes/s each way
    (all connections share the budget, like one network link): a remote Swift without touching
    the machine's network settings. tempauth hands out storage URLs on the host the client
    asked (``$HOST``), so every request goes through the relay."""

    def __init__(self, upstream_port: int, rate: float) -> None:
        self.upstream_port, self.rate = upstream_port, rate
        self.port = 0
        self._loop = None
        self._thread = None

    def start(self) -> int:
        import asyncio
        import threading

        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0, limit=1 << 20)
            )
            self.port = server.sockets[0].getsockname()[1]
            self._next = {"up": 0.0, "down": 0.0}
            ready.set()
            loop.run_forever()
            server.close()

        self._thread = threading.Thread(target=serve, name="throttle", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.port

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    async def _handle(self, reader, writer) -> None:
        import asyncio

        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pump(reader, up_writer, "up"),
            self._pump(up_reader, writer, "down"),
            return_exceptions=True,
        )

    async def _pump(self, reader, writer, direction: str) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        try:
            while data := await reader.read(256 * 1024):
                now = loop.time()
                start = max(now, self._next[direction])
                self._next[direction] = start + len(data) / self.rate
                await asyncio.sleep(self._next[direction] - now)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()


class Swift:
    """A LocalSwift for the benchmark (updaters slowed down: they only burn CPU here) and a
    swiftclient connection to read container usage and delete containers. ``bandwidth``
    (bytes/s) puts a Throttle between the contestants and the proxy; ``rig`` (a ``wan.Rig``)
    brings its own Swift, in its namespace, reached through its delay relay (the relay's CPU
    is counted with the Swift's: both stand for what a remote end would spend)."""

    def __init__(self, bandwidth: float | None = None, rig=None) -> None:
        from local_swift import LocalSwift

        self.rig = rig
        if rig is None:
            self.local = LocalSwift(updater_interval=3600)
        else:
            self.local = LocalSwift.from_state(rig.swift_state)
        self.conn = None
        self.bandwidth = bandwidth
        self.throttle = None

    def __enter__(self) -> Swift:
        if self.rig is None:
            self.local.start()
        global swift_cpu_probe, swift_pids_probe
        swift_cpu_probe, swift_pids_probe = self.cpu_seconds, self.pids
        from swiftclient import client

        user, key = self.local.users["admin"]
        self.user, self.key = user, key
        self.auth_url = self.rig.auth_url if self.rig else self.local.auth_url
        direct = self.rig.direct_auth_url if self.rig else self.auth_url
        self.conn = client.Connection(authurl=direct, user=user, key=key, auth_version="1")
        if self.bandwidth:
            proxy_port = int(self.local.proxy_url.rsplit(":", 1)[1])
            self.throttle = Throttle(proxy_port, self.bandwidth)
            port = self.throttle.start()
            self.auth_url = f"http://127.0.0.1:{port}/auth/v1.0"
        return self

    def __exit__(self, *exc) -> None:
        global swift_cpu_probe, swift_pids_probe
        swift_cpu_probe = swift_pids_probe = None
        if self.throttle:
            self.throttle.stop()
        if self.rig is None:  # a rig stops its own Swift
            self.local.stop()

    def pids(self) -> list[int]:
        """The Swift servers and memcached (they share the machine with the contestants:
        uploading and downloading cost CPU here, not only on a real Swift), and a WAN rig's
        relay."""
        pids = [p.get("pid") for p in self.local.state()["processes"].values()]
        if self.rig is not None:
            pids += self.rig.pids()
        return [p for p in pids if p]

    def cpu_seconds(self) -> float:
        """CPU time used so far by those processes and their children."""
        user, system = cpu.tree_times(self.pids(), cpu.process_table())
        return user + system

    def env_v1(self) -> dict[str, str]:
        """duplicity's SWIFT_* and swiftclient's ST_* (DESIGN.md section 5), via the throttle
        when there is one."""
        return {
            "SWIFT_AUTHURL": self.auth_url,
            "SWIFT_USERNAME": self.user,
            "SWIFT_PASSWORD": self.key,
            "SWIFT_AUTHVERSION": "1",
            "ST_AUTH": self.auth_url,
            "ST_USER": self.user,
            "ST_KEY": self.key,
        }

    def container_bytes(self, container: str) -> tuple[int, int]:
        """(bytes used, object count) now (a container's usage is current; the account's lags)."""
        from swiftclient.exceptions import ClientException

        try:
            headers = self.conn.head_container(container)
        except ClientException as error:
            if error.http_status == 404:
                return 0, 0
            raise
        return int(headers["x-container-bytes-used"]), int(headers["x-container-object-count"])

    def delete_container(self, container: str) -> None:
        from swiftclient.exceptions import ClientException

        try:
            names = [o["name"] for o in self.conn.get_container(container, full_listing=True)[1]]
        except ClientException as error:
            if error.http_status == 404:
                return
            raise
        for name in names:
            self.conn.delete_object(container, name)
        self.conn.delete_container(container)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def load_average() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def machine() -> str:
    cpu = "?"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        mem_kb = int(handle.readline().split()[1])
    return f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 1024 / 1024:.0f} GiB RAM"


def versions() -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        out = subprocess.run(argv, capture_output=True, text=True)
        return (
            (out.stdout or out.stderr).strip().splitlines()[0]
            if (out.stdout or out.stderr)
            else "?"
        )

    return {
        "duplicity": first_line([str(DUPLICITY), "--version"]),
        "restic": first_line([RESTIC, "version"]),
        "gpg": first_line(["gpg", "--version"]),
        "python": sys.version.split()[0],
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (also readable as plain text)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def seconds(value: float) -> str:
    if value != value:  # nan
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def ratio(a: float, b: float) -> str:
    if not b or a != a or b != b:
        return "-"
    return f"{a / b:.2f}"


def mib(value: float) -> str:
    return "-" if value != value else f"{value / 1048576:.0f}"


def mb(value: float) -> str:
    return "-" if value != value else f"{value / 1e6:.0f}"
