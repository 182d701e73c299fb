"""``--time`` is read once, before any run starts, and both front-ends fail the same way."""

from __future__ import annotations

import pytest

from cfbackup import history
from cfbackup.actions.common import parse_time
from cfbackup.errors import CfbackupError, ExitCode


@pytest.mark.parametrize(
    "text", ["3D", "1W2D", "2026-11-01", "2026/11/01", "2026-11-01T02:30:00Z", "1700000000", "now"]
)
def test_the_forms_duplicity_reads_are_accepted(text):
    assert parse_time(text) > 0


@pytest.mark.parametrize("text", ["yesterday", "2026-11-01 02:30", "3 days"])
def test_a_mistyped_time_names_the_forms_duplicity_reads(text):
    with pytest.raises(CfbackupError) as caught:
        parse_time(text)
    assert caught.value.exit_code == ExitCode.USAGE
    assert f"--time {text!r} is not a time duplicity reads" in caught.value.message
    assert "3D" in caught.value.message and "2026-11-01T02:30:00" in caught.value.message


@pytest.mark.parametrize(
    "argv",
    [
        ("restore", "main", "{tmp}/restored", "--time", "yesterday"),
        ("restore", "main", "{tmp}/restored/deep", "--path", "a", "--time", "yesterday"),
        ("list", "main", "--time", "yesterday"),
    ],
)
def test_a_mistyped_time_is_a_usage_error_before_any_run(cli, config, tmp_path, argv):
    """Before: exit 7 ("duplicity failed") with a file:// target or restore_prefetch = 0,
    exit 2 only after the hooks (firewall lock-down included) ran and folders were made."""
    from cfbackup.cli import main

    code, err = cli(main, "-c", config, *(a.format(tmp=tmp_path) for a in argv))
    assert code == ExitCode.USAGE, err
    assert err.count("\n") == 1 and "--time 'yesterday' is not a time duplicity reads" in err
    assert not (tmp_path / "restored").exists()
    assert history.runs(tmp_path / "state", "main") == []  # no run, so no hook, no lock


def test_dt_cf_backup_reads_time_the_same_way(cli, config, tmp_path):
    from cfbackup import legacy_cli

    code, err = cli(
        legacy_cli.main, "-c", config, "--restore", tmp_path / "restored", "-t", "yesterday"
    )
    assert code == ExitCode.USAGE, err
    assert "--time 'yesterday' is not a time duplicity reads" in err
    assert not (tmp_path / "restored").exists()


def test_a_restore_printed_to_run_later_names_the_moment_a_relative_time_meant(
    cli, config, tmp_path
):
    """The restores a message prints (into the folder a symlinked target points to, after a
    partial restore, after a merge that stopped) copied `--time 3D` as typed: run hours
    later, 3D is another moment, and another backup may be restored. A relative time is now
    printed as the moment it meant; a date is kept as typed."""
    import re
    import time

    from cfbackup.cli import main

    live = tmp_path / "live"
    live.mkdir()
    link = tmp_path / "link"
    link.symlink_to(live)
    before = time.time()
    code, err = cli(main, "-c", config, "restore", "main", link, "--path", "a", "--time", "3D")
    assert code == ExitCode.RESTORE_TARGET, err
    printed = re.search(rf"\(cfbackup -c \S+ restore main {live} --path a --time (\S+)\)", err)
    assert printed, err
    assert printed[1] != "3D" and re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", printed[1]
    )
    assert before - 3 * 86400 - 1 <= parse_time(printed[1]) <= time.time() - 3 * 86400
    code, err = cli(main, "-c", config, "restore", "main", link, "--time", "2026-11-01")
    assert f"restore main {live} --time 2026-11-01)" in err, err
