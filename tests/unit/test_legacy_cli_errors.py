"""``dt-cf-backup`` fails as ``cfbackup`` does: a bug is one line naming where to report it."""

from __future__ import annotations

from cfbackup.errors import ExitCode


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
