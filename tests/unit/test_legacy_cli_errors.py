"""``dt-cf-backup`` fails as ``cfbackup`` does: a bug is one line naming where to report it."""

from __future__ import annotations

import pytest

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


def _legacy(tmp_path, *extra: str, name: str = "old.conf"):
    """A duplicity-backup.sh config backing up to a file:// target, unencrypted."""
    (tmp_path / "src").mkdir(exist_ok=True)
    path = tmp_path / name
    lines = [
        f'ROOT="{tmp_path}/src"',
        f'DEST="file://{tmp_path}/dest"',
        "ENCRYPTION='no'",
        f'LOGDIR="{tmp_path}/logs/"',
        'VERBOSITY="-v3"',
        *extra,
    ]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty HOME (no ~/.dt-cf-backup.conf), run from tmp_path, no $CONFIG."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CONFIG", raising=False)
    monkeypatch.delenv("CFBACKUP_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return home


def _usage(capsys, *argv):
    """dt-cf-backup's exit code and stderr for a command line argparse itself refuses."""
    from cfbackup import legacy_cli

    with pytest.raises(SystemExit) as exited:
        legacy_cli.main([str(a) for a in argv])
    return exited.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    "flags",
    [
        ("-n", "--force", "--restore", "live"),
        ("--dry-run", "--restore-file", "a.txt", "x"),
        ("-n", "-t", "3D", "--restore-dir", "d"),
    ],
)
def test_a_dry_run_of_a_restore_is_refused_before_anything(cli, home, tmp_path, flags):
    """Before: -n was dropped for restores, and `-n --force --restore live` overwrote live."""
    from cfbackup import legacy_cli

    conf = _legacy(tmp_path)
    code, err = cli(legacy_cli.main, "-c", conf, *flags)
    assert code == ExitCode.USAGE, err
    listing = f"dt-cf-backup -c {conf} --list-current-files" + (" -t 3D" if "-t" in flags else "")
    assert (
        "dt-cf-backup cannot dry-run a restore: drop -n to restore, or see what would be "
        f"restored with {listing}" in err
    ), err
    assert not (tmp_path / "live").exists() and not (tmp_path / "x").exists()
    assert not (tmp_path / "logs").exists()  # not even a run started


def test_restore_yes_is_the_old_prompts_answer_not_a_directory(cli, home, tmp_path):
    """Before: `--restore yes` (dt-s3-backup's answer to its prompt) restored into ./yes."""
    from cfbackup import legacy_cli

    conf = _legacy(tmp_path)
    code, err = cli(legacy_cli.main, "-c", conf, "--restore", "yes")
    assert code == ExitCode.USAGE, err
    assert "`yes` was dt-s3-backup's answer to its prompt, not a directory: " in err
    assert f"dt-cf-backup -c {conf} --restore /path/to/empty/dir" in err
    assert not (tmp_path / "yes").exists()


def test_restore_without_a_path_names_the_files_restore_variable(cli, home, tmp_path):
    """Before: the error did not say that the file's RESTORE=DIR is not read."""
    from cfbackup import legacy_cli

    conf = _legacy(tmp_path, f'RESTORE="{tmp_path}/restore-backup-01"')
    code, err = cli(legacy_cli.main, "-c", conf, "--restore")
    assert code == ExitCode.USAGE, err
    assert f"sets RESTORE={tmp_path}/restore-backup-01" in err, err
    assert f"dt-cf-backup -c {conf} --restore {tmp_path}/restore-backup-01" in err, err
    assert not (tmp_path / "restore-backup-01").exists()


def test_no_action_says_old_versions_backed_up_and_the_cron_line_needs_backup(cli, home, tmp_path):
    """Before: argparse's whole help text, no word about the old default."""
    from cfbackup import legacy_cli

    conf = _legacy(tmp_path)
    code, err = cli(legacy_cli.main, "-c", conf)
    assert code == ExitCode.USAGE, err
    assert "old versions backed up when given no options" in err
    assert f"needs --backup now: dt-cf-backup -c {conf} --backup" in err
    assert err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("flag", "fix"),
    [
        ("--backup-this-script", "use --backup-script"),
        ("--display-config", "use cfbackup -c {conf} config migrate {conf}"),
        ("--test", "use -n"),
        ("--frobnicate", "unknown option --frobnicate: see dt-cf-backup --help"),
    ],
)
def test_an_unknown_flag_is_one_sentence_naming_its_replacement(capsys, home, tmp_path, flag, fix):
    """Before: argparse's usage block and "unrecognized arguments"."""
    conf = _legacy(tmp_path)
    code, err = _usage(capsys, "-c", conf, flag, "-b")
    assert code == ExitCode.USAGE
    assert fix.format(conf=conf) in err, err
    assert "usage:" not in err and "unrecognized" not in err, err
    assert err.count("\n") == 1, err


