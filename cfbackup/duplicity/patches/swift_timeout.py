"""Every swiftclient Connection duplicity makes waits for Swift at most duplicity's ``--timeout``
(a core patch).

duplicity 3.2.1's swift backend makes its Connection without a timeout, and SwiftService
passes ``timeout=None``; duplicity's ``--timeout`` (30 s, or what the profile's extra_options
say) only calls ``socket.setdefaulttimeout``, which requests (swiftclient's HTTP) overrides
with no timeout at all. A proxy that accepted a volume's PUT and never answered held the backup,
and its lock, for ever. Every Connection created without a timeout now gets
``duplicity.config.timeout``, read when it is created: after duplicity parsed its arguments, and
in an upload-pool worker after it loaded duplicity's config. It bounds connecting and each wait
for a byte; swiftclient then retries the request (``swift.retries`` times more, 5 unless set:
patches/swift_retries.py, whatever the order the two are applied in), duplicity the operation
(``--num-retries``), and the run ends with "cannot reach Swift ... timed out" (the bound:
docs/reliability.md). Applied first: the other Connection patches build on it.
"""

from __future__ import annotations

from collections.abc import Mapping


def applies(env: Mapping[str, str]) -> bool:
    return True


def apply(env: Mapping[str, str]) -> None:
    import swiftclient
    import swiftclient.client
    import swiftclient.service

    cls = timed(swiftclient.client.Connection)
    swiftclient.Connection = swiftclient.client.Connection = cls
    swiftclient.service.Connection = cls


def timed(base: type) -> type:
    """A ``base`` (swiftclient Connection) whose timeout, when none is given, is duplicity's."""

    class TimedConnection(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            if kwargs.get("timeout") is None:
                from duplicity import config

                kwargs["timeout"] = config.timeout
            super().__init__(*args, **kwargs)

    return TimedConnection
