"""Run a batch of calls side by side, and stop the batch at its first failure.

A drill's restores and the fetch of a restore's or a check's volumes both run several calls at
once where any one failing (Swift unreachable, Ctrl-C) makes the rest pointless: the caller's
``halt`` tells the running calls to stop (an event they poll, a process group to kill), the
calls not started yet are cancelled, and the first failure is raised once every call is over.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Sequence

from cfbackup import interrupts


def run_all(
    calls: Sequence[Callable[[], object]],
    *,
    workers: int,
    name: str,
    halt: Callable[[], None],
    stop: threading.Event | None = None,
) -> None:
    """Run ``calls`` on up to ``workers`` threads (named ``name``); on the first exception,
    KeyboardInterrupt included, call ``halt``, cancel what has not started and raise it. When
    ``stop`` is set from outside (a drill's --max-duration), ``halt`` is called too, within
    ``interrupts.SLICE`` seconds, and the calls end as they see it: a call blocked on the
    network must not wait for the event it cannot poll. The futures are waited for in slices
    of it: a stop signal a worker thread took is acted on as soon (Python runs handlers only
    when the main thread runs)."""
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, min(workers, len(calls) or 1)), thread_name_prefix=name
    ) as pool:
        futures = [pool.submit(call) for call in calls]
        halted = False
        try:
            pending = set(futures)
            while pending:
                done, pending = concurrent.futures.wait(
                    pending,
                    timeout=interrupts.SLICE,
                    return_when=concurrent.futures.FIRST_EXCEPTION,
                )
                for future in done:
                    future.result()  # the first failure, raised here
                if stop is not None and not halted and stop.is_set():
                    halted = True
                    halt()
        except BaseException:
            halt()
            for future in futures:
                future.cancel()
            raise
