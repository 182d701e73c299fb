"""``cfbackup check``: is this profile ready to run? Config, tools, keys, Swift, plugins."""

from __future__ import annotations

import shutil
import time

from cfbackup import (
    chains,
    execute,
    future_sets,
    gpgkeys,
    history,
    keystone,
    passcheck,
    stores,
    suggest,
    swift,
    swift_usage,
)
from cfbackup.actions.recovery_kit import KIT_ACTION, export_command
from cfbackup.duplicity.environment import duplicity_environment
from cfbackup.duplicity.run import duplicity_executable
from cfbackup.duplicity.target import swift_target
from cfbackup.errors import CfbackupError, ExitCode
from cfbackup.runtypes import Run, RunResult

NOTE = None  # a row's "ok" for a note: worth reading, not a failure


def run_check(run: Run) -> RunResult:
    """Rows ``(what, ok, detail)``; ``ok`` is True, False (a failure: exit 5) or None (a note).
    ``--for-restore`` checks what a restore needs: the secret key, and a missing source is
    expected (a note), where a backup needs the source and only the public key."""
    profile = run.profile
    for_restore = bool(run.options.get("for_restore"))
    rows: list[tuple[str, bool | None, str]] = [("config", True, f"{run.config.path} is valid")]
    if run.config.permission_warning:
        rows.append(("config mode", False, run.config.permission_warning))
    rows.extend(("secret file mode", False, w) for w in profile.secret_file_warnings)
    for tool in ("duplicity", "gpg"):
        path = duplicity_executable() if tool == "duplicity" else shutil.which(tool)
        path = path if path and shutil.which(path) else None
        if path is None:
            rows.append((tool, False, f"{tool} not found on PATH: install it"))
            continue
        version = execute.capture([path, "--version"], timeout=30).stdout.splitlines()
        rows.append((tool, True, (version[0] if version else path).strip()))
    rows.append(_source_row(profile, for_restore))
    env: dict[str, str] = {}

    def secrets() -> str:
        env.update(duplicity_environment(profile))
        return "resolved"

    notes: list[str] = []  # shown under the row of the step that found them

    def keys() -> str:
        notes.extend(gpgkeys.check_keys(profile, need_secret=for_restore))
        return "usable"

    def split_chains() -> str:
        chains.of(profile)
        return f"one per include root ({len(profile['include'])})"

    steps = [("secrets", secrets), ("gpg keys", keys)]
    if profile["encryption"]["mode"] != "none":
        steps.append(("passphrase test", lambda: passcheck.verify_passphrase(profile, env)))
    if chains.is_split(profile):
        steps.append(("chains", split_chains))
    broken: set[str] = set()
    for what, step in steps:
        if what == "passphrase test" and broken:
            continue  # nothing to test it with (no passphrase or no keyring): rows above say why
        try:
            rows.append((what, True, step()))
            rows.extend((what, NOTE, note) for note in notes)
            notes.clear()
        except CfbackupError as error:
            broken.add(what)
            rows.append((what, False, error.message))
    if swift_target(profile.target) is not None:
        try:
            conn = None
            if keystone.uses_keystone(profile):
                try:
                    conn = _keystone_rows(profile, rows)
                except CfbackupError as error:
                    rows.append(("keystone", False, error.message))
                    raise
            account = swift_usage.account_stats(profile, conn)
            container = swift_usage.container_stats(profile, conn)
            rows.append(("swift", True, f"authenticated, storage URL {account['storage_url']}"))
            rows.append(
                (
                    "container",
                    True,
                    f"{container['container']}: "
                    + (
                        f"{container['bytes_used']} bytes in {container['object_count']} objects"
                        if container["exists"]
                        else "does not exist yet (created by the first backup)"
                    ),
                )
            )
        except CfbackupError as error:
            if rows[-1][0] != "keystone" or rows[-1][1]:
                rows.append(("swift", False, error.message))
    if stores.readable(profile.target) and not any(
        what in ("swift", "keystone") and ok is False for what, ok, _ in rows
    ):
        try:  # a clock that was ahead dated them: backups and retention refuse (future_sets.py)
            if futures := future_sets.found(profile):
                rows.append(("backup dates", False, future_sets.refusal(profile, futures) + "."))
        except CfbackupError as error:
            rows.append(("backup dates", False, error.message))
    for plugin_rows in run.hooks.cfbackup_check(run=run):
        rows.extend(plugin_rows or [])
    if not for_restore:
        rows.append(_kit_row(run))
    failed = [r for r in rows if r[1] is False]
    return RunResult(
        profile=profile.name,
        action="check",
        data=rows,
        exit_code=ExitCode.REFUSED if failed else ExitCode.OK,
        message=(
            f"{len(failed)} check(s) failed for {profile.name}"
            if failed
            else f"{profile.name} is ready" + (" to restore" if for_restore else "")
        ),
    )


def _source_row(profile, for_restore: bool) -> tuple[str, bool | None, str]:
    source = profile.source
    if source.is_dir():
        return ("source", True, str(source))
    if for_restore:
        return (
            "source",
            NOTE,
            f"{source} does not exist yet, as expected before a restore (restore into an empty "
            "directory first, then move the files into place)",
        )
    return (
        "source",
        False,
        f"{source} is not a directory: fix source (before a restore on a new machine, "
        f"{suggest.command('check', profile.name, '--for-restore')} checks what a restore "
        "needs)",
    )


def _kit_row(run: Run) -> tuple[str, bool | None, str]:
    """Whether a recovery kit was made here: the one thing a from-nothing restore needs that
    only this machine can make, and nobody thinks of before the disaster."""
    made = history.last(run.config.state_dir, run.profile.name, KIT_ACTION, "success")
    advice = (
        f"keep it, and a copy of the passphrase of profile {run.profile.name} that encrypts it, "
        "away from this server"
    )
    if made:
        when = time.strftime("%Y-%m-%d", time.localtime(made["started"]))
        return (
            "recovery kit",
            True,
            f"made on {when} ({made['message']}): {advice}; make a new one after changing the "
            "config or the keys, and prove it with "
            f"{suggest.command('drill', run.profile.name, '--from-nothing')}",
        )
    export = export_command(run.config, run.profile.name)
    return (
        "recovery kit",
        NOTE,
        "none made from this machine yet, and a restore on a new machine starts from it: run "
        f"{export}, then {advice}",
    )


def _keystone_rows(profile, rows: list[tuple[str, bool, str]]):
    """A "keystone" row (who, which project, the token's expiry, the endpoint chosen) and the
    connection to reuse for the Swift rows; raises the CfbackupError explaining a failure."""
    creds = keystone.credentials(profile)
    session = keystone.session(creds)
    who = keystone.identity(creds, session)
    if who["application_credential"]:
        name = who["application_credential_name"]
        method = (
            f"application credential {name + ' ' if name else ''}({who['application_credential']})"
        )
    else:
        method = "password"
    rows.append(
        (
            "keystone",
            True,
            f"authenticated as user {who['user']} (domain {who['user_domain']}) with {method}, "
            f"project {who['project']} (id {who['project_id']}, domain {who['project_domain']}), "
            f"roles {', '.join(who['roles']) or 'none'}; token expires {who['expires_at']} "
            f"(in {who['expires_in']} s); object-store endpoint {who['storage_url']} "
            f"(region {who['region'] or 'any'}, interface {who['interface']})",
        )
    )
    return swift.keystone_connection(creds, keystone_session=session)
