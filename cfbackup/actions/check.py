"""``cfbackup check``: is this profile ready to run? Config, tools, keys, Swift, plugins."""

from __future__ import annotations

import shutil

from cfbackup import chains, execute, gpgkeys, keystone, swift
from cfbackup.duplicity.environment import duplicity_environment
from cfbackup.duplicity.run import duplicity_executable
from cfbackup.duplicity.target import swift_target
from cfbackup.errors import CfbackupError, ExitCode
from cfbackup.runner import Run, RunResult


def run_check(run: Run) -> RunResult:
    profile = run.profile
    rows: list[tuple[str, bool, str]] = [("config", True, f"{run.config.path} is valid")]
    if run.config.permission_warning:
        rows.append(("config mode", False, run.config.permission_warning))
    for tool in ("duplicity", "gpg"):
        path = duplicity_executable() if tool == "duplicity" else shutil.which(tool)
        path = path if path and shutil.which(path) else None
        if path is None:
            rows.append((tool, False, f"{tool} not found on PATH: install it"))
            continue
        version = execute.capture([path, "--version"], timeout=30).stdout.splitlines()
        rows.append((tool, True, (version[0] if version else path).strip()))
    rows.append(
        (
            "source",
            profile.source.is_dir(),
            f"{profile.source}" + ("" if profile.source.is_dir() else " is not a directory"),
        )
    )
    steps = [
        ("secrets", lambda: duplicity_environment(profile), "resolved"),
        ("gpg keys", lambda: gpgkeys.check_keys(profile), "usable"),
    ]
    if chains.is_split(profile):
        roots = len(profile["include"])
        steps.append(("chains", lambda: chains.of(profile), f"one per include root ({roots})"))
    for what, step, fine in steps:
        try:
            step()
            rows.append((what, True, fine))
        except CfbackupError as error:
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
            account = swift.account_stats(profile, conn)
            container = swift.container_stats(profile, conn)
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
    for plugin_rows in run.hooks.cfbackup_check(run=run):
        rows.extend(plugin_rows or [])
    failed = [r for r in rows if not r[1]]
    return RunResult(
        profile=profile.name,
        action="check",
        data=rows,
        exit_code=ExitCode.REFUSED if failed else ExitCode.OK,
        message=(
            f"{len(failed)} check(s) failed for {profile.name}"
            if failed
            else f"{profile.name} is ready"
        ),
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
    return keystone.connection(creds, keystone_session=session)
