"""Commands that messages suggest, spelled so that they run as printed.

A fix command that drops the user's ``-c FILE`` fails with "no config file found" (or, worse,
acts on another config), so every message that suggests a cfbackup command builds it here.
The CLI records the config it was given once per invocation (:func:`use_config`).
"""

from __future__ import annotations

import os
import shlex

_config: str | None = None


def use_config(path: str | os.PathLike | None) -> None:
    """The ``-c FILE`` of this invocation (None: the config was found at its default place)."""
    global _config
    _config = os.path.abspath(os.path.expanduser(os.fspath(path))) if path else None


def command(*words: object) -> str:
    """``cfbackup [-c FILE] WORDS...``, each word quoted for a shell when it needs it."""
    config = ("-c", _config) if _config else ()
    return shlex.join(["cfbackup", *config, *(str(w) for w in words)])
