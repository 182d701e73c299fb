"""A delete Swift refuses is said, once, with Swift's status and reason (a core patch).

duplicity 3.2's swift backend deletes through ``SwiftService.delete``, which does not raise: it
yields a result per object, and a refused DELETE (a 403 from an ACL, an object lock or a
middleware, a 503) is only ``success: False`` in a result the backend never reads. duplicity
logged nothing, and cfbackup's message for the backups left behind (``cfbackup/retention.py``,
exit 13) could not say why. Now the backend's ``_delete`` warns for a refused delete, naming
the object and Swift's answer (``403 Forbidden``), and goes on with the next object, as
duplicity does for every delete (``@retry("delete", fatal=False)``): a refused delete never
aborts the others.

It warns instead of raising: raised, duplicity's retry would try each object three times more,
10 s apart, on top of the retries swiftclient already made with its own back-off (5, about
30 s, for a 5xx or a lost connection); a container that refuses deletes would cost a prune
about two minutes per object for the same answer. swiftclient's retries are what can change;
once they are spent, the answer stands. An object already gone (404) is deleted as far as
anyone can tell: no warning.

Each refused delete is also kept in :data:`refusals` (duplicity's file name -> Swift's
answer) for the patches that must not go on after one (``interrupted_set.py``).
"""

import os

_TARGET = "duplicity.backends.swiftbackend"
REFUSED = "Swift refused to delete "  # the warning's start: cfbackup/retention.py reads it
refusals: dict[str, str] = {}  # in this process: the file names Swift refused to delete


def _failure(error) -> str | None:
    """What Swift answered to a failed delete (``error`` of its result); None for an object
    already gone."""
    status = getattr(error, "http_status", None)
    if status == 404:
        return None
    reason = getattr(error, "http_reason", None) or ""
    return f"{status} {reason}".strip() if status else f"{type(error).__name__}: {error}"


def _reporting(delete):
    def _delete(self, filename):
        from duplicity import log

        name = self.prefix + os.fsdecode(filename)
        for result in self.svc.delete(self.container, [name]):
            if result.get("success", True) or result.get("action") != "delete_object":
                continue
            answer = _failure(result.get("error"))
            if answer is not None:
                log.Warn(f"{REFUSED}{name}: it answered {answer}")
                refusals[os.fsdecode(filename)] = f"{REFUSED}{name}: it answered {answer}"

    _delete.cfbackup_patched = True
    _delete.cfbackup_original = delete
    return _delete


def _patch(module):
    backend = getattr(module, "SwiftBackend", None)
    if backend is not None and not getattr(backend._delete, "cfbackup_patched", False):
        backend._delete = _reporting(backend._delete)


def applies(env):
    return True


def apply(env):
    from cfbackup.duplicity.patches import after_import

    after_import(_TARGET, _patch)
