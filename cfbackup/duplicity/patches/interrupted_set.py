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
``BackendException`` when Swift refused any of it (``swift_deletes.refusals``: Swift's own
answer, not a listing, which can lag a delete that worked). Nothing was uploaded yet and
nothing was deleted that Swift kept; cfbackup turns :data:`MARK`'s error into one sentence with
the fix (``cfbackup/duplicity/failures.py``). Other commands are unchanged: retention and
cleanup go on after a refused delete and cfbackup checks what stayed (``named_deletes.py``).
"""

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
        delete(self)
        refused = list(swift_deletes.refusals.values())
        if refused:
            raise BackendException(
                f"{MARK} Swift refused to delete {len(refused)} object(s) of the interrupted "
                f"backup set {self.get_timestr()} ({refused[-1]})"
            )

    delete_or_stop.cfbackup_patched = True
    return delete_or_stop


def applies(env):
    return True


def apply(env):
    from duplicity import dup_collections

    backup_set = dup_collections.BackupSet
    if not getattr(backup_set.delete, "cfbackup_patched", False):
        backup_set.delete = _stopping(backup_set.delete)
