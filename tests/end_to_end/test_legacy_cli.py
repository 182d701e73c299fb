"""Old command lines through ``dt-cf-backup`` against a real duplicity and a file:// target:
the flags that meant "change nothing" or "run nothing" in the old scripts never run for real,
and verify reports a difference whatever the profile's verbosity."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import textwrap
import time

import pytest
from support.cli import BIN, CliResult

from cfbackup.errors import ExitCode


@pytest.fixture
def run(tmp_path):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CFBACKUP_")}
    env.pop("CONFIG", None)
    env.update(HOME=str(home), CFBACKUP_NO_WARM="1")

    def call(*args, program: str = "dt-cf-backup") -> CliResult:
        completed = subprocess.run(
            [str(BIN / program), *map(str, args)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        result = CliResult(completed)
        assert "Traceback" not in result.output, result
        return result

    return call


def _tree(tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "a.txt").write_text("first version\n")
    (src / "d" / "b.txt").write_text("b\n")
    return src


def _legacy(tmp_path, *extra: str):
    path = tmp_path / "old.conf"
    path.write_text(
        textwrap.dedent(f"""\
        ROOT="{tmp_path}/src"
        DEST="file://{tmp_path}/dest"
        INCLIST=()
        EXCLIST=()
        ENCRYPTION='no'
        STATIC_OPTIONS="--full-if-older-than 14D"
        CLEAN_UP_TYPE="remove-all-but-n-full"
        CLEAN_UP_VARIABLE="1"
        LOGDIR="{tmp_path}/logs/"
        VERBOSITY="-v3"
        """)
        + "".join(line + "\n" for line in extra)
    )
    path.chmod(0o600)
    return path


def _target(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "dest").iterdir())


def test_a_dry_run_restore_writes_nothing(tmp_path, run):
    """Before: `-n --force --restore live` restored over live (-n was dropped)."""
    src = _tree(tmp_path)
    conf = _legacy(tmp_path)
    assert run("-c", conf, "-b").returncode == 0
    live = tmp_path / "live"
    live.mkdir()
    (live / "a.txt").write_text("newer, not backed up\n")
    result = run("-c", conf, "-n", "--force", "--restore", live)
    assert result.returncode == ExitCode.USAGE, result
    assert "dt-cf-backup cannot dry-run a restore" in result.stderr
    assert (live / "a.txt").read_text() == "newer, not backed up\n"
    assert sorted(p.name for p in live.iterdir()) == ["a.txt"]
    assert (src / "a.txt").exists()


def test_debug_and_echo_are_test_runs_that_run_nothing(tmp_path, run):
    """Before: `-d -f` made a full backup and retention removed the oldest chain; ECHO in the
    file only got a "not carried over" warning and the backup ran."""
    _tree(tmp_path)
    conf = _legacy(tmp_path)
    assert run("-c", conf, "-b").returncode == 0
    before = _target(tmp_path)
    result = run("-c", conf, "-d", "-f")
    assert result.returncode == 0, result
    assert "TEST RUN ONLY: nothing was run (-d)" in result.stdout, result
    assert "  duplicity full " in result.stdout and "remove-all-but-n-full 1" in result.stdout
    assert _target(tmp_path) == before
    with conf.open("a") as file:
        file.write("ECHO=$(which echo)\n")
    result = run("-c", conf, "-b")
    assert result.returncode == 0, result
    assert f"TEST RUN ONLY: nothing was run (ECHO is set in {conf})" in result.stdout, result
    assert "  duplicity backup " in result.stdout
    assert _target(tmp_path) == before
    # ECHO set to nothing (duplicity-backup.sh's default) runs
    conf.write_text(conf.read_text().replace("ECHO=$(which echo)", 'ECHO=""'))
    result = run("-c", conf, "-l")
    assert result.returncode == 0 and "d/b.txt" in result.stdout, result


def test_verify_reports_a_difference_at_warning_verbosity(tmp_path, run):
    """Before: at verbosity warning (legacy VERBOSITY="-v3") duplicity's "Verify complete"
    and "Difference found" notices never came: a clean verify "passed: 0 file(s)", one with a
    difference failed with exit 7 and "no output"."""
    src = _tree(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text(
        textwrap.dedent(f"""\
        state_dir = "{tmp_path}/state"

        [profiles.main]
        source = "{src}"
        target = "file://{tmp_path}/dest"
        verbosity = "warning"

        [profiles.main.encryption]
        mode = "none"
        """)
    )
    config.chmod(0o600)
    assert run("-c", config, "backup", "main", program="cfbackup").returncode == 0
    clean = run("-c", config, "verify", "main", "--compare-data", program="cfbackup")
    assert clean.returncode == 0, clean
    assert "passed: 4 file(s)" in clean.stdout, clean
    (src / "a.txt").write_text("second version\n")
    found = run("-c", config, "verify", "main", "--compare-data", program="cfbackup")
    assert found.returncode == ExitCode.VERIFY_DIFFERENCES, found
    assert "1 difference(s)" in found.stderr and "a.txt" in found.stderr, found
    # the same through the old command line and a legacy VERBOSITY="-v3"
    conf = _legacy(tmp_path)
    (tmp_path / "dest").rename(tmp_path / "dest-native")
    assert run("-c", conf, "-b").returncode == 0
    (src / "d" / "b.txt").write_text("changed\n")
    found = run("-c", conf, "-v")
    assert found.returncode == ExitCode.VERIFY_DIFFERENCES, found
    assert "d/b.txt" in found.stderr, found
    # -v3 is duplicity's notice level: -l prints the notices duplicity printed first
    listed = run("-c", conf, "-l")
    assert listed.returncode == 0, listed
    assert listed.stdout.startswith("Local and Remote metadata are synchronized, no sync needed.\n"
                                    "Last full backup date: "), listed.stdout  # fmt: skip


def _real_duplicity(config, command: str, monkeypatch, cli_env) -> subprocess.CompletedProcess:
    """duplicity's own ``command`` for the profile of ``config``, as dt-cf-backup.sh ran it:
    the profile's target, archive dir, name and secrets, duplicity's default verbosity."""
    from cfbackup.config.load import load_config
    from cfbackup.duplicity import commands
    from cfbackup.duplicity.environment import duplicity_environment

    for name in ("T_PASSPHRASE", "T_SWIFT_KEY"):
        monkeypatch.setenv(name, cli_env[name])
    profile = load_config(config).profile("main")
    build = {"collection-status": commands.collection_status_argv, "list": commands.list_argv}
    argv = [word for word in build[command](profile) if not word.startswith("--verbosity=")]
    return subprocess.run(
        [str(BIN / "duplicity"), *argv[1:]],
        env={**cli_env, **duplicity_environment(profile)},
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=True,
    )


@pytest.mark.swift
def test_status_and_listing_print_duplicitys_own_text(
    tmp_path, make_config, cfbackup, cli_env, monkeypatch
):
    """Before: -s and -l printed cfbackup's status and list: the cron wrappers grepping
    dt-cf-backup.sh's "Last full backup date:" or "Chain end time:", or counting the lines of
    -l, found nothing. Now both print what duplicity's collection-status and
    list-current-files print for the same target and archive dir, byte for byte."""
    src = _tree(tmp_path)
    config = make_config(source=src)
    full = cfbackup("-c", config, "-f", program="dt-cf-backup")
    assert full.returncode == 0 and " uploaded" in full.stderr, full  # progress lines
    time.sleep(1.1)  # duplicity's times have one-second resolution
    (src / "new file.txt").write_text("added by the incremental\n")
    incremental = cfbackup("-c", config, "-b", "-q", program="dt-cf-backup")
    assert incremental.returncode == 0 and " uploaded" not in incremental.stderr, incremental

    status = cfbackup("-c", config, "-s", program="dt-cf-backup")
    assert status.returncode == 0, status
    real = _real_duplicity(config, "collection-status", monkeypatch, cli_env)
    assert status.stdout == real.stdout
    assert "Number of contained backup sets: 2\n" in status.stdout, status
    assert "Last full backup date: " in status.stdout and "Chain end time: " in status.stdout

    listing = cfbackup("-c", config, "-l", program="dt-cf-backup")
    assert listing.returncode == 0, listing
    real = _real_duplicity(config, "list", monkeypatch, cli_env)
    assert listing.stdout == real.stdout
    assert " new file.txt\n" in listing.stdout, listing

    # -q is "no progress output", as cfbackup's --quiet: it silences the progress lines of a
    # backup or restore on stderr, never the text -s and -l are run for (docs/quickstart.md)
    for flag, loud in (("-s", status), ("-l", listing)):
        quiet = cfbackup("-c", config, flag, "-q", program="dt-cf-backup")
        assert quiet.returncode == 0, quiet
        assert (quiet.stdout, quiet.stderr) == (loud.stdout, loud.stderr), flag

    # cfbackup's own status and list are as they were
    native = cfbackup("-c", config, "status", "main")
    assert "  last full: " in native.stdout and "Chain end time" not in native.stdout, native
    files = cfbackup("-c", config, "list", "main")
    assert " new file.txt" in files.stdout and "Last full backup date" not in files.stdout


def test_restore_dir_onto_a_file_is_refused_with_a_fix_that_runs(tmp_path, run):
    """Before: `--restore-dir d DEST` with a file at DEST said "add --force to overwrite it",
    which restored nothing there and would have replaced the file. As `cfbackup restore` does
    for a file target, it is refused with or without --force, before anything downloads, and
    the way out it prints runs as printed."""
    _tree(tmp_path)
    conf = _legacy(tmp_path)
    assert run("-c", conf, "-b").returncode == 0
    dest = tmp_path / "out"
    dest.write_text("a file the user keeps\n")
    for force in ((), ("--force",)):
        result = run("-c", conf, *force, "--restore-dir", "d", dest)
        assert result.returncode == ExitCode.RESTORE_TARGET, result
        assert "--force" not in result.stderr, result.stderr
        message = f"{dest} is a file where the backup has a folder, nothing was changed: "
        assert message in result.stderr, result.stderr
        assert dest.read_text() == "a file the user keeps\n"
    move = f"mv {dest} {dest}.old"
    assert f"move it away ({move}) and run the restore again" in result.stderr, result.stderr
    assert subprocess.run(move.split(), check=False).returncode == 0
    again = run("-c", conf, "--restore-dir", "d", dest)
    assert again.returncode == 0, again
    assert (dest / "b.txt").read_text() == "b\n"


def test_the_legacy_profile_behind_a_native_config_is_named_with_its_file(tmp_path, run):
    """A new machine with both files (a native config and the old ``~/.dt-cf-backup.conf``
    copied back, or its recovery kit imported): ``cfbackup check dt-cf-backup --for-restore``,
    as docs/runbook-restore.md prints it, read the native config, which cfbackup finds first,
    and said only "no profile named 'dt-cf-backup' (profiles: web)". The message names the
    legacy file and the ``-c`` that reads it; the command then runs with it."""
    _tree(tmp_path)
    home = tmp_path / "home"
    legacy = home / ".dt-cf-backup.conf"
    legacy.write_text(_legacy(tmp_path).read_text())
    legacy.chmod(0o600)
    native = home / ".config" / "cfbackup" / "config.toml"
    native.parent.mkdir(parents=True)
    native.write_text(
        f'[profiles.web]\nsource = "{tmp_path}/src"\ntarget = "file://{tmp_path}/web"\n'
        '[profiles.web.encryption]\nmode = "none"\n'
    )
    native.chmod(0o600)
    assert run("backup", "dt-cf-backup", program="cfbackup").returncode == ExitCode.CONFIG
    result = run("status", "dt-cf-backup", program="cfbackup")
    assert result.returncode == ExitCode.CONFIG, result
    assert result.stderr.strip() == (
        f"cfbackup: error: {native}: no profile named 'dt-cf-backup' (profiles: web): it is the "
        f"profile of {legacy}, which cfbackup reads only when it finds no other config: add "
        f"-c {legacy} to the command."
    ), result.stderr
    assert run("-c", legacy, "backup", "dt-cf-backup", program="cfbackup").returncode == 0
    result = run("-c", legacy, "status", "dt-cf-backup", program="cfbackup")
    assert result.returncode == 0 and "profile dt-cf-backup" in result.stdout, result
    # dt-cf-backup reads the old file: the cfbackup commands its messages suggest carry it
    # (cfbackup would read the native config), and run as printed
    result = run("--restore-file", "zzz/none", tmp_path / "out" / "none")
    assert result.returncode == ExitCode.REFUSED, result
    printed = re.search(r"check the path against (cfbackup .*)\.$", result.stderr.strip())
    assert printed and printed[1] == f"cfbackup -c {legacy} list dt-cf-backup", result.stderr
    listed = run(*shlex.split(printed[1])[1:], program="cfbackup")
    assert listed.returncode == 0 and "d/b.txt" in listed.stdout, listed


@pytest.mark.parametrize("flag", ["--restore-file", "--restore-dir"])
def test_a_path_only_an_earlier_backup_holds_is_given_a_dt_cf_backup_command(
    tmp_path, run, flag
):
    """``dt-cf-backup --restore-file FILE DEST`` of a file deleted before the last backup: the
    message named the earlier backup that holds it and said "restore it from there with
    --time STAMP", prose, not a command. It gives the dt-cf-backup command now, which runs as
    printed."""
    src = _tree(tmp_path)
    (src / "d" / "gone").mkdir()
    (src / "d" / "gone" / "-old.conf").write_text("kept\n")
    conf = _legacy(tmp_path)
    assert run("-c", conf, "-b").returncode == 0
    time.sleep(1.1)
    (src / "d" / "gone" / "-old.conf").unlink()
    (src / "d" / "gone").rmdir()
    assert run("-c", conf, "-b").returncode == 0
    wanted = "d/gone/-old.conf" if flag == "--restore-file" else "d/gone"
    dest = tmp_path / "out" / "x y"
    result = run("-c", conf, flag, wanted, dest)
    assert result.returncode == ExitCode.REFUSED, result
    printed = re.search(r"restore it from there with (dt-cf-backup .*)\.$", result.stderr.strip())
    assert printed, result.stderr
    assert not dest.exists()
    again = run(*shlex.split(printed[1])[1:])
    assert again.returncode == 0, again
    restored = dest if flag == "--restore-file" else dest / "-old.conf"
    assert restored.read_text() == "kept\n"
