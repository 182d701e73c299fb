"""The local Swift, reachable from the server namespace as a remote cloud: a TCP relay on an
address of the client namespace (``CLOUD4``), across the veth pair, to the session's Swift
proxy on the host's loopback.

The server's connections to it are outbound: the lock-down must let their replies in
(established traffic) for a restore to work. The relay counts the bytes Swift sends and can
hold them back (``hold_after``): a restore is then caught in the middle of a download for as
long as the test needs, however fast or loaded the machine is.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import socket
import threading

from fwlab import serve_in

CLOUD4, CLOUD_PORT = "10.231.0.9", 8080


class Relay:
    def __init__(self, client_ns, upstream: tuple[str, int]):
        self.upstream = upstream
        self.downloaded = 0  # bytes from Swift to the server, all connections
        self._open = threading.Event()
        self._open.set()
        self._hold_after: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # a socket belongs to the namespace of the thread that creates it, and a thread starts
        # in its creator's: this executor's thread stays in the host's, the listener's thread
        # (and the relay threads it starts) enter the client namespace
        self._host = concurrent.futures.ThreadPoolExecutor(1)
        self._host.submit(lambda: None).result()  # its thread starts here, not in a namespace

        def listen() -> None:
            self.listener = socket.create_server((CLOUD4, CLOUD_PORT))
            self.listener.settimeout(0.2)

        def serve() -> None:
            while not self._stop.is_set():
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                threading.Thread(target=self._connect, args=(conn,), daemon=True).start()

        self.thread = serve_in(client_ns, listen, serve)

    @property
    def url(self) -> str:
        return f"http://{CLOUD4}:{CLOUD_PORT}/auth/v1.0"

    def hold_after(self, nbytes: int) -> None:
        """Stop passing Swift's bytes on once ``nbytes`` more have gone through."""
        with self._lock:
            self._hold_after = self.downloaded + nbytes

    def holding(self) -> bool:
        return not self._open.is_set()

    def release(self) -> None:
        with self._lock:
            self._hold_after = None
        self._open.set()

    def close(self) -> None:
        self._stop.set()
        self.release()
        self.thread.join(5)
        with contextlib.suppress(AttributeError):
            self.listener.close()
        self._host.shutdown(wait=False)

    def _connect(self, conn: socket.socket) -> None:
        try:
            upstream = self._host.submit(socket.create_connection, self.upstream, 10).result()
        except OSError:
            conn.close()
            return
        threading.Thread(target=self._pump, args=(conn, upstream, False), daemon=True).start()
        self._pump(upstream, conn, True)

    def _pump(self, source: socket.socket, sink: socket.socket, down: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if down:
                    self._open.wait()
                    with self._lock:
                        self.downloaded += len(chunk)
                        if self._hold_after is not None and self.downloaded >= self._hold_after:
                            self._open.clear()
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
