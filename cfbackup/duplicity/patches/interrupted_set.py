"""A backup whose interrupted set Swift refuses to delete ends at once, saying so (a core patch).

Before a backup duplicity 3.2.1 deletes an interrupted set it cannot resume
(``dup_collections.BackupSet.delete``): in ``dup_main.main``'s ``while True`` loop (a set
without a manifest: it deletes it, lists the target again and starts the loop over) and in
``Restart.checkManifest`` (only the first volume was at the target: it deletes the set, then
executes itself again, ``os.execve``). Neither looks at what the delete did. When Swift refuses
the deletes (a 403 from an ACL, an object lock or a middleware; a 503), the set is still there
on the next turn, and duplicity deletes it again, for ever: a cron backup that never ends
(``tests/faults/test_interrupted_set.py``; its log said "Cleaning up previous partial inc
backup set, restarting." five times a second).

During a backup (``full``, ``inc``) the set's delete now ends duplicity with a
``BackendException`` when any of it was not deleted: Swift refused it (``swift_deletes.refusals``:
Swift's own answer, not a listing, which can lag a delete that worked), or the backend's delete
raised on its last try (a ``file://`` target on a read-only disk or in a folder the user may not
write: duplicity's retries only warn, and the loop was the same). Nothing was uploaded yet and
nothing was deleted that Swift kept; cfbackup turns :data:`MARK`'s error into one sentence with
the fix (``cfbackup/duplicity/failures.py``). Other commands are unchanged: retention and
cleanup go on after a refused delete and cfbackup checks what stayed (``named_deletes.py``).
"""

import contextlib
import os

MARK = "[cfbackup-interrupted-set]"  # the error's start: cfbackup/duplicity/failures.py reads it
BACKUPS = ("full", "inc")  # duplicity's config.action of a backup


def _stopping(delete):
    def delete_or_stop(self):
        from duplicity import config
        from duplicity.errors import BackendException

        from cfbackup.duplicity.patches import swift_deletes

        if config.action not in BACKUPS:
            return delete(self)
        swift_deletes.refusals.clear()
        failed: dict[str, str] = {}
        with _recording(getattr(getattr(self, "backend", None), "backend", None), failed):
            delete(self)
        kept = [*swift_deletes.refusals.values(), *failed.values()]
        if kept:
            raise BackendException(
                f"{MARK} the interrupted backup set {self.get_timestr()} could not be deleted "
                f"({kept[-1]})"
            )

    delete_or_stop.cfbackup_patched = True
    return delete_or_stop


@contextlib.contextmanager
def _recording(raw, failed: dict[str, str]):
    """While the set is deleted, each object whose last delete raised, with the error, in
    ``failed``: duplicity's retries swallow it (``retry("delete", fatal=False)``). Swift's
    refusals are answers, not errors (``swift_deletes``); a local target's (a read-only disk, a
    folder it may not write) raise. The wrappers are set on the backend object and its own
    attributes put back after (a backend may set them itself, as par2's does)."""
    missing = object()
    saved: dict[str, object] = {}
    try:
        for name in ("_delete", "_delete_list"):
            method = getattr(raw, name, None)
            if not callable(method):
                continue
            own = vars(raw).get(name, missing) if hasattr(raw, "__dict__") else missing
            try:
                setattr(raw, name, _recorded(method, failed, many=name == "_delete_list"))
            except AttributeError:  # read-only (a property, __slots__): not recorded
                continue
            saved[name] = own
        yield
    finally:
        for name, own in saved.items():
            with contextlib.suppress(AttributeError):
                if own is missing:
                    delattr(raw, name)  # the class's method again
                else:
                    setattr(raw, name, own)


def _recorded(method, failed: dict[str, str], *, many: bool):
    def call(what):
        names = [_name(n) for n in (what if many else [what])]
        key = names[0] if names else ""
        try:
            result = method(what)
        except Exception as error:
            # a batch that raised may have deleted some of its objects: one entry for it
            some = f" (one of {len(names)} in a batch)" if len(names) > 1 else ""
            failed[key] = f"{key}{some}: {type(error).__name__}: {error}"
            raise
        failed.pop(key, None)
        return result

    return call


def _name(name) -> str:
    return os.fsdecode(name) if isinstance(name, bytes) else str(name)


def applies(env):
    return True


def apply(env):
    from duplicity import dup_collections

    backup_set = dup_collections.BackupSet
    if not getattr(backup_set.delete, "cfbackup_patched", False):
        backup_set.delete = _stopping(backup_set.delete)
