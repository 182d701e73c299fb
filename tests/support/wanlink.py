"""The benchmark's delay relay (``bench/wanlink.py``) for tests: a Swift (or an echo server)
that answers one round trip later, on loopback, with nothing else on the machine slowed."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

WANLINK = Path(__file__).resolve().parents[2] / "bench" / "wanlink.py"


def serve(*args: str) -> tuple[subprocess.Popen, int]:
    """Start ``wanlink.py ARGS`` (relay or echo); its process and the port it listens on."""
    process = subprocess.Popen(
        [sys.executable, str(WANLINK), *args], stdout=subprocess.PIPE, text=True
    )
    return process, json.loads(process.stdout.readline())["port"]


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen]]:
    """A list to put started processes in; each is stopped on the way out."""
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for process in started:
            process.terminate()
            process.wait(timeout=10)
            if process.stdout:
                process.stdout.close()


@contextlib.contextmanager
def delayed(upstream_url: str, rtt_ms: int, limit_mbit: float | None = None) -> Iterator[str]:
    """``upstream_url`` (``http://127.0.0.1:PORT...``) behind a relay adding ``rtt_ms`` to each
    round trip (and holding each connection to ``limit_mbit`` each way): the same URL on the
    relay's port."""
    scheme, _, rest = upstream_url.partition("://")
    hostport, slash, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    with processes() as started:
        relay, relay_port = serve(
            "relay", "--listen", "127.0.0.1:0", "--upstream", f"{host}:{port}",
            "--rtt-ms", str(rtt_ms),
            *(("--limit-mbit", str(limit_mbit)) if limit_mbit else ()),
        )  # fmt: skip
        started.append(relay)
        yield f"{scheme}://127.0.0.1:{relay_port}{slash}{path}"
