"""duplicity exits after a fatal error even while a gpg it started is still running.

duplicity waits for each gpg in a thread of its own (``gpginterface``'s ``threaded_waitpid``),
not a daemon thread. When a restore fails in the middle of a volume (the restore target's disk
is full: ``OSError: [Errno 28]``), duplicity logs the error and exits, but gpg is still blocked
writing the rest of the volume into a pipe nobody reads, and Python's exit waits for that
thread for ever: the run hung with its error already printed (measured with duplicity 3.2.1,
``tests/faults/test_disk_full.py::test_restore_target_full``). As daemon threads, the waiters no
longer hold the exit; once duplicity is gone, gpg's next write fails (the pipe has no reader)
and gpg ends too. duplicity still waits for every gpg explicitly while it runs.
"""

import threading


class _Threading:
    """``threading`` as gpginterface sees it: threads it starts are daemon threads."""

    def __getattr__(self, name):
        return getattr(threading, name)

    @staticmethod
    def Thread(*args, **kwargs):  # noqa: N802 - stands in for threading.Thread
        kwargs.setdefault("daemon", True)
        return threading.Thread(*args, **kwargs)


def applies(env):
    return True


def apply(env):
    from duplicity import gpginterface

    gpginterface.threading = _Threading()
