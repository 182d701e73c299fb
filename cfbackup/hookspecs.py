"""The plugin contract: every hook cfbackup calls, grouped by when it fires.

Built-in plugins (``plugins/cfbackup_*.py``) and third-party ones implement these through the
``cfbackup`` entry-point group; ``docs/plugins.md`` documents each with an example and
``tests/unit/test_docs.py`` fails when the two drift apart.

``run`` is a :class:`cfbackup.runtypes.Run`: the profile (validated, defaults applied), the action
name, the command-line options, a ``plugin_config(name)`` accessor and a logger. Hooks are called
only for plugins enabled in that profile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse
    import contextlib

    from cfbackup.runtypes import Run, RunResult

hookspec = pluggy.HookspecMarker("cfbackup")
hookimpl = pluggy.HookimplMarker("cfbackup")


# --- registration: called once when plugins are loaded -------------------------------------


@hookspec
def cfbackup_config_schema(register: Any) -> None:
    """Contribute a config section for this plugin.

    Call ``register(section, options)`` where ``section`` is the table name used inside a profile
    (``[profiles.NAME.SECTION]``) and ``options`` a tuple of :class:`cfbackup.config.schema.Option`.
    The section is validated with the rest of the config and appears in the reference docs.
    """


@hookspec
def cfbackup_register_commands(subparsers: argparse._SubParsersAction, context: Any) -> None:
    """Add CLI subcommands (e.g. ``cfbackup quota``).

    Add a parser with ``subparsers.add_parser(...)`` and ``set_defaults(handler=fn)`` where
    ``fn(args, context) -> int`` returns an exit code. ``context`` gives ``load_config()`` and
    ``plugin_manager``. Raise :class:`cfbackup.errors.CfbackupError` for user errors.
    """


@hookspec
def cfbackup_add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Add options to a built-in command's parser (e.g. ``--ignore-quota`` on ``backup``).

    The parsed values reach hooks in ``run.options`` under their ``dest`` names.
    """


@hookspec
def cfbackup_duplicity_patches(register: Any) -> None:
    """Add code that runs inside duplicity's interpreter (``cfbackup/duplicity/patches/``).

    Call ``register(patch)`` with a :class:`cfbackup.duplicity.patches.Patch`: its ``module``,
    importable by duplicity's Python, defines ``applies(env) -> bool`` and ``apply(env)``; the
    patch names the duplicity version it was written against and the attributes it targets.
    Called for every duplicity command of a run, for the plugins the profile enables; the
    launcher applies core's patches first, then these, in order.
    """


# --- a run's lifecycle -------------------------------------------------------------------


@hookspec
def cfbackup_run_context(run: Run) -> contextlib.AbstractContextManager | None:
    """Return a context manager that wraps the whole action of ``run``, or None.

    Entered after the lock is taken and before the pre-hooks; its exit always runs, whether the
    action succeeded, failed or was interrupted (the firewall lock-down uses this).
    """


@hookspec
def cfbackup_backup_lookups(run: Run) -> None:
    """Start read-only look-ups a ``cfbackup_pre_backup`` hook will need, before the checks.

    Fires before a backup's passphrase check (gpg's key derivation, 0.3-0.5 s) so that
    requests started here overlap it: ``run.target_view.start(key, fn)`` runs ``fn(view)`` in
    a thread (``view.connection()``, ``view.objects()``: the run's Swift connection and
    listing), and the pre_backup hook takes it with ``run.target_view.take(key)``.
    ``run.target_view`` is None when the target is not Swift. Nothing here may change
    anything: a refused passphrase ends the run before any pre_backup hook.
    """


@hookspec
def cfbackup_pre_backup(run: Run) -> str | None:
    """Fires before duplicity backs up. Return a reason string to veto the run.

    Every implementation is called; if any returns a reason the backup does not start, nothing is
    uploaded and the run ends with exit code REFUSED (or raise QuotaExceeded for QUOTA).
    """


@hookspec
def cfbackup_post_backup(run: Run, result: RunResult) -> None:
    """Fires after a successful backup (and its retention), with duplicity's statistics."""


@hookspec
def cfbackup_pre_restore(run: Run) -> str | None:
    """Fires before a restore starts, after the target was checked. Return a reason to veto."""


@hookspec
def cfbackup_post_restore(run: Run, result: RunResult) -> None:
    """Fires after a successful restore."""


@hookspec
def cfbackup_on_error(run: Run, error: BaseException) -> None:
    """Fires when an action fails (any error, including an interruption; not a stop while
    waiting for the profile lock, when nothing ran). Must not raise."""


@hookspec
def cfbackup_run_finished(run: Run, result: RunResult) -> None:
    """Fires once at the end of every run, success or failure (history, notifications); not
    for a run stopped while waiting for the profile lock (nothing ran)."""


@hookspec
def cfbackup_check(run: Run) -> list[tuple[str, bool, str]] | None:
    """Contribute rows to ``cfbackup check``: ``(what, ok, detail)`` for this profile; ``ok``
    is True, False (a failure: check exits 5) or None (a note worth reading, not a failure).
    ``run.options["for_restore"]`` is set by ``check --for-restore``."""


@hookspec
def cfbackup_status(run: Run) -> list[str] | None:
    """Warnings for ``cfbackup status`` of this profile: one sentence each, naming the cause and
    the command that fixes it (shown as ``WARNING:`` lines, and under ``plugin_warnings`` with
    ``--json``); None or an empty list when all is well. Must not raise."""


# --- incident recovery -------------------------------------------------------------------


@hookspec
def cfbackup_server_ip_changed(
    server: str, old: list[str], new: list[str], config: Any
) -> list[str] | None:
    """Fires when a re-created server has new addresses (``server unpark``, ``ip-fixup``).

    ``old`` and ``new`` are lists of IP address strings (v4 and v6). ``config`` is the loaded
    :class:`cfbackup.config.Config`. Implementations update DNS, hosts files and the like, and
    may return a list of one-line outcomes that ``unpark`` and ``ip-fixup`` print.
    """


@hookspec
def cfbackup_ip_fixup_done(
    server: str, old: list[str], new: list[str], config: Any
) -> list[str] | None:
    """Fires after ``cfbackup ip-fixup`` moved ``server`` from ``old`` to ``new`` without error
    in every profile that follows it (not after a failed run, nor after one that ``--profile``
    limited to some of them). ``config`` is the whole loaded config. Return warnings, one line
    each, that ``ip-fixup`` prints, or None. server_image drops ``old`` from the addresses a
    failed unpark fix-up left pending in the park record here.
    """
