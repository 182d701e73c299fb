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
