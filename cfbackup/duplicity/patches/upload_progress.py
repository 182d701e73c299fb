"""Upload progress counts what was uploaded (a core patch).

duplicity's ``--progress`` adds up the bytes a backend reports (``progress.report_transfer``);
the local backend reports, the swift backend does not, so every progress record of a Swift
backup said "0 bytes" (and its estimate stayed at 0% until the end). ``BackendWrapper.put`` is
wrapped when duplicity imports ``duplicity.backend``: an upload that reported nothing is
counted once it is done. Backends that report are left alone.
"""


def _count_uploads(backend_module):
    """Wrap ``BackendWrapper.put``: an upload the backend did not report is reported after."""
    from duplicity import progress

    wrapper = backend_module.BackendWrapper
    put = wrapper.put
    if getattr(put, "cfbackup_patched", False):
        return

    def put_counted(self, source_path, remote_filename=None):
        tracker = progress.tracker
        before = tracker.total_bytecount if tracker is not None else None
        size = source_path.getsize()  # before: the local backend moves the file away
        put(self, source_path, remote_filename)
        if tracker is not None and tracker.total_bytecount == before and size:
            progress.report_transfer(0, size)
            progress.report_transfer(size, size)

    put_counted.cfbackup_patched = True
    wrapper.put = put_counted


def applies(env):
    return True


def apply(env):
    from cfbackup.duplicity.patches import after_import

    after_import("duplicity.backend", _count_uploads)
