"""``dt-cf-backup`` fails as ``cfbackup`` does: a bug is one line naming where to report it."""

from __future__ import annotations

import logging
import textwrap

import pytest

from cfbackup.errors import ExitCode


@pytest.fixture
def cli(capsys):
    """Call ``cfbackup``'s or ``dt-cf-backup``'s main in-process; returns (code, stderr)."""
    logger = logging.getLogger("cfbackup")
    handlers = list(logger.handlers)

    def call(main, *argv: str) -> tuple[int, str]:
        code = main([str(a) for a in argv])
        return code, capsys.readouterr().err

    yield call
    for handler in logger.handlers[:]:
        if handler not in handlers:
            logger.removeHandler(handler)


@pytest.fixture
def config(tmp_path):
    """A profile backing up to a file:// target (nothing here reaches it)."""
    (tmp_path / "src").mkdir()
    path = tmp_path / "config.toml"
    path.write_text(
        textwrap.dedent(f"""\
        state_dir = "{tmp_path}/state"

        [profiles.main]
        source = "{tmp_path}/src"
        target = "file://{tmp_path}/target"
        archive_dir = "{tmp_path}/archive"
        restore_prefetch = 0

        [profiles.main.encryption]
        mode = "none"
        """)
    )
    path.chmod(0o600)
    return path


def test_dt_cf_backup_turns_a_bug_into_one_line(cli, config, monkeypatch):
    """Before: dt-cf-backup let anything but CfbackupError out as a traceback."""
    from cfbackup import legacy_cli
    from cfbackup.cli import commands

    def buggy(name, **kwargs):
        def handler(args, context):
            raise ValueError("gnupghome should be a directory (it isn't): /gone")

        return handler

    monkeypatch.setattr(commands, "profile_action", buggy)
    code, err = cli(legacy_cli.main, "-c", config, "--backup")
    assert code == ExitCode.INTERNAL
    assert "Traceback" not in err
    assert err.count("\n") == 1 and "internal error (ValueError: gnupghome" in err, err
    assert "this is a bug in cfbackup" in err
