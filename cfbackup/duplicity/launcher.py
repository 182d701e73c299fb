"""The one way cfbackup starts duplicity: ``cfbackup-duplicity ARGS``, the console script beside
cfbackup's Python (``python -m cfbackup.duplicity.launcher ARGS`` where it is missing).

Arguments are duplicity's, unchanged. The launcher applies the patches chosen for the run
(``patches/``: core's, then the profile's plugins'), in order, then runs duplicity's own
``main`` in this process: no PYTHONPATH or sitecustomize of cfbackup's is involved, and the
system's own sitecustomize runs as usual. cfbackup names the chosen patch modules in
``CFBACKUP_DUPLICITY_PATCHES`` (:func:`environment`, logged in the run log); without that
variable (the launcher run by hand) core's patches that apply to the environment are used.

duplicity's upload pool (``--concurrency``) starts its workers with multiprocessing's "spawn":
fresh interpreters (``python -c ... --multiprocessing-fork``) that first run the main module
(the console script, or this module) again as ``__mp_main__``. Importing this module in such a
worker applies the same patches, before the worker loads the swift backend.

When the first volume of a backup failed to upload, duplicity restarts itself from scratch by
executing ``sys.argv[0]`` again: that is the console script, so the restarted duplicity is
patched too (the ``-m`` form cannot be re-executed).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping

from cfbackup.duplicity import patches

MODULE = "cfbackup.duplicity.launcher"
SCRIPT = "cfbackup-duplicity"  # pyproject.toml's console script for run()


def command() -> tuple[str, ...]:
    """argv prefix that runs the launcher with the Python cfbackup (and duplicity) live in."""
    script = os.path.join(os.path.dirname(sys.executable), SCRIPT)
    return (script,) if os.access(script, os.X_OK) else (sys.executable, "-m", MODULE)


def environment(
    env: Mapping[str, str], extra: Iterable[patches.Patch] = ()
) -> tuple[dict[str, str], tuple[patches.Patch, ...]]:
    """``env`` naming the patches (core's, then ``extra``) that apply to it, and those patches."""
    chosen = patches.chosen(env, extra)
    return {**env, patches.ENV: ",".join(p.module for p in chosen)}, chosen


def _apply() -> None:
    listed = os.environ.get(patches.ENV)
    if listed is None:
        modules = [p.module for p in patches.chosen(os.environ)]
    else:
        modules = [name for name in listed.split(",") if name]
    patches.apply(modules, os.environ)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _apply()
    from duplicity.__main__ import dup_run

    # argv[0] stays what duplicity re-executes to restart a backup (see above)
    sys.argv = [sys.argv[0], *argv]
    return dup_run()


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
elif patches.in_pool_worker():
    _apply()
