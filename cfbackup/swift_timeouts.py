"""A Swift request that timed out is not tried again by swiftclient: the rule cfbackup's own
client (``swift.connect``) and duplicity's (``patches/swift_timeout.py``) share.

swiftclient's ``_retry`` tries every failed request ``retries`` times more, each try waiting
the whole timeout again: against a Swift (or a middlebox) that accepts connections and never
answers, cfbackup's downloads (3 retries, 30 s each) held each of their tries about 2 minutes,
about 6.5 minutes with the default 3 tries. A timeout now marks swiftclient's attempts used up,
for a request and for a download's body that stalls (swiftclient's resume of it, ``_RetryBody``,
is not made); what fails fast (connection refused or reset, a 5xx) is retried as before, and the
callers' own retries (duplicity's ``--num-retries``, ``volume_fetch``'s tries) still retry and
announce each failure.

Standard library only at import time: duplicity's patches import it inside their ``apply``.
"""

from __future__ import annotations

import functools
import socket


def timeout_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "no answer within the timeout", from the socket up through
    urllib3 to requests (a connect or a read; a body read that timed out is a requests
    ConnectionError wrapping urllib3's ReadTimeoutError: :func:`timed_out` looks inside)."""
    import requests.exceptions
    import urllib3.exceptions

    return (socket.timeout, requests.exceptions.Timeout, urllib3.exceptions.TimeoutError)


def timed_out(error: BaseException, kinds: tuple[type[BaseException], ...] | None = None) -> bool:
    """Whether ``error``, or an error it wraps (its cause, its context, an exception among its
    arguments, urllib3's ``reason``), is one of ``kinds`` (:func:`timeout_errors` when None)."""
    kinds = timeout_errors() if kinds is None else kinds
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kinds):
            return True
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        pending.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)  # urllib3's MaxRetryError, ProtocolError
        if isinstance(reason, BaseException):
            pending.append(reason)
    return False


@functools.cache
def tried_once(base: type, kinds: tuple[type[BaseException], ...] | None = None) -> type:
    """A ``base`` (swiftclient Connection) that does not try a request again once it timed out.

    swiftclient's ``_retry`` raises a network error once ``attempts > retries``, and so does a
    download's ``_RetryBody.read`` instead of resuming: a timeout marks the attempts used up."""
    kinds = timeout_errors() if kinds is None else kinds

    class TriedOnceIfTimedOut(base):  # type: ignore[misc, valid-type]
        def _once_if_timed_out(self, call):
            """``call``, after which a timeout marks this connection's attempts used up."""

            def once_if_timed_out(*a, **kw):
                try:
                    return call(*a, **kw)
                except Exception as error:
                    if timed_out(error, kinds):
                        self.attempts = max(self.attempts, self.retries + 1)
                    raise

            return once_if_timed_out

        def _retry(self, reset_func, func, *args, **kwargs):
            return super()._retry(reset_func, self._once_if_timed_out(func), *args, **kwargs)

        def get_object(self, *args, **kwargs):
            headers, body = super().get_object(*args, **kwargs)
            resp = getattr(body, "resp", None)
            if getattr(body, "conn", None) is self and resp is not None:  # a _RetryBody
                resp.read = self._once_if_timed_out(resp.read)
            return headers, body

    TriedOnceIfTimedOut.__name__ = TriedOnceIfTimedOut.__qualname__ = base.__name__
    return TriedOnceIfTimedOut
