"""An HTTP forward proxy on loopback, what ``http_proxy`` names for a plain-HTTP Swift, that
remembers the method and path of each request it forwarded.

Unlike ``relay.Relay`` (bytes passed unchanged), a client sends a forward proxy the whole URL
(``GET http://host:port/path``): the proxy sends the origin server the path alone. Request
bodies (volumes) are read whole, by length or chunked, and forwarded with their length.

``refuse`` injects a fault: requests of the methods it names are answered with its status (403
Forbidden, 503 Service Unavailable, ...) and never reach the origin, as a Swift whose ACL, a
middleware or an object lock refuses deletes answers them. Refused requests are in ``seen`` too.
``refuse_when(method, path, headers, seen)`` decides for each request instead (a status, or None
to forward it): e.g. only the requests that carry ``X-Newest`` (cfbackup's check after
retention), or every request once the deletes have been made (a Swift gone right after them).

``fault_when(method, path, headers, seen)`` (same arguments) injects a fault of the network or
of Swift's answer instead of a status: :data:`STALL` (the request is read, body and all, and
never answered: the connection stays open until the proxy closes), :class:`Cut` (the answer is
sent with its full Content-Length but closed after ``after`` bytes of its body, as a link that
drops mid-download), :class:`Headers` (the answer forwarded with those headers replaced, e.g.
the storage URL a v1 auth returns), or None.
"""

from __future__ import annotations

import dataclasses
import http.client
import socket
import threading
import urllib.parse
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
}


STALL = "stall"  # fault_when: read the request, never answer it


@dataclasses.dataclass(frozen=True)
class Cut:
    """fault_when: the answer's body ends (the connection closed) after ``after`` bytes."""

    after: int


@dataclasses.dataclass(frozen=True)
class Headers:
    """fault_when: the answer forwarded with these headers replaced."""

    values: dict[str, str]


Fault = str | Cut | Headers
Decide = Callable[[str, str, Message, list[tuple[str, str]]], "int | Fault | None"]


class ForwardProxy:
    def __init__(
        self,
        refuse: dict[str, int] | None = None,
        refuse_when: Decide | None = None,
        fault_when: Decide | None = None,
    ) -> None:
        self.seen: list[tuple[str, str]] = []
        seen, lock = self.seen, threading.Lock()
        refused = dict(refuse or {})
        self._closing = closing = threading.Event()  # releases the stalled requests

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _body(self) -> bytes | None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else None

            def _forward(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.scheme != "http" or not url.hostname:
                    self.send_error(400, "a forward proxy takes absolute http:// URLs")
                    return
                with lock:
                    status = refused.get(self.command)
                    if refuse_when is not None:
                        status = refuse_when(self.command, url.path, self.headers, list(seen))
                    fault = None
                    if fault_when is not None and status is None:
                        fault = fault_when(self.command, url.path, self.headers, list(seen))
                    seen.append((self.command, url.path))
                body = self._body()
                if fault == STALL:
                    closing.wait()
                    self.close_connection = True
                    return
                if status is not None:
                    answer = f"<html><h1>refused by the test proxy</h1><p>{status}</p></html>"
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html; charset=UTF-8")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    if self.command != "HEAD":  # a HEAD's answer has no body
                        self.wfile.write(answer.encode())
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                if body is not None:
                    headers["Content-Length"] = str(len(body))
                target = url.path + (f"?{url.query}" if url.query else "")
                origin = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=120)
                try:
                    origin.request(self.command, target, body=body, headers=headers)
                    answer = origin.getresponse()
                    data = answer.read()
                finally:
                    origin.close()
                replaced = {}
                if isinstance(fault, Headers):
                    replaced = {k.lower(): v for k, v in fault.values.items()}
                self.send_response(answer.status, answer.reason)
                for key, value in answer.getheaders():
                    if key.lower() in _HOP or (
                        key.lower() == "content-length" and self.command != "HEAD"
                    ):
                        continue
                    self.send_header(key, replaced.get(key.lower(), value))
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if isinstance(fault, Cut) and fault.after < len(data):
                    self.wfile.write(data[: fault.after])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(data)

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = do_COPY = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # what sends a client's plain-HTTP requests through it, loopback's included
        self.env = {"http_proxy": self.url, "no_proxy": "", "NO_PROXY": ""}

    def __enter__(self) -> ForwardProxy:
        threading.Thread(target=self._server.serve_forever, name="forward-proxy",
                         daemon=True).start()  # fmt: skip
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
