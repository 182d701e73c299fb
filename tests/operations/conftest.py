"""Fixtures for the operations tests: configs on disk, the installed CLI, an SMTP server
(aiosmtpd) and an HTTP receiver on loopback, a throw-away TLS certificate."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import tomli_w
from smtp_server import SmtpServer

CFBACKUP = Path(sys.executable).parent / "cfbackup"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "operations: schedules, notifications, progress, metrics (tests/operations)"
    )


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.operations)


@dataclasses.dataclass
class Setup:
    """A config file with one or more profiles backing up small trees to file:// targets."""

    root: Path
    config: dict

    @property
    def path(self) -> Path:
        return self.root / "config.toml"

    def write(self) -> Path:
        self.path.write_text(tomli_w.dumps(self.config), encoding="utf-8")
        self.path.chmod(0o600)
        return self.path

    def profile(self, name: str) -> dict:
        return self.config["profiles"][name]

    def add_profile(self, name: str, **extra) -> dict:
        source = self.root / f"src-{name}"
        source.mkdir(exist_ok=True)
        (source / "hello.txt").write_text(f"hello from {name}\n")
        (source / "data.bin").write_bytes(os.urandom(64 * 1024))
        profile = {
            "source": str(source),
            "target": f"file://{self.root / f'target-{name}'}",
            "archive_dir": str(self.root / "archive"),
            "encryption": {"mode": "none"},
            "retention": {"after_backup": False},  # one duplicity run per backup: faster tests
            **extra,
        }
        self.config["profiles"][name] = profile
        return profile

    def cli(self, *args, env=None, timeout=120, check=None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(CFBACKUP), "-c", str(self.path), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
        if check is not None:
            assert result.returncode == check, (result.returncode, result.stdout, result.stderr)
        return result

    def history(self, profile: str | None = None) -> list[dict]:
        """Runs recorded in the state dir, newest first (read directly: works while the config
        file is being broken on purpose)."""
        from cfbackup import history

        return history.runs(Path(self.config["state_dir"]), profile, limit=100)


@pytest.fixture
def setup(tmp_path) -> Setup:
    s = Setup(root=tmp_path, config={"state_dir": str(tmp_path / "state"), "profiles": {}})
    s.add_profile("demo")
    s.write()
    return s


# --- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost: (cert, key); the cert is its CA."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


# --- SMTP --------------------------------------------------------------------------------


@pytest.fixture
def smtp_server():
    with SmtpServer() as server:
        yield server


# --- HTTP --------------------------------------------------------------------------------


@dataclasses.dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


class HttpReceiver:
    """http.server on loopback recording requests; paths under /status/NNN answer NNN."""

    def __init__(self):
        self.requests: list[Request] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                receiver.requests.append(Request(self.command, self.path, dict(self.headers), body))
                status = 200
                if self.path.startswith("/status/"):
                    status = int(self.path.split("/")[2])
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            do_GET = do_POST = do_HEAD = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


@pytest.fixture
def http_receiver():
    with HttpReceiver() as receiver:
        yield receiver
