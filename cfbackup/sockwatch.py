"""The sockets some threads connect, so that another thread can shut them all at once: a
download stalled on the network ends then, whether it is still connecting, waiting for Swift's
response headers or reading the body, instead of at swiftclient's timeout (30 s a try), when
Ctrl-C or SIGTERM stops the run.

requests and urllib3 give no hold on a request's socket before its response arrives. Python's
audit event ``socket.connect`` does: it is raised in the thread that connects, before the
connection is made. One audit hook (added the first time :meth:`Sockets.watching` is entered;
an audit hook stays for the life of the process) records each socket a thread connects while it
is inside ``watching``; the sockets of other threads are left alone.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import sys
import threading
import time
import weakref
from collections.abc import Iterator

RECHECKS = 5  # shut_all's passes over sockets not connected yet (one may be about to connect)
RECHECK_PAUSE = 0.02

_local = threading.local()  # .watcher: the Sockets this thread's connections go to
_hooked = False
_hooking = threading.Lock()


def _hook(event: str, args: tuple) -> None:
    if event == "socket.connect":
        watcher = getattr(_local, "watcher", None)
        if watcher is not None:
            watcher._connecting(args[0])


def _install() -> None:
    global _hooked
    with _hooking:
        if not _hooked:
            sys.addaudithook(_hook)
            _hooked = True


class Sockets:
    """The sockets connected inside :meth:`watching`, until :meth:`shut_all` shuts them; after
    it, a connection started inside ``watching`` fails at once (ConnectionAbortedError)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self.shut = False

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """The connections this thread makes inside the block are this object's."""
        _install()
        outer = getattr(_local, "watcher", None)
        _local.watcher = self
        try:
            yield
        finally:
            _local.watcher = outer

    def shut_all(self) -> None:
        """Shut every socket (a blocked connect, send or receive on it fails at once), and
        refuse new connections. A socket caught between its record and its connect is not
        connected yet (ENOTCONN): it is shut again a few times, a few milliseconds apart."""
        with self._lock:
            self.shut = True
            pending = list(self._sockets)
        for attempt in range(RECHECKS):
            unconnected = []
            for sock in pending:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError as error:
                    if error.errno == errno.ENOTCONN and sock.fileno() != -1:
                        unconnected.append(sock)
            if not unconnected:
                return
            pending = unconnected
            if attempt < RECHECKS - 1:
                time.sleep(RECHECK_PAUSE)

    def adopt(self, sockets) -> None:
        """Sockets another thread connected (``swift_keepalive.preconnect``) whose requests
        run inside :meth:`watching` here: :meth:`shut_all` shuts them too; after it, they are
        refused as a new connection is."""
        for sock in sockets:
            self._connecting(sock)

    def _connecting(self, sock: socket.socket) -> None:
        with self._lock:
            if self.shut:
                raise ConnectionAbortedError(errno.ECONNABORTED, "stopped: cfbackup is ending")
            self._sockets.add(sock)
