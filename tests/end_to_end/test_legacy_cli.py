"""Old command lines through ``dt-cf-backup`` against a real duplicity and a file:// target:
the flags that meant "change nothing" or "run nothing" in the old scripts never run for real,
and verify reports a difference whatever the profile's verbosity."""

from __future__ import annotations

import os
import subprocess
import textwrap

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
