"""duplicity's machine-readable log (``--log-fd``) names each file it is about to delete at
the target (a core patch), so cfbackup can check afterwards that the target really deleted it.

duplicity ignores a delete the target refuses: its backend retries and goes on without failing
the command, and its Swift backend does not even read SwiftService's result. A retention or a
cleanup whose deletes Swift refused (an ACL, an object lock, a middleware, a 5xx) exited 0 and
the old backups stayed, billed. Working out afterwards what duplicity meant to delete, from a
listing of the target, is a model of duplicity's choice, and it was wrong (a rule judged on
what a later rule left, an incremental left orphaned by a refused delete, a listing that lags
Swift's deletes, ``--file-prefix``). Here duplicity says it itself: ``BackendWrapper.delete``
(every delete of a backup set, a chain, a signature chain and ``cleanup``) first writes one
``INFO 1 cfbackup-delete 'NAME'`` record per file (the name as ``util.escape`` writes it),
straight to the machine-log handler, so that it reaches cfbackup whatever ``--verbosity`` the
profile's ``extra_options`` set. cfbackup then checks each named object (``retention.py``).
"""

DELETE = "cfbackup-delete"  # the record's extra starts with it: INFO 1 cfbackup-delete 'NAME'


def applies(env):
    return True


def apply(env):
    from duplicity import backend

    delete = backend.BackendWrapper.delete

    def delete_named(self, filename_list):
        if not isinstance(filename_list, (bytes, str)):
            filename_list = list(filename_list)
            announce(filename_list)
        return delete(self, filename_list)

    backend.BackendWrapper.delete = delete_named


def announce(names):
    """One record per name to each machine-log handler, past the logger's verbosity."""
    import logging

    from duplicity import util

    from cfbackup.duplicity.patches import machine_log_handlers

    handlers = machine_log_handlers()
    for name in names:
        record = logging.LogRecord(
            "duplicity", logging.INFO, __file__, 0, f"deleting {util.escape(name)}", None, None
        )
        record.levelName = "INFO"
        record.controlLine = f"1 {DELETE} {util.escape(name)}"
        record.transferProgress = False
        for handler in handlers:
            handler.handle(record)
