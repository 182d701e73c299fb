"""Commands that messages suggest, spelled so that they run as printed.

A fix command that drops the user's ``-c FILE`` fails with "no config file found" (or, worse,
acts on another config), so every message that suggests a cfbackup command builds it here.
The CLI records the config it was given once per invocation (:func:`use_config`).
"""

from __future__ import annotations

import os
import shlex

from cfbackup.units import pasteable

_config: str | None = None


def use_config(path: str | os.PathLike | None) -> None:
    """The ``-c FILE`` of this invocation (None: the config was found at its default place)."""
    global _config
    _config = os.path.abspath(os.path.expanduser(os.fspath(path))) if path else None


def command(*words: object) -> str:
    """``cfbackup [-c FILE] WORDS...``, each word quoted for a shell when it needs it
    (``word``)."""
    config = ("-c", _config) if _config else ()
    return " ".join(word(str(w)) for w in ("cfbackup", *config, *words))


def option(name: str, value: str) -> tuple[str, ...]:
    """``name value`` as the words of a command, joined (``--path=-notes.txt``) when the value
    starts with ``-``: argparse would read it as an option, and the command would not run."""
    return (f"{name}={value}",) if value.startswith("-") else (name, value)


def word(text: str) -> str:
    """``text`` as one shell word that pastes as printed: in bash's ``$'...'`` when it holds a
    control character or bytes that are not UTF-8 (``units.pasteable``: messages spell those
    out, so plain quoting would print a word that no longer runs), else ``shlex.quote``."""
    shown = pasteable(text)
    return shown if shown != text else shlex.quote(text)
