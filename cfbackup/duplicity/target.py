"""Targets: what a profile's ``target`` means for duplicity and for Swift."""

from __future__ import annotations

import dataclasses
import os
import urllib.parse


@dataclasses.dataclass(frozen=True)
class SwiftTarget:
    container: str
    prefix: str  # "" or "some/prefix" (no leading or trailing slash)

    @property
    def object_prefix(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""


def swift_target(url: str) -> SwiftTarget | None:
    """The container and prefix of a ``swift://`` target, None for any other scheme."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "swift":
        return None
    # as duplicity reads it (backend.ParsedUrl, then its swift backend): the path is
    # percent-decoded (web%2001 is "web 01", a%2Fb is a/b), the container is not, and empty
    # parts fold (swift://c//a//b/ is a/b)
    path = urllib.parse.unquote(parsed.path)
    prefix = "/".join(part for part in path.split("/") if part)
    return SwiftTarget(container=parsed.netloc, prefix=prefix)


def duplicity_url(url: str) -> str:
    """The URL as duplicity wants it (``swift://c/prefix`` and other schemes pass through)."""
    return url


def file_folder(url: str) -> str:
    """The folder a ``file://`` URL names, as duplicity's ``ParsedUrl`` reads it: the path
    percent-decoded, a host part (``file://b%20c``, relative) as written; "" for none."""
    parsed = urllib.parse.urlsplit(url)
    return parsed.netloc + urllib.parse.unquote(parsed.path)


def place(url: str) -> tuple[str, ...] | None:
    """Where a target's objects are, as parts that compare however the URL is written:
    ``("swift", container, *prefix)`` (a legacy ``cf+http://container`` is that container too)
    or ``("file", *absolute path)``; None for a URL that names no such place."""
    try:
        parsed = urllib.parse.urlsplit(url)
    except ValueError:  # swift://[ : refused where the target is checked
        return None
    scheme = parsed.scheme.lower()
    if scheme == "swift" or scheme.startswith("cf+http"):
        # as swift_target reads it: the prefix percent-decoded, the container as written
        parts = [part for part in urllib.parse.unquote(parsed.path).split("/") if part]
        return ("swift", parsed.netloc, *parts) if parsed.netloc else None
    if scheme == "file":  # duplicity reads file://rel as a relative path, file:///abs as absolute
        path = file_folder(url)
        if not path:
            return None
        return ("file", *(part for part in os.path.realpath(path).split("/") if part))
    return None
