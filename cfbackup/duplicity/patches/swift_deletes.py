"""A delete Swift refuses fails, with Swift's status and reason (a core patch).

duplicity 3.2's swift backend deletes through ``SwiftService.delete``, which does not raise: it
yields a result per object, and a refused DELETE (a 403 from an ACL, an object lock or a
middleware, a 503) is only ``success: False`` in a result the backend never reads. duplicity
logged nothing, and cfbackup's message for the backups left behind (``cfbackup/retention.py``,
exit 13) could not say why. Now the backend's ``_delete`` raises for a refused delete, naming
the object and Swift's answer (``403 Forbidden``), so duplicity's ``@retry("delete",
fatal=False)`` warns "Attempt of _do_delete Nr. N failed. ..." and goes on with the next
object, as it does for every other backend: a refused delete still never aborts the others.

An object already gone (404) is deleted as far as anyone can tell: not an error. A refusal
Swift gives again whatever the wait (a 4xx other than 404, 408 and 429) is not retried: three
tries ten seconds apart for each object of each old backup set would make a prune of a
container that refuses deletes take minutes per set, for the same answer. It is marked with
the code duplicity's retry treats as "no use waiting" (``backend_not_found``, the only such
code; a non-fatal delete uses it for nothing else): its tries follow at once, without the
``--backend-retry-delay`` between them. A 5xx or a connection error is retried as before.
"""

import os

_TARGET = "duplicity.backends.swiftbackend"
# 4xx answers that may change on a retry
_TRANSIENT = (408, 429)


class SwiftRefused(Exception):
    """A delete Swift answered with a refusal it gives again on a retry."""


def _failure(error):
    """The exception a failed delete result's ``error`` becomes; None for an object gone."""
    status = getattr(error, "http_status", None)
    if status == 404:
        return None
    reason = getattr(error, "http_reason", None) or ""
    what = f"{status} {reason}".strip() if status else f"{type(error).__name__}: {error}"
    return what, status


def _raising(delete):
    def _delete(self, filename):
        name = self.prefix + os.fsdecode(filename)
        for result in self.svc.delete(self.container, [name]):
            if result.get("success", True) or result.get("action") != "delete_object":
                continue
            failed = _failure(result.get("error"))
            if failed is None:
                continue
            what, status = failed
            message = f"Swift answered {what} to the DELETE of {name}"
            if status and 400 <= status < 500 and status not in _TRANSIENT:
                raise SwiftRefused(message)
            from duplicity.errors import BackendException

            raise BackendException(message)

    _delete.cfbackup_patched = True
    _delete.cfbackup_original = delete
    return _delete


def _not_retried(error_code):
    def _error_code(self, operation, e):
        if isinstance(e, SwiftRefused):
            from duplicity import log

            return log.ErrorCode.backend_not_found  # duplicity's retry: no wait
        return error_code(self, operation, e)

    _error_code.cfbackup_patched = True
    return _error_code


def _patch(module):
    backend = getattr(module, "SwiftBackend", None)
    if backend is None:
        return
    if not getattr(backend._delete, "cfbackup_patched", False):
        backend._delete = _raising(backend._delete)
    if not getattr(backend._error_code, "cfbackup_patched", False):
        backend._error_code = _not_retried(backend._error_code)


def applies(env):
    return True


def apply(env):
    from cfbackup.duplicity.patches import after_import

    after_import(_TARGET, _patch)
