"""Mask secrets in anything cfbackup prints or logs.

Secret values are registered when they are resolved (config/secrets.py); patterns catch what
is not known in advance, such as tokens in duplicity's debug output.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
_lock = threading.Lock()
_values: set[str] = set()
_PATTERNS = (
    re.compile(r"(?i)(x-(?:auth|storage|subject)-token['\"]?\s*[:=]\s*['\"]?)([^\s'\",}]+)"),
    re.compile(
        r"(?i)((?:password|passphrase|secret|api_?key|'key')['\"]?\s*[:=]\s*['\"]?)([^\s'\",}]+)"
    ),
    re.compile(r"\b(AUTH_tk)[0-9a-f]{8,}\b"),
    re.compile(r"\b(gAAAAA)[A-Za-z0-9_\-]{20,}"),  # Keystone fernet tokens
)


def register(value: str) -> None:
    """Remember ``value`` as a secret (values under 4 characters would mask too much)."""
    if value and len(value) >= 4:
        with _lock:
            _values.add(value)


def redact(text: str) -> str:
    if not text:
        return text
    with _lock:
        values = sorted(_values, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in every record passing through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
