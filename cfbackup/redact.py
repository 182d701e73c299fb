"""Mask secrets in anything cfbackup prints or logs.

Two levels, because cfbackup's own sentences must stay readable ("mode symmetric needs a
passphrase: set passphrase_file ..." must not lose the word after "passphrase:"):

- :func:`redact` masks the secret values registered when they were resolved
  (config/secrets.py). It is safe on any text, cfbackup's messages included.
- :func:`redact_output` also masks what looks like a credential in text cfbackup did not write:
  duplicity's and the libraries' output (tokens in debug lines, ``'key': '...'`` in a logged
  connection dict). Use it where such text enters cfbackup, never on a message template.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

MASK = "***"
_lock = threading.Lock()
_values: set[str] = set()
_variables: set[str] = set()  # environment variables a ``*_env`` setting names
_PATTERNS = (
    re.compile(r"(?i)(x-(?:auth|storage|subject)-token['\"]?\s*[:=]\s*['\"]?)([^\s'\",}]+)"),
    re.compile(
        r"(?i)((?:password|passphrase|secret|api_?key|'key')['\"]?\s*[:=]\s*['\"]?)([^\s'\",}]+)"
    ),
    re.compile(r"\b(AUTH_tk)[0-9a-f]{8,}\b"),
    re.compile(r"\b(gAAAAA)[A-Za-z0-9_\-]{20,}"),  # Keystone fernet tokens
    re.compile(r"(?i)(seskey:\s*|session key:\s*'?)[0-9]+:[0-9a-f]+"),  # gpg's session keys
)


def register(value: str) -> None:
    """Remember ``value`` as a secret (values under 4 characters would mask too much)."""
    if value and len(value) >= 4:
        with _lock:
            _values.add(value)


def register_variable(name: str) -> None:
    """Remember ``name`` as an environment variable that holds a secret (a ``*_env`` setting
    names it): no child gets it from cfbackup's environment (``execute.child_environment``)."""
    if name:
        with _lock:
            _variables.add(name)


def secret_variables() -> frozenset[str]:
    """The environment variables registered with :func:`register_variable`."""
    with _lock:
        return frozenset(_variables)


def redact(text: str) -> str:
    """``text`` with every registered secret value masked."""
    if not text:
        return text
    with _lock:
        values = sorted(_values, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact_data(value: Any) -> Any:
    """``value`` (what is about to become JSON) with every string masked, keys too,
    recursively. Masked before ``json.dumps``: it escapes a secret's non-ASCII characters,
    ``"`` and ``\\``, and the escaped text no longer holds the value :func:`redact` looks for.
    Anything else JSON cannot hold becomes its ``str()``, masked, as ``default=str`` would."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {redact_data(k): redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return redact(str(value))


def redact_output(text: str) -> str:
    """Output of another program or library: registered values and credential shapes masked."""
    text = redact(text)
    if not text:
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks the registered secret values in every record passing
    through a handler. Credential shapes are masked where other programs' text enters cfbackup
    (``execute``, duplicity's log reader, the ``_short`` helpers of swift, keystone and the
    cloud), not here: a record mixes that text with cfbackup's own sentences."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            # a Formatter formats the traceback only after the filters ran (log.exception):
            # formatted here, it is masked, and the Formatter uses this text as it is
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_output(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_output(record.stack_info)
        return True


_FORMATTER = logging.Formatter()
