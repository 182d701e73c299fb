"""A real, throw-away BIND 9 ``named`` on 127.0.0.1 serving a zone that accepts TSIG-signed
RFC 2136 updates (and more zones, each granting the keys it is given), for the ip_fixup tests.

What matters (DESIGN.md section 5, measured with BIND 9.18 from Debian): named starts in well
under a second with ``-c CONF -L LOGFILE`` (without ``-L`` a failed start prints nothing); its
zone directory must be writable by the user it runs as, or updates get SERVFAIL (no journal).
Run as root it drops to ``bind`` (``-u bind``), so the directory is handed to that user.
"""

from __future__ import annotations

import base64
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

NAMED = shutil.which("named") or "/usr/sbin/named"


def _free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1."""
    for _ in range(50):
        tcp = socket.socket()
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            udp.close()
            tcp.close()
    raise RuntimeError("no free port for named")


class Bind:
    """``with Bind(zone="example.test.", records={"web1": ["10.0.0.5"]}) as dns: ...``

    ``records`` names are relative to ``zone``, or absolute (a final dot) in any zone served.
    ``more_zones`` maps more zones to the keys their update-policy grants (none: every update
    is refused); ``also_grant`` adds keys that ``zone`` grants besides ``key_name``. Besides
    ``key_name`` the server knows ``nogrant_key`` and ``other_key``, granted only where named.
    """

    def __init__(
        self,
        zone: str = "example.test.",
        *,
        key_name: str = "cfbackup-update",
        algorithm: str = "hmac-sha256",
        secret: str | None = None,
        records: dict[str, list[str]] | None = None,
        more_zones: dict[str, tuple[str, ...]] | None = None,
        also_grant: tuple[str, ...] = (),
    ):
        self.zone = zone if zone.endswith(".") else zone + "."
        self.key_name, self.algorithm = key_name, algorithm
        self.secret = secret or base64.b64encode(secrets.token_bytes(32)).decode()
        # a second key the server knows but grants nothing: its updates are REFUSED
        self.nogrant_key = "cfbackup-nogrant"
        self.nogrant_secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self.other_key = "cfbackup-other"
        self.other_secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self.records = records or {}
        self.grants = {self.zone: (key_name, *also_grant)}
        for name, keys in (more_zones or {}).items():
            self.grants[name if name.endswith(".") else name + "."] = tuple(keys)
        self.instance = secrets.token_hex(8)  # start() checks that this named answers
        self.port = 0
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def log_file(self) -> Path:
        assert self.dir is not None
        return self.dir / "named.log"

    def _zone_of(self, name: str) -> str:
        if not name.endswith("."):
            return self.zone
        return max((z for z in self.grants if name == z or name.endswith("." + z)), key=len)

    def _zone_text(self, zone: str) -> str:
        lines = [
            "$TTL 300",
            f"@ IN SOA ns1.{self.zone} hostmaster.{self.zone} 1 3600 600 86400 300",
            f"@ IN NS ns1.{self.zone}",
        ]
        if zone == self.zone:
            lines.append("ns1 IN A 127.0.0.1")
            lines.append(f'instance IN TXT "{self.instance}"')  # this named, not another's
        for name, addresses in self.records.items():
            if self._zone_of(name) != zone:
                continue
            for address in addresses:
                lines.append(f"{name} IN {'AAAA' if ':' in address else 'A'} {address}")
        return "\n".join(lines) + "\n"

    def _zone_file(self, zone: str) -> str:
        return "zone.db" if zone == self.zone else f"zone-{zone.rstrip('.')}.db"

    def _zone_conf(self, zone: str) -> str:
        keys = self.grants[zone]
        policy = (
            "update-policy { " + " ".join(f"grant {k} zonesub ANY;" for k in keys) + " };"
            if keys
            else "allow-update { none; };"
        )
        return f"""\
zone "{zone}" {{
    type primary;
    file "{self.dir}/{self._zone_file(zone)}";
    {policy}
}};
"""

    def _conf_text(self) -> str:
        d = self.dir
        return f"""\
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {self.port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ any; }};
    dnssec-validation no;
    notify no;
}};
controls {{ }};
key "{self.key_name}" {{ algorithm {self.algorithm}; secret "{self.secret}"; }};
key "{self.nogrant_key}" {{ algorithm {self.algorithm}; secret "{self.nogrant_secret}"; }};
key "{self.other_key}" {{ algorithm {self.algorithm}; secret "{self.other_secret}"; }};
""" + "".join(self._zone_conf(zone) for zone in self.grants)

    def start(self, timeout: float = 15.0) -> Bind:
        self.dir = Path(tempfile.mkdtemp(prefix="named-"))
        self.port = _free_port()
        for zone in self.grants:
            (self.dir / self._zone_file(zone)).write_text(self._zone_text(zone))
        conf = self.dir / "named.conf"
        conf.write_text(self._conf_text())
        argv = [NAMED, "-f", "-4", "-n", "1", "-c", str(conf), "-L", str(self.log_file)]
        if os.geteuid() == 0:
            bind_user = pwd.getpwnam("bind")
            for path in (self.dir, *self.dir.iterdir()):
                os.chown(path, bind_user.pw_uid, bind_user.pw_gid)
            argv += ["-u", "bind"]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                # the instance's own token: a named of another test that took the port
                # between _free_port and this one's start answers ns1 just the same
                if self.query("instance", "TXT") == [f'"{self.instance}"']:
                    return self
            except Exception:  # not listening yet
                pass
            time.sleep(0.05)
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"named did not start on port {self.port}:\n{tail}")

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
            self.proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> Bind:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def fqdn(self, name: str) -> str:
        return name if name.endswith(".") else f"{name}.{self.zone}"

    def query(self, name: str, rtype: str = "A") -> list[str]:
        """The sorted addresses of ``name`` as the server answers them now (unsigned query)."""
        import dns.message
        import dns.query
        import dns.rdatatype

        fqdn = self.fqdn(name)
        reply = dns.query.tcp(
            dns.message.make_query(fqdn, rtype), "127.0.0.1", port=self.port, timeout=2
        )
        wanted = dns.rdatatype.from_text(rtype)
        return sorted(
            r.to_text() for rrset in reply.answer if rrset.rdtype == wanted for r in rrset
        )

    def set_records(self, name: str, addresses: list[str], rtype: str = "A") -> None:
        """Replace records through a signed update (test set-up)."""
        import dns.query
        import dns.tsigkeyring
        import dns.update

        keyring = dns.tsigkeyring.from_text({self.key_name: self.secret})
        update = dns.update.UpdateMessage(
            self.zone, keyring=keyring, keyname=self.key_name, keyalgorithm=self.algorithm
        )
        update.replace(self.fqdn(name), 300, rtype, *addresses)
        reply = dns.query.tcp(update, "127.0.0.1", port=self.port, timeout=2)
        assert reply.rcode() == 0, reply
