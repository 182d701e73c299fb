"""The quota guard bounds the entries an incremental deletes by duplicity's SourceFiles at the
last successful backup (plugins/cfbackup_quota_guard/guard.py ``previous_entries``)."""

from __future__ import annotations

from cfbackup_quota_guard.guard import previous_entries

from cfbackup import history


def _backup(state_dir, stats, marks=None, result="success"):
    run = history.record_start(state_dir, "p", "backup", marks or {})
    history.record_finish(state_dir, run, 0, result, "", {**(marks or {}), **stats})


def test_a_dry_run_s_count_is_no_backup_s(tmp_path):
    """Files deleted before a --dry-run must stay in the bound: its count is not the set's."""
    _backup(tmp_path, {"SourceFiles": 1000})
    _backup(tmp_path, {"SourceFiles": 10}, {"dry_run": True})
    assert previous_entries(tmp_path, "p") == 1000


def test_the_newest_success_that_counted_and_none_without_history(tmp_path):
    assert previous_entries(tmp_path, "p") is None
    _backup(tmp_path, {"SourceFiles": 7})
    _backup(tmp_path, {"SourceFiles": 3}, result="failure")
    _backup(tmp_path, {})  # a success that recorded no count
    assert previous_entries(tmp_path, "p") == 7
