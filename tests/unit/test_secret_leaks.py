"""Secrets that reached a hook's environment, the run history, a warning or a temp folder."""

from __future__ import annotations

import types

import pytest

from cfbackup import history, redact
from cfbackup.errors import CfbackupError, ConfigError

SECRET = "FAKEsecretQ7x9"


@pytest.fixture
def secret():
    redact.register(SECRET)
    return SECRET


def test_on_error_hook_gets_a_redacted_error(secret, monkeypatch):
    import cfbackup_command_hooks as hooks

    seen = {}

    def capture(argv, env=None, timeout=None):
        seen.update(env)
        return types.SimpleNamespace(returncode=0, tail=[])

    monkeypatch.setattr(hooks.execute, "capture", capture)
    run = types.SimpleNamespace(
        profile=types.SimpleNamespace(name="main"),
        action="backup",
        plugin_config=lambda section: {"on_error": ["true"]},
    )
    hooks.cfbackup_on_error(run, CfbackupError(f"swift said: password {secret} refused"))
    assert secret not in seen["CFBACKUP_ERROR"]
    assert "***" in seen["CFBACKUP_ERROR"]
    hooks.cfbackup_on_error(run, RuntimeError(f"boom {secret}"))
    assert secret not in seen["CFBACKUP_ERROR"]


def test_failed_recovery_kit_stores_a_redacted_message(secret, tmp_path, monkeypatch):
    from cfbackup.actions import recovery_kit
    from cfbackup.cli import recovery

    def fail(config, profile, directory):
        raise ConfigError(f"cannot write the kit with {secret}")

    monkeypatch.setattr(recovery_kit, "export_kit", fail)
    profile = types.SimpleNamespace(name="main")
    config = types.SimpleNamespace(state_dir=tmp_path, profile=lambda name: profile)
    args = types.SimpleNamespace(profile="main", directory=str(tmp_path / "kit"))
    with pytest.raises(ConfigError):
        recovery.export_recovery_kit(args, types.SimpleNamespace(config=config))
    rows = history.runs(tmp_path)
    assert rows and all(secret not in str(row) for row in rows)
    assert any("***" in str(row.get("message")) for row in rows)
