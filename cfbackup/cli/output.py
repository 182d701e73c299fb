"""How results and errors look on the terminal (and as JSON for scripts)."""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any

from cfbackup.errors import CfbackupError
from cfbackup.redact import redact, redact_data, redact_output
from cfbackup.units import printable


def emit(text: str, stream: IO[str] | None = None, *, end: str = "\n") -> None:
    """Write a line (already redacted) to stdout or ``stream``; when the reader has gone
    (``cfbackup list | head``) stay quiet, as Unix tools do, and let the run finish. Written
    as it is (``config export``'s text): messages come through ``_message``."""
    stream = stream or sys.stdout
    try:
        try:
            stream.write(text + end)
        except UnicodeEncodeError:  # a file name that is not UTF-8 (os.fsdecode's surrogates)
            stream.write(printable(text) + end)
    except BrokenPipeError:
        close_broken_pipe(stream)


def flush_stdout() -> None:
    """The last write of a command (its buffered output) may be the one that finds the pipe
    closed: flush it here, where that is still quiet."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        close_broken_pipe(sys.stdout)


def close_broken_pipe(stream: IO[str]) -> None:
    """Point a stream whose reader has gone at /dev/null, so the writes still buffered, later
    ones and the interpreter's flush at exit neither fail nor print a complaint."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (a test's StringIO)
        pass


def _message(text: str) -> str:
    """A message (already redacted) as the terminal gets it: a file name in it may hold an
    ESC, a U+202E or bytes that are not UTF-8, which ``units.printable`` spells out (it keeps
    the message's own lines; a name spelled out already stays as it is)."""
    return printable(text)


def print_error(error: CfbackupError, *, debug: bool) -> None:
    emit(_message(f"cfbackup: error: {redact(error.message)}"), sys.stderr)
    if debug and error.detail:
        emit(_message(redact_output(error.detail)), sys.stderr)


def warn(message: str) -> None:
    emit(_message(f"cfbackup: warning: {redact(message)}"), sys.stderr)


def info(message: str) -> None:
    emit(_message(redact(message)))


def note(message: str) -> None:
    """What is about to happen, on stderr: stdout stays the result scripts read."""
    print(_message(redact(message)), file=sys.stderr, flush=True)


def print_json(data: Any) -> None:
    # masked before json.dumps escapes a secret (non-ASCII, " or \) out of redact's reach
    emit(redact(json.dumps(redact_data(data), indent=2, sort_keys=True, default=str)))


def print_result(result) -> None:
    """One line per profile: what it did, or what went wrong and where the log is."""
    if result.ok:
        info(result.message)
    else:
        emit(_message(f"cfbackup: error: {redact(result.message)}"), sys.stderr)
        log_file = getattr(result, "log_file", None)
        if log_file:
            emit(_message(f"cfbackup: the run log is {log_file}"), sys.stderr)
