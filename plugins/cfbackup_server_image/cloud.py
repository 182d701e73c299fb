"""server_image's side of the cloud: the core connection (``cfbackup.cloud``) with this
plugin's settings, and a wait loop.

openstacksdk's own waits are not used for images: ``create_server_image(wait=True)`` does not
treat an image that ends ``killed`` as a failure and waits out its timeout (DESIGN.md section
5). :func:`wait_for` has the semantics of ``image.wait_for_status(..., failures=['killed'])``
plus progress lines and a back-off that starts short (quick operations return quickly).

A check that fails with an error asking again may cure (a 503 while a load balancer restarts,
an API that did not answer in time: ``cfbackup.cloud.is_transient``) does not end a wait: the
checks go on, backing off as usual, while the failures have lasted less than
``ERROR_WINDOW`` seconds and the wait's own timeout has not passed. A count of failures would
let a one-second hiccup end an hour-long image wait (three fast retries are over in 0.3 s).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from cfbackup import cloud

SECTION = "server_image"
ERROR_WINDOW = 300.0  # seconds of failing checks in a row a wait rides out (within its timeout)

# connect(profile): this section's cloud, region_name and api_timeout come first
connect = functools.partial(cloud.connect, section=SECTION)
# a timeout names the setting that raises it
cloud_errors = functools.partial(cloud.cloud_errors, timeout_setting=f"{SECTION}.api_timeout")


class WaitFailed(Exception):
    """The resource reached a failure status."""

    def __init__(self, status: str, resource: Any):
        super().__init__(status)
        self.status, self.resource = status, resource


class WaitTimedOut(Exception):
    """The resource did not reach the wanted status within the timeout."""

    def __init__(self, status: str, waited: float):
        super().__init__(status)
        self.status, self.waited = status, waited


def wait_for(
    fetch: Callable[[], Any],
    *,
    what: str,
    goal: str,
    ready: tuple[str, ...],
    failures: tuple[str, ...],
    timeout: float,
    max_interval: float,
    progress: Callable[[str], None],
    status_of: Callable[[Any], str] = lambda r: str(r.status),
) -> Any:
    """Poll ``fetch()`` until its status is in ``ready`` (returns the resource); raise
    :class:`WaitFailed` on a status in ``failures`` and :class:`WaitTimedOut` after
    ``timeout`` seconds. Statuses compare case-insensitively; a progress line saying what is
    awaited ("waiting for ``what`` to be ``goal``") is printed when the status changes and
    every 30 s. A check that fails with a transient error is retried with the same back-off
    while the failures have lasted less than ``ERROR_WINDOW`` s and ``timeout`` has not
    passed; then (or at once, for an error asking again will not cure) it is raised."""
    from cfbackup.errors import CfbackupError

    ready_l = {s.lower() for s in ready}
    failures_l = {s.lower() for s in failures}
    start = time.monotonic()
    interval, last_status, last_report = 0.1, None, start
    failing_since: float | None = None
    while True:
        try:
            resource = fetch()
            failing_since = None
        except CfbackupError as error:  # a failed check in a long wait is not the end
            now = time.monotonic()
            if not cloud.is_transient(error):
                raise
            if failing_since is None:
                failing_since, last_report = now, now - 30
            failing = now - failing_since
            if failing >= ERROR_WINDOW or now - start >= timeout:
                spell = (
                    f"every check of the last {failing:.0f} s failed"
                    if failing >= 1
                    else "the last check failed"
                )
                raise CfbackupError(
                    f"{what} was not {goal} after {now - start:.0f} s and {spell}: {error.message}",
                    exit_code=error.exit_code,
                ) from None
            if now - last_report >= 30:
                progress(
                    f"waiting for {what} to be {goal}: {error.message.rstrip('.')} (retrying "
                    f"for up to {min(ERROR_WINDOW, timeout - (failing_since - start)):.0f} s)"
                )
                last_report = now
            time.sleep(max(0.0, min(interval, timeout - (now - start))))
            interval = min(interval * 2, max_interval)
            continue
        status = status_of(resource)
        now = time.monotonic()
        waited = now - start
        if status.lower() in ready_l:
            progress(f"{what} is {goal} after {waited:.0f} s")
            return resource
        if status.lower() in failures_l:
            raise WaitFailed(status, resource)
        if status != last_status or now - last_report >= 30:
            progress(
                f"waiting for {what} to be {goal}: it is {status} ({waited:.0f} s of at most "
                f"{timeout:.0f} s)"
            )
            last_status, last_report = status, now
        if waited >= timeout:
            raise WaitTimedOut(status, waited)
        time.sleep(max(0.0, min(interval, timeout - waited)))
        interval = min(interval * 2, max_interval)
