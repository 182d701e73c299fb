"""``cfbackup status``'s text: figures that Swift reports late are not shown as current."""

from __future__ import annotations

import argparse

from cfbackup.cli.commands import _print_status
from cfbackup.runtypes import RunResult


def _status(account: dict) -> RunResult:
    data = {
        "profile": "web1",
        "target": "swift://backups/web1",
        "last_full": "20261204T101010Z",
        "last_incremental": None,
        "chains": [],
        "broken": False,
        "orphaned_sets": 0,
        "incomplete_sets": 0,
        "remote": {
            "container": "backups",
            "exists": True,
            "bytes_used": 21_000_000,
            "object_count": 6,
            "quota_bytes": None,
            "quota_count": None,
            "account": account,
        },
    }
    return RunResult(profile="web1", action="status", data=data)


def test_account_line_shows_the_current_figure_and_says_the_reported_one_lags(capsys):
    """Right after a backup Swift's account HEAD still says 0 bytes (its container-updater
    runs minutes later): the line shows the sum of the containers, and says it lags."""
    account = {
        "bytes_used": 0,
        "object_count": 0,
        "bytes_used_current": 21_000_000,
        "object_count_current": 6,
        "current_exact": True,
        "quota_bytes": None,
        "quota_count": None,
    }
    _print_status(_status(account), argparse.Namespace(json=False))
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "account:" in ln)
    assert line.startswith("  account: 21000000 bytes in 6 objects, no quota"), line
    assert "Swift's own account total still says 0 bytes in 0 objects: it lags" in line

    account.update(bytes_used=21_000_000, object_count=6)  # caught up: nothing to say
    _print_status(_status(account), argparse.Namespace(json=False))
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "account:" in ln)
    assert line == "  account: 21000000 bytes in 6 objects, no quota"
