"""Secrets that reached a hook's environment, the run history, a warning or a temp folder."""

from __future__ import annotations

import os
import types
from pathlib import Path

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

    def capture(argv, env=None, timeout=None, own_group=False):
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


def _dead_pid() -> int:
    import subprocess

    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_keyring_copy_of_a_dead_run_is_swept(tmp_path, monkeypatch):
    """A check killed with -9 left a copy of the secret keyring in TMPDIR: the next use of a
    throw-away keyring removes it (its agent stopped first), and keeps a live run's copy."""
    import subprocess
    import tempfile

    from cfbackup import gpgkeys, passcheck

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    dead = tmp_path / f"cfbackup-gpg-{_dead_pid()}-x1y2"
    (dead / "gnupg" / "private-keys-v1.d").mkdir(parents=True)
    (dead / "gnupg" / "private-keys-v1.d" / "KEY.key").write_text("FAKE secret key")
    live_process = subprocess.Popen(["sleep", "30"])
    live = tmp_path / f"cfbackup-gpg-{live_process.pid}-a1b2"
    (live / "gnupg").mkdir(parents=True)
    stopped = []
    real_stop = gpgkeys.stop_agent
    monkeypatch.setattr(gpgkeys, "stop_agent", lambda home: (stopped.append(Path(home)),
                                                             real_stop(home)))  # fmt: skip
    try:
        with passcheck.empty_keyring() as gpg:
            home = Path(gpg.gnupghome)
            assert home.parent.name.startswith(f"cfbackup-gpg-{os.getpid()}-")
            assert home.parent.parent == tmp_path
        assert not dead.exists()
        assert dead / "gnupg" in stopped
        assert live.exists()
        assert not home.parent.exists()
    finally:
        live_process.kill()
        live_process.wait()


def _symmetric_config(config: Path, secret_file: Path) -> Path:
    text = config.read_text().replace(
        'mode = "none"', f'mode = "symmetric"\npassphrase_file = "{secret_file}"'
    )
    config.write_text(text)
    return config


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_secret_file_others_can_read_warns_every_run_and_fails_check(
    config, tmp_path, capsys, mode
):
    from cfbackup.cli import main
    from cfbackup.config.load import load_config

    secret_file = tmp_path / "passphrase"
    secret_file.write_text("FAKEpassphraseW2\n")
    secret_file.chmod(mode)
    _symmetric_config(config, secret_file)
    expected = (f"{secret_file} holds a secret but is readable by others (mode {mode:04o}): "
                f"run chmod 600 {secret_file}")  # fmt: skip
    loaded = load_config(config)
    assert loaded.profile("main").secret_file_warnings == [expected]
    assert any(expected in w for w in loaded.warnings)  # on stderr (cli.context)

    code = main(["-c", str(config), "check", "main"])
    out, err = capsys.readouterr()
    assert code == 5, (out, err)
    assert expected in out + err
    assert "secret file mode" in out + err

    secret_file.chmod(0o600)
    assert load_config(config).profile("main").secret_file_warnings == []
    main(["-c", str(config), "check", "main"])
    out, err = capsys.readouterr()
    assert "holds a secret" not in out + err


def test_a_secret_file_of_another_user_warns(tmp_path):
    from cfbackup.config import secrets

    secret_file = tmp_path / "passphrase"
    secret_file.write_text("FAKEpassphraseW2\n")
    secret_file.chmod(0o600)
    if os.getuid() != 0:
        pytest.skip("giving the file to another user needs root")
    os.chown(secret_file, 4242, -1)  # root reading another user's file: that user can change it
    warning = secrets.loose_secret_file(secret_file)
    assert warning and "belongs to" in warning and f"chmod 600 {secret_file}" in warning


def test_the_run_history_and_the_notification_repeat_the_warning(config, tmp_path):
    from cfbackup.config.load import load_config
    from cfbackup.runner import _with_warning

    secret_file = tmp_path / "passphrase"
    secret_file.write_text("FAKEpassphraseW2\n")
    secret_file.chmod(0o644)
    loaded = load_config(_symmetric_config(config, secret_file))
    profile = loaded.profile("main")
    assert "chmod 600" in _with_warning("backup done", loaded, profile)
