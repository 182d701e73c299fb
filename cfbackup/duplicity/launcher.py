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

A backup or a restore starts its duplicity early, "warm" (``ARGV_FROM``,
``run.WarmDuplicity``): the launcher applies the patches and imports duplicity, its backends
and swiftclient (0.3-0.4 s of CPU) while cfbackup's checks still run, then waits for its
arguments on a pipe. It does
nothing else before them: no lock, no file, no request. When the pipe closes without them (a
check failed, a guard refused), it exits 0 at once. Once it has them, its process title shows
them (setproctitle), so ``ps`` shows the duplicity command as it would for a cold start. A
backup's warm duplicity starts before the checks have authenticated: their storage URL and
token come on the pipe with the arguments (``patches/handed_token.py``, ``LATE``), never in its
environment.

A backup's is started even earlier, at cfbackup's first statement (``early.py``, ``ENV_FIRST``):
it imports requests, then takes the run's environment, one JSON line on the same pipe, as its
own before it applies the patches; the rest is the warm start's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import BinaryIO

from cfbackup.duplicity import patches

MODULE = "cfbackup.duplicity.launcher"
SCRIPT = "cfbackup-duplicity"  # pyproject.toml's console script for run()
ARGV_FROM = "--cfbackup-argv-from="  # warm start: duplicity's arguments come on this descriptor
ENV_FIRST = "--cfbackup-env-first"  # started early: its environment comes first (early.py)


def command() -> tuple[str, ...]:
    """argv prefix that runs the launcher with the Python cfbackup (and duplicity) live in."""
    script = os.path.join(os.path.dirname(sys.executable), SCRIPT)
    return (script,) if os.access(script, os.X_OK) else (sys.executable, "-m", MODULE)


def environment(
    env: Mapping[str, str], extra: Iterable[patches.Patch] = ()
) -> tuple[dict[str, str], tuple[patches.Patch, ...]]:
    """``env`` naming the patches (core's, then ``extra``) that apply to it, and those patches."""
    from cfbackup import redact
    from cfbackup.duplicity.patches import gpg_environment

    chosen = patches.chosen(env, extra)
    env = {**env, patches.ENV: ",".join(p.module for p in chosen)}
    named = redact.secret_variables()  # for the gpg_environment patch: gpg never gets them
    if named:
        env[gpg_environment.NAMED] = ",".join(sorted(named))
    return env, chosen


def _apply() -> None:
    listed = os.environ.get(patches.ENV)
    if listed is None:
        modules = [p.module for p in patches.chosen(os.environ)]
    else:
        modules = [name for name in listed.split(",") if name]
    patches.apply(modules, os.environ)


def _warm_up() -> None:
    """Import what every backup imports anyway, before its arguments are known."""
    import duplicity.__main__  # noqa: F401
    from duplicity import backend, dup_main  # noqa: F401

    if os.environ.get("SWIFT_AUTHURL"):
        import swiftclient.client  # noqa: F401 - after the patches: skip-keystoneclient first
    backend.import_backends()


def _preload() -> None:
    """Before the run's environment is known (``early.py``): what a backup's duplicity
    imports anyway and no patch needs applied first, nor any variable of the run read."""
    import requests  # noqa: F401 - urllib3, ssl, http.client, email, json: the most of it


def _environment_from(pipe: BinaryIO) -> bool:
    """The run's environment, the first line on the argument pipe, made this process's own
    (``early.fits`` made sure the interpreter's start did not depend on what differs); False
    when the pipe closed first."""
    line = pipe.readline()
    if not line.endswith(b"\n"):
        return False
    import setproctitle

    # setproctitle takes the memory of argv and of the environment the process started with
    # (early.py gives it room) at its first call: made after the environment is replaced,
    # ps would go on showing the launcher's own argv
    setproctitle.getproctitle()
    os.environ.clear()
    os.environ.update(json.loads(line))
    import time

    time.tzset()  # read when time was imported, without the run's TZ (early.py)
    return True


def _argv_from(pipe: int | BinaryIO) -> list[str] | None:
    """The arguments cfbackup writes on ``pipe`` (a descriptor, or the pipe its environment
    came on) once its checks passed (JSON: ``{"argv": [...], "handover": {...}}``), the checks'
    storage URL and token handed to the patch that waits for them; None when it closed the
    pipe without them."""
    with os.fdopen(pipe, "rb") if isinstance(pipe, int) else pipe as stream:
        data = stream.read()
    if not data:
        return None
    message = json.loads(data)
    handover = message.get("handover")
    if handover:
        from cfbackup.duplicity.patches import handed_token

        handed_token.hand(handover["url"], handover["token"])
    return message["argv"]


def _show(argv: list[str]) -> None:
    """ps and /proc show the command a warm duplicity runs, as for a cold start. Cosmetic: a
    name that is not UTF-8 (an old file name to restore) is shown with replacement marks."""
    import setproctitle

    title = os.fsencode(" ".join([sys.argv[0], *argv])).decode("utf-8", "replace")
    try:
        setproctitle.setproctitle(title)
    except Exception:  # noqa: BLE001 - never worth failing a backup for
        pass


@contextlib.contextmanager
def _quiet_interrupt() -> Iterator[None]:
    """Until duplicity's own main runs, SIGINT ends the process at once by the signal (exit
    -2, as an uncaught KeyboardInterrupt does) with no traceback: a stop that comes while it
    imports or waits for its arguments (``execute.ProcessGroup.stop_all``, ``terminate``)
    put one KeyboardInterrupt traceback, line by line, in the run log. It holds nothing yet
    (no lock, no file, no request). duplicity gets Python's handler back (its own clean-up)."""
    handler = signal.getsignal(signal.SIGINT)
    quiet = handler is signal.default_int_handler and threading.current_thread() is (
        threading.main_thread()
    )
    if quiet:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        yield
    finally:
        if quiet:
            signal.signal(signal.SIGINT, handler)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with _quiet_interrupt():
        pipe = None
        if argv and argv[0].startswith(ARGV_FROM) and argv[1:] in ([], [ENV_FIRST]):
            pipe = os.fdopen(int(argv[0][len(ARGV_FROM) :]), "rb")
            if argv[1:]:
                _preload()
                if not _environment_from(pipe):
                    return 0
        _apply()
        if pipe is not None:
            _warm_up()
            argv = _argv_from(pipe)
            if argv is None:
                return 0
            _show(argv)
        from duplicity.__main__ import dup_run

    # argv[0] stays what duplicity re-executes to restart a backup (see above)
    sys.argv = [sys.argv[0], *argv]
    return dup_run()


def run() -> None:
    from cfbackup import quick_exit

    quick_exit.exit_now(main())  # without the teardown: a backup's end waits for it


if __name__ == "__main__":
    run()
elif patches.in_pool_worker():
    _apply()
