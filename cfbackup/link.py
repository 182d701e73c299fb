"""How far a backup's Swift is: one round-trip probe, read by each choice that depends on the
link (``compression.py``'s level, ``upload_workers.py``'s processes).

A Swift on this host or its LAN answers in 1-5 ms; across a network it takes :data:`FAR` or
more. The requests run beside the passphrase check's gpg (``run.target_view`` runs them in a
thread), so they add no time before duplicity starts; a backup sends them once, whichever
choices are "auto".
"""

from __future__ import annotations

import logging
import time

from cfbackup import interrupts

FAR = 0.010  # seconds: the fastest answer of a Swift across a network, at least
PROBES = 4  # requests on one connection at most; the fastest counts
PROBE_KEY = "link-round-trip"
log = logging.getLogger("cfbackup")


def start_probe(run) -> None:
    """Time the Swift's answers beside the passphrase check, when the target is Swift."""
    if run.target_view is not None:
        run.target_view.start(PROBE_KEY, lambda view: round_trip(view.connection()))


def round_trip(conn) -> float:
    """The fastest of up to :data:`PROBES` requests for the storage host's ``/info`` on
    ``conn``, in seconds: a round trip plus the proxy's quickest answer (the proxy answers
    ``/info`` itself, no storage server behind it: 2-5 ms on this machine's loaded loopback,
    where a HEAD of the account took 5-10 ms). A cluster that hides ``/info`` answers too,
    and that counts."""

    from swiftclient.exceptions import ClientException

    times = []
    for _ in range(PROBES):
        start = time.monotonic()
        try:
            conn.get_capabilities()
        except ClientException as error:
            if not error.http_status:  # no answer at all: no round trip to count
                raise
        times.append(time.monotonic() - start)
        if times[-1] < FAR:  # near is proven; far needs every try (one may be slow)
            break
    return min(times)


def probed(run) -> float | None:
    """What :func:`start_probe` measured; None when it did not run or its requests failed
    (the checks report an unreachable Swift themselves)."""
    future = run.target_view.take(PROBE_KEY) if run.target_view is not None else None
    if future is None:
        return None
    try:
        return interrupts.result(future)
    except Exception as error:  # noqa: BLE001 - a failed measurement means "unknown"
        log.debug("link: the round-trip probe failed: %s", type(error).__name__)
        return None


def is_far(seconds: float | None) -> bool:
    return seconds is not None and seconds >= FAR


def in_ms(seconds: float) -> str:
    """``21 ms``; a tenth of a millisecond below 2 ms."""
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.002 else f"{seconds * 1000:.1f} ms"