def test_restore_to_dir_is_restore(cli, home, tmp_path):
    """Before: unknown option. Now dt-s3-backup's --restore-to-dir PATH is --restore PATH (the
    test run shows the restore it would start)."""
    from cfbackup import legacy_cli

    conf = _legacy(tmp_path)
    code, err = cli(legacy_cli.main, "-c", conf, "-d", "--restore-to-dir", tmp_path / "out")
    assert code == ExitCode.OK, err


def test_restore_file_into_a_folder_with_a_slash_is_restored_as_folder_name(home, tmp_path, capsys):
    """Before: `--restore-file etc/hosts /tmp/x/` replaced the folder x by the file. The old
    scripts gave DEST to duplicity as the file's own path (a folder there was refused); a
    trailing slash says "into this folder", as cp reads it: DEST/hosts."""
    from cfbackup import legacy_cli

    conf = _legacy(tmp_path)
    (tmp_path / "into").mkdir()
    for dest, restored in (
        (f"{tmp_path}/into/", f"{tmp_path}/into/hosts"),
        (f"{tmp_path}/new/", f"{tmp_path}/new/hosts"),  # a folder to be made
        (f"{tmp_path}/into/h2", f"{tmp_path}/into/h2"),  # no slash: the file's own path
    ):
        code = legacy_cli.main(["-c", str(conf), "-d", "--restore-file", "etc/hosts", dest])
        out = capsys.readouterr().out
        assert code == ExitCode.OK, out
        assert f"--path-to-restore=etc/hosts file://{tmp_path}/dest {restored}\n" in out, out
    code = legacy_cli.main(["-c", str(conf), "-d", "--restore-dir", "etc", f"{tmp_path}/d/"])
    out = capsys.readouterr().out
    assert f"--path-to-restore=etc file://{tmp_path}/dest {tmp_path}/d\n" in out, out


def test_config_comes_from_CONFIG_when_no_c(cli, home, tmp_path, monkeypatch, capsys):  # noqa: N802
    """Before: $CONFIG (duplicity-backup.sh v1.7.1) was ignored, and a missing default file
    said "check the path given with -c" to a command line without -c."""
    from cfbackup import legacy_cli

    code, err = cli(legacy_cli.main, "--backup")
    assert code == ExitCode.CONFIG, err
    assert (
        "no ~/.dt-cf-backup.conf: give your old config with -c FILE (or set CONFIG=FILE)" in err
    ), err
    monkeypatch.setenv("CONFIG", str(_legacy(tmp_path)))
    code, err = cli(legacy_cli.main, "-d", "--backup")
    assert code == ExitCode.OK, err


def test_backup_script_without_a_passphrase_names_the_legacy_variable(cli, home, tmp_path):
    """Before: a legacy file was told to set passphrase_file (or _env, _command)."""
    from cfbackup import legacy_cli

    conf = _legacy(tmp_path)
    code, err = cli(legacy_cli.main, "-c", conf, "--backup-script")
    assert code == ExitCode.CONFIG, err
    assert f'set PASSPHRASE="..." in {conf}' in err, err
    assert "passphrase_file" not in err, err


def test_a_passphrase_command_that_failed_is_named_with_its_line(cli, home, tmp_path):
    """Before: the warning named the file twice and the error told a legacy file to set
    passphrase_file (or _env, _command), not which line left PASSPHRASE empty."""
    from cfbackup import legacy_cli

    conf = _legacy(tmp_path, "ENCRYPTION=yes", 'PASSPHRASE="$(cat /nonexistent/FAKE-pw-V3)"')
    code, err = cli(legacy_cli.main, "-c", conf, "--backup")
    assert code == ExitCode.CONFIG, err
    assert err.splitlines()[-1] == (
        f"cfbackup: error: {conf}: PASSPHRASE is empty (the command on line 7 failed or printed "
        "nothing): run that command by hand to see why, and fix it."
    ), err
    assert f"{conf}: {conf}" not in err and "FAKE-pw-V3" not in err, err
