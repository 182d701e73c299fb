"""Run a batch of calls side by side, and stop the batch at its first failure.

A drill's restores and the fetch of a restore's or a check's volumes both run several calls at
once where any one failing (Swift unreachable, Ctrl-C) makes the rest pointless: the caller's
``halt`` tells the running calls to stop (an event they poll, a process group to kill), the
calls not started yet are cancelled, and the first failure is raised once every call is over.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence

from cfbackup import interrupts


def run_all(
    calls: Sequence[Callable[[], object]],
    *,
    workers: int,
    name: str,
    halt: Callable[[], None],
) -> None:
    """Run ``calls`` on up to ``workers`` threads (named ``name``); on the first exception,
    KeyboardInterrupt included, call ``halt``, cancel what has not started and raise it."""
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, min(workers, len(calls) or 1)), thread_name_prefix=name
    ) as pool:
        futures = [pool.submit(call) for call in calls]
        try:
            done = interrupts.wait(futures, concurrent.futures.FIRST_EXCEPTION)
            for future in done:
                future.result()  # the first failure, if any: every call has ended otherwise
        except BaseException:
            halt()
            for future in futures:
                future.cancel()
            raise
