"""``cfbackup status``'s text: figures that Swift reports late are not shown as current."""

from __future__ import annotations

import argparse

from cfbackup.cli.printers import print_status
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
    print_status(_status(account), argparse.Namespace(json=False))
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "account:" in ln)
    assert line.startswith("  account: 21000000 bytes in 6 objects, no quota"), line
    assert "Swift's own account total still says 0 bytes in 0 objects: it lags" in line

    account.update(bytes_used=21_000_000, object_count=6)  # caught up: nothing to say
    print_status(_status(account), argparse.Namespace(json=False))
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "account:" in ln)
    assert line == "  account: 21000000 bytes in 6 objects, no quota"


def test_a_running_backup_is_shown_and_chains_duplicity_must_read_are_explained(capsys):
    """status beside a running backup says so; for a target whose chains only duplicity reads
    (and the running backup's duplicity holds its archive dir) it says why none are shown and
    which command to run later, keeping the user's -c FILE."""
    from cfbackup import suggest

    result = _status(None)
    result.data["remote"] = None
    result.data["running"] = {
        "pid": 4242,
        "action": "backup",
        "since": 1796500000.0,
        "chains_shown": True,
    }
    print_status(result, argparse.Namespace(json=False))
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("  running: a backup of web1 (PID 4242, since 20"), lines
    assert not any("not shown" in line for line in lines)

    result.data["running"]["chains_shown"] = False
    suggest.use_config("/etc/cfb/other.toml")
    try:
        print_status(result, argparse.Namespace(json=False))
    finally:
        suggest.use_config(None)
    line = capsys.readouterr().out.splitlines()[2]
    assert line.startswith("  chains: not shown: duplicity reads them for this target"), line
    assert "cfbackup -c /etc/cfb/other.toml status web1 again once it ends" in line


def test_the_profile_lock_holder_is_seen_without_taking_the_lock(tmp_path):
    """status asks who holds a profile's lock without taking it even for a moment (a backup
    starting in that moment would be refused)."""
    import fcntl
    import os

    from cfbackup import lock

    assert lock.holder(tmp_path, "web1") is None  # never locked
    with lock.profile_lock(tmp_path, "web1", "backup") as path:
        held = lock.holder(tmp_path, "web1")
        assert held["pid"] == os.getpid() and held["action"] == "backup"
        fd = os.open(path, os.O_RDONLY)  # the holder keeps its lock throughout
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                raise AssertionError("the lock was free while held")
            except BlockingIOError:
                pass
        finally:
            os.close(fd)
    assert lock.holder(tmp_path, "web1") is None  # released: the file stays, unlocked


def test_a_lost_manifest_is_broken_not_an_interrupted_backup(capsys):
    """duplicity counts a set whose manifest is lost (newer sets follow it) as incomplete;
    status must not call it an interrupted backup that the next backup resumes."""
    result = _status(None)
    result.data["remote"] = None
    result.data.update(
        broken=True,
        incomplete_sets=1,
        lost_manifests=[{"type": "inc", "time": "20261206T035816Z", "volumes": 1}],
    )
    print_status(result, argparse.Namespace(json=False))
    out = capsys.readouterr().out
    assert "BROKEN: the chain is broken at the inc set of 20261206T035816Z" in out
    assert "cfbackup backup web1 --full" in out
    assert "interrupted" not in out and "orphaned" not in out


