"""A TCP relay on loopback that remembers the HTTP requests passing through it.

Tests that must show which storage endpoint a client really used (Rackspace ServiceNet with v1
auth, the catalog's internal endpoint with Keystone) put one of these in front of the real Swift
proxy, at the address only that endpoint resolves to, and read back the request lines and Host
headers it saw. Bytes pass unchanged both ways.
"""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

# not anchored at a line start: on a kept-alive connection the next request follows the last
# byte of a binary body (a volume), which seldom ends with a newline
_REQUEST = re.compile(
    rb"(GET|PUT|HEAD|POST|DELETE|COPY) (/\S*) HTTP/1\.[01]\r\n((?:[^\r\n]+\r\n)*)\r\n"
)


class Relay:
    """Listen on ``listen`` (host, port) and forward each connection to ``target``."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]):
        self.target = target
        self._server = socket.create_server(listen)
        self.address = self._server.getsockname()[:2]
        self._streams: list[bytearray] = []  # what each client sent, in order
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closing = False

    def __enter__(self) -> Relay:
        thread = threading.Thread(target=self._accept, name="relay-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc) -> None:
        self._closing = True
        self._server.close()

    def requests(self) -> list[tuple[str, str, str]]:
        """(method, path, Host header) of every request a client sent through the relay."""
        with self._lock:
            streams = [bytes(s) for s in self._streams]
        found = []
        for data in streams:
            for match in _REQUEST.finditer(data):
                headers = match.group(3).decode("latin-1").splitlines()
                host = next(
                    (h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("host:")),
                    "",
                )
                found.append((match.group(1).decode(), match.group(2).decode("latin-1"), host))
        return found

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            sent = bytearray()
            with self._lock:
                self._streams.append(sent)
            for source, sink, keep in ((client, upstream, sent), (upstream, client, None)):
                thread = threading.Thread(
                    target=self._pump, args=(source, sink, keep), name="relay-pump", daemon=True
                )
                thread.start()

    def _pump(self, source: socket.socket, sink: socket.socket, keep: bytearray | None) -> None:
        try:
            while chunk := source.recv(65536):
                if keep is not None:
                    with self._lock:
                        keep.extend(chunk)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()


def with_private_hosts(hosts_file: Path) -> list[str]:
    """An argv prefix that runs the command in a mount namespace of its own where
    ``hosts_file`` is /etc/hosts: names resolve as the test says, for that command only."""
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount --bind "$0" /etc/hosts && exec "$@"',
        str(hosts_file),
    ]
