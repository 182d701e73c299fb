"""Built-in plugin ``quota_guard``: never start a backup that a Swift quota will cut off.

Before a backup it compares the container's and the account's quotas (bytes and objects)
with their current usage plus an upper bound of the upload (``estimate.py``, from file
metadata only), refuses the run with the numbers and the fix when it would not fit (exit code
QUOTA), and warns above ``warn_percent``; ``backup --ignore-quota`` overrides. During the
backup Swift itself enforces the quotas, because core makes duplicity send a Content-Length with
every upload (``cfbackup/duplicity/patches/sized_uploads.py``, on whether or not this plugin
is); a 413 ends the run at once with the numbers, and the plugin says how to go on (the chain
resumes after the quota is raised). ``cfbackup quota show|set`` reads and sets quotas.
See docs/plugins/quota_guard.md.
"""

from __future__ import annotations

import logging

from cfbackup.config.schema import Option
from cfbackup.hookspecs import hookimpl

SECTION = "quota_guard"
log = logging.getLogger("cfbackup.quota_guard")

OPTIONS = (
    Option(
        "enabled",
        "boolean",
        "Check the quotas before every backup to a swift:// target.",
        default=True,
    ),
    Option(
        "warn_percent",
        "integer",
        "Warn when the backup would bring a quota's usage to this percentage or more.",
        default=80,
        minimum=1,
    ),
    Option(
        "check_account",
        "boolean",
        "Also check the account's quotas (and add up its containers' current usage).",
        default=True,
    ),
    Option(
        "max_container_heads",
        "integer",
        "The account's current usage is the sum of its containers' HEADs (its own figure lags "
        "behind by up to the container-updater's interval); above this many containers the "
        "rest count with their listed figures.",
        default=100,
        minimum=0,
    ),
    Option(
        "sized_uploads",
        "boolean",
        "No effect any more, kept so that configs setting it stay valid: cfbackup always makes "
        "duplicity send a Content-Length with every upload (duplicity 3.2 uploads chunked, "
        "which Swift's quota middlewares do not check) and stop at the first 413; "
        "CFBACKUP_NO_SIZED_UPLOADS=1 switches that off for one run.",
        default=True,
    ),
)


def _settings(run) -> dict:
    settings = {option.name: option.default for option in OPTIONS}
    settings.update(run.plugin_config(SECTION) or {})
    return settings


def _swift_target(profile) -> bool:
    from cfbackup.duplicity.target import swift_target

    return swift_target(profile.target) is not None


@hookimpl
def cfbackup_config_schema(register):
    register(SECTION, OPTIONS)


@hookimpl
def cfbackup_add_arguments(command, parser):
    if command == "backup":
        parser.add_argument(
            "--ignore-quota",
            action="store_true",
            help="run even when the quota guard says the backup will not fit",
        )


@hookimpl
def cfbackup_register_commands(subparsers, context):
    from cfbackup_quota_guard import commands

    commands.register(subparsers)


@hookimpl
def cfbackup_backup_lookups(run):
    """Swift's side of the guard (listing, usage, quotas, /info) does not depend on what the
    pre_backup hooks before it do: it starts now, beside the passphrase check."""
    settings = _settings(run)
    if run.target_view is None or not settings["enabled"]:
        return
    from cfbackup_quota_guard import guard

    run.target_view.start(SECTION, lambda view: guard.ask_swift(run.profile, settings, view))


@hookimpl(trylast=True)  # after the others: a before_backup dump lands in the source first
def cfbackup_pre_backup(run):
    from cfbackup.errors import CfbackupError, QuotaExceeded
    from cfbackup_quota_guard import guard

    settings = _settings(run)
    if settings["sized_uploads"] is False:
        run.log.warning(
            "quota_guard.sized_uploads = false has no effect any more: every upload carries a "
            "Content-Length, so that Swift enforces quotas; remove the key (or set "
            "CFBACKUP_NO_SIZED_UPLOADS=1 for one run)"
        )
    if not settings["enabled"] or not _swift_target(run.profile):
        return None
    ignore = bool(run.options.get("ignore_quota"))
    try:
        found = guard.assess(
            run.profile,
            settings,
            force_full=bool(run.options.get("full")),
            state_dir=run.config.state_dir,
            view=run.target_view,
            asked=run.target_view.take(SECTION) if run.target_view is not None else None,
        )
    except CfbackupError as error:
        if ignore:
            run.log.warning("quota guard: could not check (%s); --ignore-quota: going on", error)
            return None
        raise
    run.log.info("quota guard: %s", found.summary())
    if found.estimate.errors:
        run.log.warning(
            "quota guard: %d folder(s) or file(s) could not be read; duplicity will not read "
            "them either, but the estimate may be low if that changes (see the run log)",
            found.estimate.errors,
        )
    for check in found.checks:
        run.log.info("quota guard: %s", check.describe())
    for check in found.unenforced:
        run.log.warning(
            "quota guard: %s, but Swift does not enforce it (its %s middleware is off)",
            check.describe(),
            "container_quotas" if check.scope == "container" else "account_quotas",
        )
    for check in found.warnings:
        run.log.warning(
            "quota guard: after this backup %s (warn_percent %d)",
            check.describe(),
            found.warn_percent,
        )
    if found.refused:
        message = found.refusal()
        if ignore:
            run.log.warning("%s -- going on because of --ignore-quota", message)
        elif run.dry_run:
            run.log.warning("dry run; a real backup would be refused: %s", message)
        else:
            raise QuotaExceeded(message)
    return None


@hookimpl
def cfbackup_on_error(run, error):
    from cfbackup.errors import QuotaExceeded

    if run.action == "backup" and isinstance(error, QuotaExceeded) and error.detail:
        from cfbackup import suggest

        name = run.profile.name
        run.log.warning(
            "Swift refused an upload of %s with 413 while the backup ran (another writer may "
            "have filled the quota): see `%s`, raise the quota with `%s` (N: the new limit), "
            "then run `%s` again: it resumes.",
            name,
            suggest.command("quota", "show", name),
            suggest.command("quota", "set", name, "--bytes", "N"),
            suggest.command("backup", name),
        )


@hookimpl
def cfbackup_check(run):
    from cfbackup import swift_usage
    from cfbackup.errors import CfbackupError
    from cfbackup_quota_guard import guard

    settings = _settings(run)
    if not settings["enabled"] or not _swift_target(run.profile):
        return None
    try:
        container = swift_usage.container_stats(run.profile)
        account = swift_usage.account_stats(run.profile) if settings["check_account"] else None
    except CfbackupError as error:
        return [("quota", False, error.message)]
    checks = guard.evaluate(container, account, None, 0, 0)
    if not checks:
        return [("quota", True, "no container or account quota set")]
    over = [c for c in checks if c.exceeded]
    high = [c for c in checks if c.percent >= settings["warn_percent"]]
    detail = "; ".join(c.describe() for c in checks)
    if high and not over:
        detail += f" (at or above warn_percent {settings['warn_percent']}%)"
    return [("quota", not over, detail)]
