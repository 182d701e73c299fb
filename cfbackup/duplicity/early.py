"""A backup's duplicity interpreter, started at cfbackup's first statement.

The warm duplicity (``run.WarmDuplicity``) can only start once the run's environment is known:
after the plugins, the config, the run log, the history row and the key checks, about 0.12 s
into a backup. Its start-up then raced cfbackup's checks for the two cores (it was the last
to the hand-over of the arguments on a nearly idle machine, the checks were under load): the
interpreter and the launcher (35 ms), requests and urllib3 (35 ms, inside the swift-timeout
patch), the other patches and duplicity's imports (60 ms).
Started here, the interpreter and the imports that depend on nothing of the run's (the
standard library's, requests') run beside cfbackup's own start-up, on a core that idles
meanwhile (docs/performance.md, thirteenth stop).

It starts with only the locale of the environment every child of cfbackup gets
(``execute.child_environment``), the one thing its start reads and keeps: not the rest of it,
which before the config is read may still hold a variable a ``*_env`` setting names (TZ, HOME:
a secret, which no child gets and ``/proc/PID/environ`` would show for the process's life).
It only imports until the run's environment comes on its argument pipe
(``launcher.ENV_FIRST``); it takes that environment as its own (the time zone re-read), then
applies the patches and waits for its arguments as a warm duplicity does. It is used only when
that environment keeps the locale it started with and adds nothing else an interpreter reads
when it starts (:func:`fits`: ``PYTHON*``, a HOME other than the user's own); otherwise, and
for another command, a split profile or a run that ends before its duplicity, it is stopped:
it holds nothing (no file, no lock, no request).
``CFBACKUP_NO_WARM=1`` switches it off with the warm start.
"""

from __future__ import annotations

import atexit
import json
import os
from collections.abc import Mapping, Sequence

from cfbackup import execute
from cfbackup.duplicity import launcher

OFF = "CFBACKUP_NO_WARM"  # run.WarmDuplicity.OFF
# what an interpreter reads from its environment when it starts, and keeps: the locale (file
# names' encoding), and the module path (PYTHON*); the time zone the launcher re-reads
STARTUP = ("LANG", "LC_ALL", "LC_CTYPE")
# global options of cfbackup that take a value (cli/parser.py): their value is not the command
_VALUED = ("-c", "--config")
# room for the process title (``launcher._show``: ps shows the duplicity command it runs, in the
# memory of the argv and environment it started with), which a warm duplicity's environment
# (the run's, a few KB) gave it; the run's environment leaves it out
ROOM = "CFBACKUP_TITLE_ROOM"


class Early:
    """One duplicity interpreter started early, waiting for the run's environment."""

    def __init__(self, env: Mapping[str, str]):
        self.env = dict(env)  # what fits() compares: the room for the title aside
        self.log_read, self.log_write = os.pipe()
        argv_read, self.argv_write = os.pipe()
        try:
            self.process = execute.spawn(
                (*launcher.command(), f"{launcher.ARGV_FROM}{argv_read}", launcher.ENV_FIRST),
                env={**self.env, ROOM: " " * 4096},
                pass_fds=(self.log_write, argv_read),
                exact_env=True,
            )
        except BaseException:
            for fd in (self.log_read, self.log_write, self.argv_write):
                os.close(fd)
            raise
        finally:
            os.close(argv_read)

    def send(self, env: Mapping[str, str]) -> None:
        """Give it the run's environment (one line of JSON): it takes it as its own."""
        data = (json.dumps(dict(env)) + "\n").encode()
        try:
            while data:
                data = data[os.write(self.argv_write, data) :]
        except BrokenPipeError:  # it died meanwhile: follow() reads why
            pass

    def stop(self) -> None:
        """Stop it unused (it holds nothing: SIGTERM at once) and close its pipes."""
        os.close(self.argv_write)
        execute.end_waiting(self.process)
        os.close(self.log_read)
        os.close(self.log_write)


_waiting: Early | None = None


def start(argv: Sequence[str]) -> None:
    """Start one when ``argv`` (cfbackup's arguments) runs a backup; a failure to start is
    left to the warm start, which reports it."""
    global _waiting
    if _waiting is not None or os.environ.get(OFF) or not is_backup(argv):
        return
    try:
        _waiting = Early(start_environment(execute.child_environment()))
    except Exception:  # noqa: BLE001 - the ordinary start says what is wrong
        return
    atexit.register(discard)


def is_backup(argv: Sequence[str]) -> bool:
    """Whether cfbackup's command line (without the program) names the backup command: its
    first word that is neither an option nor an option's value."""
    words = iter(argv)
    for word in words:
        if word in _VALUED:
            next(words, None)
        elif not word.startswith("-"):
            return word == "backup"
    return False


def fits(early: Mapping[str, str], env: Mapping[str, str]) -> bool:
    """Whether an interpreter started with ``early`` and then given ``env`` runs as one started
    with ``env``: every variable of ``early`` kept with its value, and none that an interpreter
    reads only when it starts added or changed (a HOME only where it finds the user's
    site-packages, :func:`_own`)."""
    if any(env.get(name) != value for name, value in early.items()):
        return False
    return not any(
        name in STARTUP or name.startswith(("LC_", "PYTHON")) or name == "HOME" and not _own(value)
        for name, value in env.items()
        if name not in early
    )


def _own(home: str) -> bool:
    """Whether an interpreter started without HOME finds the same user site-packages as with
    ``home``: none looked for (a venv), or ``home`` is the user's home in the password
    database, where ``site`` looks without HOME."""
    import pwd
    import site

    if not site.ENABLE_USER_SITE:
        return True
    try:
        return os.path.realpath(home) == os.path.realpath(pwd.getpwuid(os.getuid()).pw_dir)
    except (KeyError, OSError):
        return False


def start_environment(env: Mapping[str, str]) -> dict[str, str]:
    """Of a child's environment, what the early interpreter starts with: its locale."""
    return {name: value for name, value in env.items() if name in STARTUP}


def take(env: Mapping[str, str]) -> Early | None:
    """The waiting interpreter, given ``env`` (a duplicity's whole environment), when it fits
    and still waits; else None (and it is stopped)."""
    global _waiting
    early, _waiting = _waiting, None
    if early is None:
        return None
    if early.process.poll() is not None or not fits(early.env, env):
        early.stop()
        return None
    early.send(env)
    return early


def discard() -> None:
    """Stop the waiting interpreter, if any (at exit, or when no backup will use it)."""
    global _waiting
    early, _waiting = _waiting, None
    if early is not None:
        early.stop()
