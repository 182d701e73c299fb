"""Resolve a secret from the environment, a file or a command: never from argv, never logged.

Every resolved value is registered with :mod:`cfbackup.redact`, so it is masked wherever
cfbackup writes output, logs or error messages. When Swift credentials are missing,
:func:`inherited_credentials` names the environment variables the old scripts' duplicity took
them from (names only: cfbackup never reads them), for the run's errors and the legacy reader.
"""

from __future__ import annotations

import os
import shlex
import stat
import urllib.parse
from pathlib import Path
from typing import Any

from cfbackup import redact
from cfbackup.errors import CfbackupError, ConfigError


def resolve_secret(table: dict[str, Any], name: str, where: str) -> str | None:
    """The value of secret ``name`` in ``table`` (inline, ``_env``, ``_file`` or ``_command``)."""
    value: str | None = None
    if table.get(name):
        value = table[name]
    elif table.get(name + "_env"):
        var = table[name + "_env"]
        redact.register_variable(var)  # no child gets it (execute.child_environment)
        value = os.environ.get(var)
        if not value:
            raise ConfigError(
                f"{where}.{name}_env names the environment variable {var}, which is not set: "
                "export it or use another source for the secret."
            )
    elif table.get(name + "_file"):
        value = read_secret_file(table[name + "_file"], f"{where}.{name}_file", name)
    elif table.get(name + "_command"):
        value = _run_secret_command(table[name + "_command"], f"{where}.{name}_command")
    if value:
        redact.register(value)
        register_url_parts(value)
    return value or None


def secret_source(table: dict[str, Any], name: str, section: str) -> str | None:
    """Where secret ``name`` of ``table`` (the config's ``section``: ``swift``) is read from, for
    a message that it was refused: ``the password in $VAR``, ``the password read from FILE``,
    ``the password printed by swift.password_command``; never its value. None when it is
    given inline (the caller names the file), or not at all."""
    if table.get(name + "_env"):
        return f"the {name} in ${table[name + '_env']}"
    if table.get(name + "_file"):
        return f"the {name} read from {Path(table[name + '_file']).expanduser()}"
    if table.get(name + "_command"):
        return f"the {name} printed by {section}.{name}_command"
    return None


def url_secrets(url: str) -> list[str]:
    """The parts of ``url`` to mask (:mod:`cfbackup.redact`): the password of its userinfo, and
    its path with the query when they say more than a word (``/services/T0/B0/X``, not ``/``)."""
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return [url]
    found = [password] if password else []
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    if len(rest.strip("/")) >= 8:
        found.append(rest)
    return found


def register_url_parts(value: str) -> None:
    """Register the secret parts of a URL-valued secret (a notify URL) with redact, so that a
    URL built from it (``URL/fail``) or a library's line quoting its path is masked too."""
    if "://" in value:
        for part in url_secrets(value):
            redact.register(part)


def read_secret_file(
    path: str | os.PathLike, where: str, what: str, *, warn_loose: bool = False
) -> str:
    """The secret in file ``path`` (one line; final newline dropped), named ``what`` in the
    errors, which say which setting (``where``) pointed there and how to fix it. A config's
    ``*_file`` settings are mode-checked when it loads (each run warns, ``check`` fails);
    ``warn_loose``: a file named on the command line, checked here."""
    path = Path(path).expanduser()
    if warn_loose and (loose := loose_secret_file(path)):
        import logging

        logging.getLogger("cfbackup.secrets").warning("warning: %s", loose)
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        raise ConfigError(
            f"{where}: the secret file {path} does not exist on this machine: re-create it "
            f"holding the {what} (chmod 600 {path}), or point {where.rsplit('.', 1)[-1]} at "
            "the file that holds it."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "it is not UTF-8 text"
        raise ConfigError(
            f"{where}: cannot read the secret file {path} ({reason.lower()}): fix its owner or "
            "mode, or point the setting at a readable file."
        ) from None
    if not value:
        raise ConfigError(f"{where}: the secret file {path} is empty: write the {what} into it.")
    return value


def loose_secret_file(path: str | os.PathLike) -> str | None:
    """The warning for a secret file other users can read or change, or that belongs to
    someone else (ssh's rule for private keys: the user's or root's, mode 0600 or 0400); None
    when it is private, or cannot be stat'ed (reading it says why)."""
    path = Path(path).expanduser()
    try:
        info = path.stat()
    except OSError:
        return None
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid not in (os.getuid(), 0):
        me = _user_name(os.getuid())
        return (
            f"{path} holds a secret but belongs to {_user_name(info.st_uid)}, who can read and "
            f"change it: run chown {me} {path}; chmod 600 {path}"
        )
    if mode & 0o077:
        how = "readable" if mode & 0o044 else "writable"
        return (
            f"{path} holds a secret but is {how} by others (mode {mode:04o}): run chmod 600 {path}"
        )
    return None


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _command_argv(command: str, where: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as error:
        raise ConfigError(f"{where}: cannot split the command: {error}.") from None
    if not argv:
        raise ConfigError(f"{where}: the command is empty.")
    return argv


def check_secret_command(command: str, where: str) -> None:
    """Refuse, as running it would, a secret command that cannot be run (it cannot be split,
    or its program is not found), without running it: for ``status``, which needs no such
    secret and must not make a ``pass show`` or a vault read (or a prompt) on every call."""
    import shutil

    from cfbackup import execute

    shown = _command_argv(command, where)[0]
    if shutil.which(shown, path=execute.child_environment(None)["PATH"]) is None:
        raise ConfigError(f"{where}: {shown} was not found: install it or check PATH.")


def _run_secret_command(command: str, where: str) -> str:
    from cfbackup import execute

    argv = _command_argv(command, where)
    try:
        result = execute.capture(argv, timeout=60, own_group=True)
    except CfbackupError as error:
        raise ConfigError(f"{where}: {error.message}") from None
    if result.returncode != 0:
        raise ConfigError(
            f"{where}: the command exited with code {result.returncode}; run it by hand to see why."
        )
    value = result.stdout.rstrip("\r\n")
    if not value:
        raise ConfigError(f"{where}: the command printed nothing.")
    return value


# Swift credentials duplicity-backup.sh's duplicity read from the environment it inherited
# (exported in ~/.bash_profile, say), by the key they would fill.
INHERITED_CREDENTIALS = {
    "auth_url": ("SWIFT_AUTHURL", "CLOUDFILES_AUTHURL"),
    "username": ("SWIFT_USERNAME", "CLOUDFILES_USERNAME"),
    "password": ("SWIFT_PASSWORD", "CLOUDFILES_APIKEY"),
}


def inherited_credentials(missing: list[str], environ: dict[str, str] | None = None) -> str:
    """For an error about missing Swift credentials: the environment variables that hold them,
    which the old scripts' duplicity inherited and cfbackup does not read (a stray variable in
    cfbackup's own environment is no config); "" when there are none. Names, never values."""
    environ = os.environ if environ is None else environ
    names = [n for key in missing for n in INHERITED_CREDENTIALS.get(key, ()) if environ.get(n)]
    if not names:
        return ""
    return (
        f" ({', '.join(names)} {'is' if len(names) == 1 else 'are'} set in the environment, "
        "which duplicity-backup.sh's duplicity inherited but cfbackup does not read: put "
        "them in the legacy file, or in a native config as username, auth_url and "
        'password_env = "SWIFT_PASSWORD")'
    )
