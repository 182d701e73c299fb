"""Built-in plugin ``firewall_lockdown``: keep a server unreachable while it is being restored.

Around ``cfbackup restore`` (when ``[profiles.NAME.firewall_lockdown] enabled = true``) it saves
the ruleset, drops new inbound connections except loopback, established traffic, SSH from the
management networks and an allow list, and restores the ruleset afterwards, whatever the end of
the restore (success, failure, SIGINT/SIGTERM); a detached dead-man restores it if cfbackup
itself dies. ``cfbackup firewall`` does the same by hand and manages the "seed" firewall of the
old fw-control.py, locally or on many servers over SSH. nftables first, iptables where nft is
absent. Manual: docs/plugins/firewall_lockdown.md.

Modules: ``settings`` (schema, rule grammar), ``render`` (rulesets as text), ``backends``
(nft, iptables), ``lockdown`` (lock/unlock/status), ``deadman``, ``seed``; for ``-s``:
``selection`` (which servers), ``inventory`` and ``compute`` (where they come from), ``remote``
(SSH); ``cli``.
"""

from __future__ import annotations

from cfbackup import suggest
from cfbackup.hookspecs import hookimpl
from cfbackup_firewall_lockdown.settings import OPTIONS, SECTION, settings_from_section

__all__ = ["OPTIONS", "SECTION"]


@hookimpl
def cfbackup_config_schema(register):
    register(SECTION, OPTIONS)


@hookimpl
def cfbackup_register_commands(subparsers, context):
    from cfbackup_firewall_lockdown import cli

    cli.add_parser(subparsers)


@hookimpl
def cfbackup_run_context(run):
    if run.action != "restore":
        return None
    section = run.plugin_config(SECTION)
    if not section.get("enabled"):
        return None
    from cfbackup_firewall_lockdown import lockdown

    where = f"profiles.{run.profile.name}.{SECTION}"
    settings = settings_from_section(section, where)
    return lockdown.hold(settings, run.config.state_dir,
                         reason=f"cfbackup restore of profile {run.profile.name}",
                         logger=run.log)


@hookimpl
def cfbackup_check(run):
    section = run.plugin_config(SECTION)
    if not section.get("enabled"):
        return None
    from cfbackup.errors import CfbackupError
    from cfbackup_firewall_lockdown import backends, lockdown

    rows = []
    try:
        settings = settings_from_section(section, f"profiles.{run.profile.name}.{SECTION}")
    except CfbackupError as error:
        return [("firewall lock-down settings", False, error.message)]
    ssh_from = ", ".join(str(n) for n in settings.management_networks) or \
        "anywhere (set management_networks to narrow it)"
    rows.append(("firewall lock-down settings", True,
                 f"SSH {settings.ssh_port}/tcp from {ssh_from}; "
                 f"{len(settings.allow)} more allow rule(s); dead-man after "
                 f"{settings.deadman_timeout or 'no'} s"))
    backend = None
    try:
        backend = backends.detect(settings.backend)
        gap = backend.ipv6_warning()
        rows.append(("firewall tool", gap is None, gap or f"{backend.name}: {backend.version()}"))
    except CfbackupError as error:
        rows.append(("firewall tool", False, error.message))
    admin = lockdown.can_change_firewall()
    rows.append(("firewall privileges", admin, "root (CAP_NET_ADMIN)" if admin else
                 "not root: restores of this profile will be refused; run them as root"))
    if admin:
        rows += _lockdown_row(settings, run.config.state_dir, backend)
    return rows


def _lockdown_row(settings, state_dir, backend=None):
    """The lock-down in force, if any: orphaned (nobody lifts it) or foreign fails the check.
    ``backend``: the one the caller detected already (each detection starts the tools)."""
    from cfbackup.errors import CfbackupError
    from cfbackup_firewall_lockdown import backends, lockdown

    try:
        return [lockdown.check_row(backend or backends.detect(settings.backend), state_dir)]
    except CfbackupError:
        return []  # no firewall tool: the "firewall tool" row says so


@hookimpl
def cfbackup_status(run):
    """A lock-down in force that nobody will lift (orphaned), or a foreign table of its name."""
    section = run.plugin_config(SECTION)
    if not section.get("enabled"):
        return None
    from cfbackup.errors import CfbackupError
    from cfbackup_firewall_lockdown import lockdown

    if not lockdown.can_change_firewall():
        return None  # reading the ruleset needs root; cfbackup status does not
    try:
        settings = settings_from_section(section, f"profiles.{run.profile.name}.{SECTION}")
        row = _lockdown_row(settings, run.config.state_dir)
    except (CfbackupError, OSError) as error:  # status must not fail for the firewall's sake
        return [f"the firewall lock-down could not be read ({error}): run "
                f"{suggest.command('check', run.profile.name)} for details."]
    return [detail for _, ok, detail in row if ok is False]
