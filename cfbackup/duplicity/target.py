"""Targets: what a profile's ``target`` means for duplicity and for Swift."""

from __future__ import annotations

import dataclasses
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
