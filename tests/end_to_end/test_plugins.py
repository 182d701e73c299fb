"""The plugin system end to end: built-ins load through the entry-point group, a pre-hook vetoes
with its reason, a profile can switch a plugin off, and hooks fire in order."""

from __future__ import annotations

import json

import pytest
from support.trees import make_awkward_tree

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift


def test_builtin_plugins_are_listed(cfbackup):
    result = cfbackup("plugins", "--json")
    assert result.returncode == 0, result
    plugins = {row["name"]: row for row in json.loads(result.stdout)}
    assert "cfbackup_pre_backup" in plugins["command_hooks"]["hooks"]
    assert plugins["command_hooks"]["module"] == "cfbackup_command_hooks"


def test_before_backup_failure_vetoes_with_its_reason(tmp_path, make_config, cfbackup,
                                                       local_swift, container):
    from swiftclient import client

    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    log = tmp_path / "hooks.log"
    more = (f'[profiles.main.command_hooks]\n'
            f'before_backup = ["echo before $CFBACKUP_PROFILE >> {log}", "exit 3"]\n'
            f'on_error = ["echo error: $CFBACKUP_ERROR >> {log}"]\n')
    config = make_config(source=src, more=more)
    result = cfbackup("-c", config, "backup")
    assert result.returncode == ExitCode.REFUSED, result
    assert "'exit 3' exited with code 3" in result.stderr
    lines = log.read_text().splitlines()
    assert lines[0] == "before main" and lines[1].startswith("error: backup refused")
    user, key = local_swift.users["admin"]
    conn = client.Connection(authurl=local_swift.auth_url, user=user, key=key, auth_version="1")
    with pytest.raises(client.ClientException):
        conn.head_container(container)  # nothing was uploaded, not even the container

    disabled = make_config(source=src, more=more, extra='disable_plugins = ["command_hooks"]\n',
                           name="disabled.toml")
    result = cfbackup("-c", disabled, "backup")
    assert result.returncode == 0, result


def test_hooks_fire_around_a_restore(tmp_path, make_config, cfbackup):
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    log = tmp_path / "hooks.log"
    more = (f'[profiles.main.command_hooks]\n'
            f'after_backup = ["echo after_backup >> {log}"]\n'
            f'before_restore = ["echo before_restore $CFBACKUP_ACTION >> {log}"]\n'
            f'after_restore = ["echo after_restore >> {log}"]\n')
    config = make_config(source=src, more=more)
    assert cfbackup("-c", config, "backup").returncode == 0
    assert cfbackup("-c", config, "restore", "main", tmp_path / "out").returncode == 0
    assert log.read_text().splitlines() == ["after_backup", "before_restore restore",
                                            "after_restore"]


def test_check_reports_each_item(tmp_path, make_config, cfbackup):
    config = make_config()
    result = cfbackup("-c", config, "check")
    assert result.returncode == 0, result
    for item in ("config", "duplicity", "gpg", "source", "secrets", "swift"):
        assert f"[ok] {item}" in result.stdout


def test_a_broken_entry_point_is_named_on_every_command_and_the_rest_still_runs(
    tmp_path, make_config, cfbackup
):
    """An installed distribution whose cfbackup entry points are broken (a module that is
    gone, an attribute that is not there): each is named as not loaded, with the cause and
    the fix, on every command; never a traceback, never silently missing; the other plugins
    load and the run completes."""
    site = tmp_path / "site"
    dist = site / "brokenplug-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[cfbackup]\ngone = cfbackup_no_such_module\nhalf = json:no_such_attribute\n"
    )
    env = {"PYTHONPATH": str(site)}
    wanted = (
        "plugin gone could not be loaded (ModuleNotFoundError: No module named "
        "'cfbackup_no_such_module'): reinstall or remove it",
        "plugin half could not be loaded (AttributeError: module 'json' has no attribute "
        "'no_such_attribute'): reinstall or remove it",
    )
    listed = cfbackup("plugins", env=env)
    assert listed.returncode == 0, listed
    assert all(line in listed.stderr for line in wanted), listed
    assert "command_hooks" in listed.stdout and "gone" not in listed.stdout
    hook = tmp_path / "hook-ran"
    config = make_config(
        target=f"file://{tmp_path}/backup", encryption='mode = "none"',
        more=f'[profiles.main.command_hooks]\nbefore_backup = ["touch {hook}"]\n')
    (tmp_path / "src" / "f").write_text("x")
    result = cfbackup("-c", config, "backup", env=env)
    assert result.returncode == 0, result
    assert all(line in result.stderr for line in wanted), result
    assert hook.exists()  # the plugins that load still run
