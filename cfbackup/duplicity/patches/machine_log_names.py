"""duplicity's machine-readable log (``--log-fd``) writes a record naming a file whose name is
not UTF-8, instead of dropping it (a core patch).

A Linux file name is bytes; duplicity decodes it with ``os.fsdecode``, so a latin-1 name from
an old Windows share (``caf\\xe9.txt``) holds a lone surrogate. ``log.add_fd`` opens the
descriptor as strict UTF-8 text, so writing a record whose message holds such a name fails,
and ``logging`` drops the whole record with a complaint on stderr. ``list`` lost every such
file (its ``INFO 10`` record is one per file), and a warning about such a file never reached
cfbackup. The record's control line is not the problem: duplicity writes names there with
``util.escape`` (ASCII, lossless).

Here the descriptor's stream writes UTF-8 with ``surrogateescape``: such a name's bytes are
written as they are on the disk. cfbackup's reader (``run.py``) shows them in messages as
``\\xe9``, as it shows such names everywhere else (``units.printable``).
"""


def applies(env):
    return True


def apply(env):
    from duplicity import log

    add_fd = log.add_fd

    def add_fd_keeping_names(fd):
        add_fd(fd)
        stream = getattr(log._logger.handlers[-1], "stream", None)
        if stream is not None and hasattr(stream, "reconfigure"):  # nothing written yet
            stream.reconfigure(encoding="utf-8", errors="surrogateescape")

    log.add_fd = add_fd_keeping_names
