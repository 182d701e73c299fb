"""The run history tells each check apart however the run ends: a ``verify --read-data`` or a
``drill --from-nothing`` stopped by Ctrl-C is that check, interrupted, not a plain verify or
drill (status would show a verify that never ran, and hide the read-data that did)."""

from __future__ import annotations

import argparse
import os

import pytest

from cfbackup import history
from cfbackup.actions.status import _damage_found, last_checks
from cfbackup.errors import ExitCode


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt  # what Ctrl-C (and SIGTERM, interrupts.install) raises


@pytest.mark.parametrize(
    ("argv", "patched", "kind", "plain", "said"),
    [
        (
            ("verify", "main", "--read-data"),
            "cfbackup.actions.read_data.prepare",
            "read_data",
            "verify",
            "the verify --read-data of main was stopped",
        ),
        (
            ("drill", "main", "--from-nothing"),
            "cfbackup.actions.from_nothing.sandbox",
            "drill_from_nothing",
            "drill",
            "the drill --from-nothing of main was stopped",
        ),
    ],
)
def test_an_interrupted_check_is_recorded_as_that_check(
    cli, config, tmp_path, monkeypatch, argv, patched, kind, plain, said
):
    from cfbackup.cli import main

    monkeypatch.setattr(patched, _interrupt)  # Ctrl-C during the check's set-up
    (tmp_path / "target").mkdir()  # a target that does not exist is refused before set-up
    code, err = cli(main, "-c", config, *argv)
    assert code == ExitCode.INTERRUPTED, err
    checks = last_checks(tmp_path / "state", "main")
    assert checks[plain] is None  # before: "last verify: interrupted", a verify never run
    assert checks[kind]["result"] == "interrupted"
    assert checks[kind]["exit_code"] == ExitCode.INTERRUPTED
    assert said in err  # before: "duplicity was stopped ... (a backup resumes ...)"


def test_the_kind_is_in_the_history_from_the_start(config, tmp_path):
    """A run killed with -9 records no outcome; the next run closes it as interrupted with the
    statistics it had (runner._close_abandoned_runs): its kind must be there already."""
    from cfbackup.config import load_config
    from cfbackup.plugins import make_plugin_manager
    from cfbackup.runner import execute_run
    from cfbackup.runtypes import RunResult

    loaded = load_config(config)
    seen = {}

    def body(run):
        seen.update(history.runs(loaded.state_dir, "main", limit=1)[0])
        return RunResult(profile="main", action="verify")

    execute_run(
        loaded,
        loaded.profile("main"),
        "verify",
        {"read_data": "1/7"},
        make_plugin_manager(load_entry_points=False),
        body,
    )
    # and its pid, so that a run waiting for the lock is not taken for a dead one
    assert seen["finished"] is None and seen["stats"] == {"read_data": "1/7", "pid": os.getpid()}


def test_an_interrupted_read_data_does_not_clear_the_damage_an_earlier_one_found(tmp_path, capsys):
    from cfbackup.cli.printers import print_status
    from cfbackup.runtypes import RunResult

    def record(action, code, result, message, stats):
        run_id = history.record_start(tmp_path, "web1", action)
        history.record_finish(tmp_path, run_id, code, result, message, stats)

    record(
        "verify",
        8,
        "verify_differences",
        "verify --read-data of web1 found 1 bad volume(s): vol2 is corrupt",
        {"read_data": "all volumes", "bad_volumes": ["vol2 is corrupt"]},
    )
    record("verify", 130, "interrupted", "interrupted: ...", {"read_data": "all"})
    shown = last_checks(tmp_path, "web1")
    assert shown["read_data"]["result"] == "interrupted"  # the newest run, as it ended
    verdicts = last_checks(tmp_path, "web1", conclusive=True)
    assert _damage_found(verdicts) == "read_data"
    assert verdicts["read_data"]["exit_code"] == 8

    data = {
        "profile": "web1",
        "target": "swift://backups/web1",
        "last_full": "20261204T101010Z",
        "last_incremental": None,
        "chains": [],
        "broken": True,
        "orphaned_sets": 0,
        "incomplete_sets": 0,
        "remote": None,
        "last_checks": shown,
        "damage_found_by": "read_data",
        "damage_found": verdicts["read_data"],
    }
    result = RunResult(profile="web1", action="status", data=data)
    print_status(result, argparse.Namespace(json=False))
    out = capsys.readouterr().out
    assert "BROKEN: the newest check that finished, verify --read-data of " in out
    assert "found damage: verify --read-data of web1 found 1 bad volume(s)" in out
    assert "  last verify --read-data: interrupted, " in out

    record("verify", 0, "success", "verify --read-data of web1 passed", {"read_data": "all"})
    assert _damage_found(last_checks(tmp_path, "web1", conclusive=True)) is None
