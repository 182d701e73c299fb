"""What the emulated services share: identifiers, times, microversions, HTTP errors."""

from __future__ import annotations

import datetime

MAX_MICROVERSION = "2.96"
PROJECT_ID = "0123456789abcdef0123456789abcdef"


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def mv_tuple(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


class HTTPError(Exception):
    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status = status
        self.payload = {kind: {"code": status, "message": message}}


def not_found(what: str):
    return HTTPError(404, "itemNotFound", f"{what} could not be found.")
