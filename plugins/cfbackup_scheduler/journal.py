"""The scheduler daemon's own log lines: for journald (a ``<priority>`` prefix, no timestamp)
or a terminal, secrets masked; the weight of a child's lines; times as the log writes them."""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from cfbackup.redact import RedactingFilter

log = logging.getLogger("cfbackup.scheduler")
_PRIORITY = {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}


class JournalFormatter(logging.Formatter):
    """``<priority>message`` lines: journald stores the priority and adds its own timestamp."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelname, 6)
        return "\n".join(
            f"<{priority}>{line}" for line in super().format(record).splitlines() or [""]
        )


def stderr_is_journal() -> bool:
    """systemd sets JOURNAL_STREAM=dev:inode when stderr is connected to the journal."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(x) for x in stream.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


@contextlib.contextmanager
def daemon_logging(level: int):
    """The daemon's own stderr lines (not the CLI's terse handler), for journald or a terminal."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if stderr_is_journal():
        handler.setFormatter(JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    loggers = [(log, level), (logging.getLogger("apscheduler"), max(level, logging.WARNING))]
    saved = [(lg, lg.level, lg.propagate) for lg, _ in loggers]
    for logger, lvl in loggers:
        logger.addHandler(handler)
        logger.setLevel(lvl)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, lvl, propagate in saved:
            logger.removeHandler(handler)
            logger.setLevel(lvl)
            logger.propagate = propagate


def line_level(line: str) -> int:
    """The child's own error and warning lines keep their weight in the journal."""
    if line.startswith("cfbackup: error"):
        return logging.ERROR
    if line.startswith("cfbackup: warning") or line.startswith("plugin "):
        return logging.WARNING
    return logging.INFO


def when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if moment else "never (paused)"
