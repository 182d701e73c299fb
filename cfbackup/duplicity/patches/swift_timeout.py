"""Every swiftclient Connection duplicity makes waits for Swift at most duplicity's ``--timeout``
(a core patch).

duplicity 3.2.1's swift backend makes its Connection without a timeout, and SwiftService
passes ``timeout=None``; duplicity's ``--timeout`` (30 s, or what the profile's extra_options
say) only calls ``socket.setdefaulttimeout``, which requests (swiftclient's HTTP) overrides
with no timeout at all. A proxy that accepted a volume's PUT and never answered held the backup,
and its lock, for ever. Every Connection created without a timeout now gets
``duplicity.config.timeout``, read when it is created: after duplicity parsed its arguments, and
in an upload-pool worker after it loaded duplicity's config. It bounds connecting and each wait
for a byte. A request that timed out is not tried again by swiftclient: its ``_retry`` tried
every failed request ``swift.retries`` times more (5 unless set), each try waiting the whole
timeout again, so a mute Swift held each of duplicity's ``--num-retries`` attempts 6 x 30 s plus
31 s of back-off: about 11 minutes in all before the run said anything but warnings. duplicity's
own loop still tries the operation again (``--num-retries``, each failure announced), and
swiftclient still retries what fails fast (connection refused or reset, a 5xx) as before; the
run ends with "Swift ... accepted the connection but sent no answer" after about 2 minutes (the
bound: docs/reliability.md). The same holds for a download's body that stalls: swiftclient's
resume of it (``_RetryBody``) is not made. Applied first: the other Connection patches build on it.

The wait for an answer starts when the last ``sendall`` of a request's body returns, while the
kernel's send buffer (up to ``tcp_wmem``'s 4 MB) and the queues on the way still hold bytes that
an uplink slower than about 1 Mbit/s needs more than ``--timeout`` to deliver: every volume PUT
of a healthy slow upload timed out. urllib3's ``getresponse`` now first waits while the socket's
unacknowledged bytes (``TIOCOUTQ``) go down, each wait for progress at most the read timeout;
once Swift has them all (or where the count cannot be read) the timeout counts as before. A
proxy that takes nothing more and never answers is still given up on after the timeout.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Mapping


def applies(env: Mapping[str, str]) -> bool:
    return True


def apply(env: Mapping[str, str]) -> None:
    import swiftclient
    import swiftclient.client
    import swiftclient.service
    import urllib3.connection

    cls = timed(swiftclient.client.Connection, timeout_errors())
    swiftclient.Connection = swiftclient.client.Connection = cls
    swiftclient.service.Connection = cls
    base = urllib3.connection.HTTPConnection
    if not getattr(base.getresponse, "cfbackup_patched", False):
        base.getresponse = after_upload(base.getresponse)


def after_upload(getresponse):
    """urllib3's ``HTTPConnection.getresponse``, waiting first while the request's bytes still
    leave (:func:`drain`)."""

    def getresponse_after_upload(self, *args, **kwargs):
        sock = getattr(self, "sock", None)
        if sock is not None and isinstance(self.timeout, int | float) and self.timeout > 0:
            drain(sock, float(self.timeout))
        return getresponse(self, *args, **kwargs)

    getresponse_after_upload.cfbackup_patched = True
    return getresponse_after_upload


def drain(sock, timeout: float, step: float = 1.0) -> None:
    """Return when ``sock`` has an answer to read or every byte sent is acknowledged; raise
    ``TimeoutError`` when ``timeout`` seconds pass with neither an answer nor fewer bytes
    unacknowledged (a peer that takes nothing more and says nothing)."""
    last = unacknowledged(sock)
    deadline = time.monotonic() + timeout
    while last:
        if getattr(sock, "pending", lambda: 0)():  # TLS: an answer already decrypted
            return
        readable, _, _ = select.select(
            [sock], [], [], max(0.0, min(step, deadline - time.monotonic()))
        )
        if readable:
            return
        now, left = time.monotonic(), unacknowledged(sock)
        if left < last:
            last, deadline = left, now + timeout
        elif now >= deadline:
            raise TimeoutError("timed out")


def unacknowledged(sock) -> int:
    """The bytes sent on ``sock`` its peer has not acknowledged yet (Linux ``TIOCOUTQ``); 0
    where that cannot be read (the plain read timeout applies)."""
    try:
        import fcntl
        import termios

        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (ImportError, AttributeError, OSError, ValueError):
        return 0
    return struct.unpack("i", raw)[0]


def timeout_errors() -> tuple[type[BaseException], ...]:
    """What "no answer within the timeout" is (``cfbackup/swift_timeouts.py``, shared with
    cfbackup's own client)."""
    from cfbackup import swift_timeouts

    return swift_timeouts.timeout_errors()


def timed(base: type, kinds: tuple[type[BaseException], ...] = (socket.timeout,)) -> type:
    """A ``base`` (swiftclient Connection) whose timeout, when none is given, is duplicity's,
    and which does not try a request again once it timed out (``kinds``: :func:`timeout_errors`;
    ``swift_timeouts.tried_once``, the rule cfbackup's own client follows too)."""
    from cfbackup import swift_timeouts

    class TimedConnection(swift_timeouts.tried_once(base, kinds)):  # type: ignore[misc]
        def __init__(self, *args, **kwargs):
            if kwargs.get("timeout") is None:
                from duplicity import config

                kwargs["timeout"] = config.timeout
            super().__init__(*args, **kwargs)

    return TimedConnection
