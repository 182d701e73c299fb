"""duplicity's file selection (``--include``/``--exclude`` shell globs), re-implemented.

The quota estimate must walk exactly the files duplicity will back up, without running it.
This mirrors duplicity 3.2's ``globmatch.select_fn_from_glob`` and ``selection.Select``:

- a rule matches a path when the glob matches the path or one of its parent folders
  (excluding a folder excludes what is inside it; including a folder includes its contents);
- ``**`` matches anything including ``/``, ``*`` and ``?`` anything but ``/``, ``[...]`` a class
  (``[!...]``/``[^...]`` negated); a glob ending in ``/`` matches folders only;
  ``ignorecase:`` makes a rule case-insensitive; a bare ``**`` matches everything;
- an include rule whose glob lies below a folder answers "scan" for that folder: the folder is
  backed up only if something inside it is;
- rules are tried in order, the first include or exclude wins, no match means include.

``tests/quota/test_selection_oracle.py`` checks this against duplicity itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

EXCLUDE, INCLUDE, SCAN = 0, 1, 2


class SelectionError(ValueError):
    """A rule duplicity would refuse (it cannot match anything under the source)."""


def glob_to_regex(pattern: str) -> str:
    """The regular expression duplicity builds for a glob (no anchors)."""
    i, n, out = 0, len(pattern), []
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*" and pattern[i : i + 1] == "*":
            out.append(".*")
            i += 1
        elif c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append("\\[")
            else:
                stuff = pattern[i:j].replace("\\", "\\\\")
                i = j + 1
                if stuff[0] in "!^":
                    stuff = "^" + stuff[1:]
                out.append(f"[{stuff}]")
        else:
            out.append(re.escape(c))
    return "".join(out)


def _prefix_regexes(glob: str) -> list[str]:
    parts = glob.split("/")
    if "" in parts[1:-1]:
        raise SelectionError(f"consecutive '/'s in the glob {glob!r}")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    if prefixes[0] == "":
        prefixes[0] = "/"
    return [glob_to_regex(p) for p in prefixes]


# A rule: (path, is_dir) -> EXCLUDE, INCLUDE, SCAN or None (no opinion)
Rule = Callable[[str, bool], "int | None"]


def glob_rule(glob: str, include: int) -> Rule:
    """The selection function of one ``--include``/``--exclude`` glob."""
    flags = re.S
    if glob.lower().startswith("ignorecase:"):
        glob = glob[len("ignorecase:") :].casefold()
        flags |= re.IGNORECASE
    if glob == "**":
        return lambda path, is_dir: include
    dirs_only = False
    if glob == "/":
        glob = "/**"
    elif glob.endswith("/"):
        dirs_only = True
        glob = glob[:-1]
    if not glob:
        raise SelectionError("an empty glob")
    body = glob_to_regex(glob)
    match = re.compile(f"^{body}($|/)", flags).match
    exact = re.compile(f"^{body}$", flags).match
    star = glob.find("**")
    scan_glob = glob[: star + 2] if star != -1 else glob
    scan = re.compile(f"^({'|'.join(_prefix_regexes(scan_glob))})$", flags).match

    def rule(path: str, is_dir: bool) -> int | None:
        if match(path):
            if dirs_only and exact(path) and not is_dir:
                return None
            return include
        if include == INCLUDE and scan(path):
            return SCAN
        return None

    return rule


class Selector:
    """The rules of one profile, in duplicity's order, applied like ``Select.Select``."""

    def __init__(self, root: str, rules: Sequence[tuple[str, int]]):
        self.root = root
        self.rules: list[Rule] = []
        for glob, include in rules:
            if glob_rule(glob, INCLUDE)(root, True) not in (INCLUDE, SCAN):
                raise SelectionError(
                    f"the rule {glob!r} cannot match anything under the source {root}: rules "
                    "must start with the source path or a pattern such as '**'"
                )
            self.rules.append(glob_rule(glob, include))
        if self.rules and rules[-1][1] == INCLUDE:
            raise SelectionError(
                f"the last rule {rules[-1][0]!r} only includes; duplicity refuses that"
            )

    @property
    def selects_everything(self) -> bool:
        return not self.rules

    def __call__(self, path: str, is_dir: bool) -> int:
        scan_pending = False
        result = None
        for rule in self.rules:
            result = rule(path, is_dir)
            if result == SCAN:
                scan_pending = True
            elif result is not None:
                break
        if scan_pending and result != INCLUDE:
            return SCAN
        return INCLUDE if result is None else result


def profile_rules(excludes: Sequence[str], includes: Sequence[str]) -> list[tuple[str, int]]:
    """The rules ``cfbackup.duplicity.commands.selection_flags`` gives duplicity, in order."""
    from cfbackup.duplicity.commands import STAGING_GLOB  # restore --force's staging folders

    rules = [(STAGING_GLOB, EXCLUDE)]
    rules += [(g, EXCLUDE) for g in excludes] + [(g, INCLUDE) for g in includes]
    if includes:
        rules.append(("**", EXCLUDE))
    return rules


def selector_for(profile) -> Selector:
    """The selector of a cfbackup profile (source, ``exclude`` then ``include``)."""
    root = str(profile.source)
    return Selector(root, profile_rules(profile["exclude"], profile["include"]))