def test_the_last_checks_are_shown_and_a_failed_read_data_makes_the_profile_broken(
    tmp_path, capsys
):
    """status used to read only backup runs: a failed verify --read-data or drill was nowhere
    in it. Each check's newest run is shown (text and --json), and the newest of the checks
    that read the volumes decides whether they found the backup damaged."""
    from cfbackup import history
    from cfbackup.actions.status import last_checks

    def record(action, code, result, message, stats):
        run_id = history.record_start(tmp_path, "web1", action)
        history.record_finish(tmp_path, run_id, code, result, message, stats)

    record("backup", 0, "success", "backup of web1 done", {})
    record("drill", 0, "success", "drill of web1 passed: ...", {"from_nothing": False})
    record(
        "verify",
        8,
        "verify_differences",
        "verify --read-data of web1 found 1 bad volume(s)",
        {"read_data": "all volumes", "bad_volumes": ["duplicity-full...vol2 is corrupt"]},
    )
    record("verify", 0, "success", "verify of web1 passed: 6 file(s)", {"compared": 6})
    checks = last_checks(tmp_path, "web1")
    assert checks["verify"]["result"] == "success"  # a plain verify after it hides nothing
    assert checks["read_data"]["exit_code"] == 8 and checks["read_data"]["damage"]
    assert checks["drill"]["result"] == "success" and checks["drill_from_nothing"] is None

    result = _status(None)
    result.data["remote"] = None
    result.data.update(last_checks=checks, damage_found_by="read_data", broken=True)
    print_status(result, argparse.Namespace(json=False))
    lines = capsys.readouterr().out.splitlines()
    assert any(ln.startswith("  BROKEN: the newest check, verify --read-data of ") for ln in lines)
    assert "  last verify --read-data: verify_differences, " in "\n".join(lines)
    assert any(ln.endswith(": verify --read-data of web1 found 1 bad volume(s)") for ln in lines)
    assert "  last drill --from-nothing: never" in lines
    assert not any("orphaned" in ln for ln in lines)

    # a passing read-data afterwards: no longer broken
    record("verify", 0, "success", "verify --read-data of web1 passed", {"read_data": "all"})
    from cfbackup.actions.status import _damage_found

    assert _damage_found(last_checks(tmp_path, "web1")) is None
    # a plain verify's differences are the source's changes; a split root gone is damage
    record("verify", 1, "verify_differences", "verify found 3 difference(s)", {"differences": 3})
    assert _damage_found(last_checks(tmp_path, "web1")) is None
    record("verify", 8, "backup_damaged", "chain /b is gone", {"lost_roots": ["b"]})
    assert _damage_found(last_checks(tmp_path, "web1")) == "verify"


def test_a_success_with_warnings_shows_them_a_plain_success_does_not(capsys):
    """A backup whose retention deletes Swift could not confirm succeeded (exit 0): status's
    text says so beside the last success, as the history keeps it (runner._with_warning)."""
    result = _status({})
    result.data.pop("remote")
    warned = "retention ran, but the deletes of 3 object(s) could not be confirmed"
    result.data["last_success"] = {"at": 0.0, "message": f"backup done (warning: {warned})"}
    print_status(result, argparse.Namespace(json=False))
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "last success" in ln)
    assert line.endswith(f" (warning: {warned})"), line
    result.data["last_success"] = {"at": 0.0, "message": "backup done (1 file (new))"}
    print_status(result, argparse.Namespace(json=False))
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "last success" in ln)
    assert line.endswith(":00"), line  # the time, nothing after it


def test_a_check_refused_for_its_command_line_is_not_the_last_check(tmp_path):
    """``drill web --kit K`` without --from-nothing, or ``verify web --read-data --time 1D``,
    exits 2 (USAGE) after its run's row is written: status then showed it as the last drill
    ("last drill: usage, ...") in place of the drill that passed, so the one line saying
    when the backup was last proven restorable said nothing. A usage error checked nothing."""
    from cfbackup import history
    from cfbackup.actions.status import last_checks

    def record(action, code, result, message, stats):
        run_id = history.record_start(tmp_path, "web1", action)
        history.record_finish(tmp_path, run_id, code, result, message, stats)

    record("drill", 0, "success", "drill of web1 passed: ...", {"from_nothing": False})
    record("verify", 0, "success", "verify --read-data of web1 passed", {"read_data": "all"})
    record("drill", 2, "usage", "--kit go with --from-nothing: ...", {"from_nothing": False})
    record("verify", 2, "usage", "--read-data checks every ...", {"read_data": "all"})
    checks = last_checks(tmp_path, "web1")
    assert checks["drill"]["result"] == "success", checks
    assert checks["read_data"]["result"] == "success", checks
