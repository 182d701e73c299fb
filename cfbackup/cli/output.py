"""How results and errors look on the terminal (and as JSON for scripts)."""

from __future__ import annotations

import json
import sys
from typing import Any

from cfbackup.errors import CfbackupError
from cfbackup.redact import redact


def print_error(error: CfbackupError, *, debug: bool) -> None:
    print(f"cfbackup: error: {redact(error.message)}", file=sys.stderr)
    if debug and error.detail:
        print(redact(error.detail), file=sys.stderr)


def warn(message: str) -> None:
    print(f"cfbackup: warning: {redact(message)}", file=sys.stderr)


def info(message: str) -> None:
    print(redact(message))


def note(message: str) -> None:
    """What is about to happen, on stderr: stdout stays the result scripts read."""
    print(redact(message), file=sys.stderr, flush=True)


def print_json(data: Any) -> None:
    print(redact(json.dumps(data, indent=2, sort_keys=True, default=str)))


def print_result(result) -> None:
    """One line per profile: what it did, or what went wrong and where the log is."""
    if result.ok:
        info(result.message)
    else:
        print(f"cfbackup: error: {redact(result.message)}", file=sys.stderr)
        log_file = getattr(result, "log_file", None)
        if log_file:
            print(f"cfbackup: the run log is {log_file}", file=sys.stderr)
