"""Built-in plugin ``command_hooks``: run shell commands around backups and restores.

Like borgmatic's ``before_backup``: a database dump before the backup, a service restart after
a restore. A failing ``before_*`` command vetoes the run (nothing is uploaded); ``on_error``
commands run when a run fails. Commands are the user's own, so they run through ``/bin/sh -c``
with ``CFBACKUP_PROFILE``, ``CFBACKUP_ACTION`` (and ``CFBACKUP_ERROR``) in their environment.
"""

from __future__ import annotations

import logging

from cfbackup import execute, redact
from cfbackup.config.schema import Option
from cfbackup.hookspecs import hookimpl

SECTION = "command_hooks"
log = logging.getLogger("cfbackup.command_hooks")
TIMEOUT = 3600

OPTIONS = tuple(
    Option(name, "list", description, default=[], example=example)
    for name, description, example in (
        (
            "before_backup",
            "Commands run before a backup; one failing vetoes the backup.",
            ["pg_dumpall -f /var/backups/pg.sql"],
        ),
        ("after_backup", "Commands run after a successful backup.", None),
        (
            "before_restore",
            "Commands run before a restore; one failing vetoes it.",
            ["systemctl stop nginx"],
        ),
        ("after_restore", "Commands run after a successful restore.", ["systemctl start nginx"]),
        ("on_error", "Commands run when a run fails ($CFBACKUP_ERROR holds the message).", None),
    )
)


@hookimpl
def cfbackup_config_schema(register):
    register(SECTION, OPTIONS)


def _run_all(run, key: str, extra_env: dict | None = None) -> str | None:
    """Run the commands under ``key``; the first failure's description, or None."""
    for command in run.plugin_config(SECTION).get(key, []):
        env = {
            "CFBACKUP_PROFILE": run.profile.name,
            "CFBACKUP_ACTION": run.action,
            **(extra_env or {}),
        }
        log.info("%s: running %s", key, command)
        # own_group: what the command starts is stopped with it when cfbackup stops
        result = execute.capture(
            ["/bin/sh", "-c", command], env=env, timeout=TIMEOUT, own_group=True
        )
        if result.returncode != 0:
            tail = result.tail[-1] if result.tail else ""
            return f"{key} command {command!r} exited with code {result.returncode}" + (
                f" ({tail})" if tail else ""
            )
    return None


@hookimpl
def cfbackup_pre_backup(run):
    return _run_all(run, "before_backup")


@hookimpl
def cfbackup_post_backup(run, result):
    failure = _run_all(run, "after_backup")
    if failure:
        log.warning("%s", failure)


@hookimpl
def cfbackup_pre_restore(run):
    return _run_all(run, "before_restore")


@hookimpl
def cfbackup_post_restore(run, result):
    failure = _run_all(run, "after_restore")
    if failure:
        log.warning("%s", failure)


@hookimpl
def cfbackup_on_error(run, error):
    # the commands may log or mail it: masked like everything cfbackup writes (credential
    # shapes only in a library's text, never over cfbackup's own sentences)
    own = getattr(error, "message", None)
    message = redact.redact(own) if own else redact.redact_output(str(error))
    failure = _run_all(run, "on_error", {"CFBACKUP_ERROR": message})
    if failure:
        log.warning("%s", failure)
