"""duplicity's names for the files of a backup, with the file prefixes a profile gives it.

duplicity puts ``--file-prefix`` and then ``--file-prefix-archive`` (volumes),
``--file-prefix-manifest``, ``--file-prefix-signature`` or ``--file-prefix-jsonstat`` before
every name it writes, at the target and in the archive dir, and reads back only the names that
carry them (``file_naming.prepare_regex``). Everything in cfbackup that reads those names (the
collection status, the volumes of ``verify --read-data``, ``drill`` and the restore prefetch,
the future-dated sets, retention's checks, the next backup's plan) reads them with
:func:`of`'s naming, so a profile with prefixes in ``extra_options`` is read as duplicity reads
it.

duplicity's ``file_naming`` keeps its patterns in module globals built from its ``config``:
cfbackup leaves those at their defaults (no prefix) and strips a profile's prefixes itself, so
profiles with different prefixes can be read side by side in one process.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from typing import Any

from cfbackup.duplicity import options

# the kinds of names a prefix applies to, by what file_naming.parse reads of them
_KINDS = ("archive", "manifest", "signature", "jsonstat")

_PATTERNS = threading.Lock()


def _file_naming():
    """duplicity's ``file_naming`` with its (prefix-less) patterns built. ``prepare_regex``
    (which its ``parse`` calls) assigns them one by one and returns early once the first is
    set, so a second thread parsing meanwhile (split chains restore side by side) found one
    still None: the lock builds them once before anyone parses."""
    from duplicity import file_naming

    with _PATTERNS:
        file_naming.prepare_regex()
    return file_naming


def _kind(parsed: Any) -> str:
    if parsed.type in ("full-sig", "new-sig"):
        return "signature"
    if parsed.type in ("full-stat", "inc-stat"):
        return "jsonstat"
    return "manifest" if parsed.manifest else "archive"


@dataclasses.dataclass(frozen=True)
class Naming:
    """The file prefixes duplicity is given (all "" by default)."""

    common: str = ""
    archive: str = ""
    manifest: str = ""
    signature: str = ""
    jsonstat: str = ""

    def prefix(self, kind: str) -> str:
        """The whole prefix of a name of ``kind`` ("archive", "manifest", "signature",
        "jsonstat")."""
        return self.common + getattr(self, kind)

    def parse(self, name: str) -> Any:
        """What duplicity's ``file_naming.parse`` reads of ``name`` with these prefixes (a
        ``ParseResults``), None for a name that is not one of duplicity's."""
        file_naming = _file_naming()
        tried: set[str] = set()
        for kind in _KINDS:
            prefix = self.prefix(kind)
            if prefix in tried or not name.startswith(prefix):
                continue
            tried.add(prefix)
            parsed = file_naming.parse(os.fsencode(name[len(prefix) :]))
            if parsed is not None and self.prefix(_kind(parsed)) == prefix:
                return parsed
        return None

    def parsed(self, names) -> list[tuple[str, Any]]:
        """Each of ``names`` duplicity reads as one of its files, with what it reads of it."""
        return [(name, found) for name in names if (found := self.parse(name)) is not None]

    def manifest_name(self, kind: str, end: str, start: str | None = None) -> str:
        """The name of a set's manifest without its suffix (``.gpg``, ``.part``): ``end``,
        ``start`` as duplicity writes times (``20261126T054842Z``); ``start`` "*" gives a glob
        for an incremental whatever its start."""
        if kind == "full":
            return f"{self.prefix('manifest')}duplicity-full.{end}.manifest"
        return f"{self.prefix('manifest')}duplicity-inc.{start}.to.{end}.manifest"

    def full_pattern(self) -> re.Pattern:
        """The names of a full backup's volumes, manifest and signatures (and their .part and
        .gpg variants), the set's time as group 1."""
        kinds = sorted(
            {
                re.escape(self.prefix("archive")) + "duplicity-full",
                re.escape(self.prefix("manifest")) + "duplicity-full",
                re.escape(self.prefix("signature")) + "duplicity-full-signatures",
            }
        )
        return re.compile(f"^(?:{'|'.join(kinds)})\\.(\\d{{8}}T\\d{{6}}Z)\\.")

    @property
    def plain(self) -> bool:
        return self == PLAIN


PLAIN = Naming()

OPTIONS = {
    "common": "--file-prefix",
    "archive": "--file-prefix-archive",
    "manifest": "--file-prefix-manifest",
    "signature": "--file-prefix-signature",
    "jsonstat": "--file-prefix-jsonstat",
}


def of(profile) -> Naming:
    """The naming duplicity uses for ``profile``: the prefixes its ``extra_options`` give
    (the last of each, as duplicity's option parser keeps it; a profile built by hand without
    them has none)."""
    words = list(profile.get("extra_options") or ())
    return Naming(**{field: options.last_value(words, o) or "" for field, o in OPTIONS.items()})
