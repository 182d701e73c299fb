"""The requests the local Swift's proxy logged (``proxy.log``): what a command asked Swift."""

from __future__ import annotations

import re
import time

REQUEST = re.compile(r" (GET|HEAD|PUT|POST|DELETE) (/\S+) HTTP/1\.\d (\d{3}) ")


def length(local_swift) -> int:
    """Lines logged so far: pass it to :func:`requests_since` after the command."""
    return len((local_swift.log_dir / "proxy.log").read_text(errors="replace").splitlines())


def requests_since(local_swift, skip: int) -> list[tuple[str, str, int]]:
    """(method, path, status) of every request the proxy logged after line ``skip``."""
    time.sleep(0.3)  # the proxy logs a request once its response is out
    lines = (local_swift.log_dir / "proxy.log").read_text(errors="replace").splitlines()
    return [(m[1], m[2], int(m[3])) for m in map(REQUEST.search, lines[skip:]) if m]
