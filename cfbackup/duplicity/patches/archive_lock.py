"""A duplicity that cannot take the archive dir's lock leaves the holder's lock file alone.

duplicity 3.2.1 locks ``ARCHIVE_DIR/NAME/lockfile`` (``util.acquire_lockfile``, a fasteners
``InterProcessLock``) before every command, and an atexit handler (``util.release_lockfile``)
releases it and deletes the file. ``acquire_lockfile`` sets ``config.lockfile`` and
``config.lockpath`` before it tries the lock, and leaves them set when the lock is held by
another process: the failing duplicity's exit then "releases" a lock it never held and deletes
the file the other duplicity holds its lock on. A third duplicity creates a new file, locks it,
and runs beside the first one in the same archive dir (measured:
``tests/unit/test_duplicity_patches.py::test_a_duplicity_refused_by_the_archive_lock_leaves_it_held``).

Here a failed acquire closes the file it opened and unsets both, so nothing is released or
deleted for a lock this process never held; the error duplicity raises is unchanged.
"""


def applies(env):
    return True


def apply(env):
    from duplicity import config, util

    acquire = util.acquire_lockfile

    def acquire_lockfile():
        try:
            acquire()
        except BaseException:
            lock = config.lockfile
            config.lockfile = None
            config.lockpath = ""
            close = getattr(lock, "_do_close", None)  # the file fasteners opened to try
            if close is not None:
                try:
                    close()
                except OSError:
                    pass
            raise

    util.acquire_lockfile = acquire_lockfile
