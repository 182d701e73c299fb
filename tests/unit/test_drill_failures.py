"""What a failed duplicity restore makes of a drill's files: only a failure duplicity's output
shows to be damage (``classify_failure`` -> ``BackupDamaged``) marks them "cannot be restored"
(exit 8, "the backup is damaged"); any other (duplicity crashed on a name, a full disk) leaves
them unchecked and fails the drill with that cause and its own exit code."""

from __future__ import annotations

import threading
import types
from datetime import datetime

import pytest

from cfbackup import drill, drillplan, signatures, suggest
from cfbackup.actions import drill as drill_action
from cfbackup.errors import BackupDamaged, DuplicityFailed, ExitCode


def _drill_with(paths):
    state = drill._Drill.__new__(drill._Drill)
    state.report = drill.Report(seed=7, sample="100%")
    state.lock = threading.Lock()
    chain = object()
    entries = [signatures.Entry(p, signatures.FILE, 0) for p in paths]
    state.results = {(id(chain), p): drill.FileResult(p, 0) for p in paths}
    unit = drillplan.Unit((), True, entries, [], 0.0)
    return state, chain, unit


def test_a_crash_of_duplicity_is_not_damage_to_the_backup():
    state, chain, unit = _drill_with(["a", "b"])
    crash = DuplicityFailed(
        "duplicity restore failed with exit code 30: UnicodeDecodeError: 'utf-8' codec can't "
        "decode byte 0xe9",
        returncode=30,
    )
    state._restore_failed(chain, unit, crash)
    state.report.files = list(state.results.values())
    assert state.report.count(drill.FAILED) == 0
    assert all(f.reason.startswith("not checked: ") for f in state.report.files)
    assert state.report.errors == [crash]
    suggest.use_config("/etc/cfb.toml")
    try:
        error = drill_action._not_damage(state.report, "drill of web1", "web1", "...", {}, [])
        options = {"time": "3D", "when": 1_800_000_000.0, "from_nothing": True, "kit": "k.gpg"}
        run = types.SimpleNamespace(options=options)
        again = drill_action._not_damage(
            state.report, "drill of web1", "web1", "...", {}, drill_action._same_backup(run)
        )
    finally:
        suggest.use_config(None)
    # the same drill again reads the same backup, the same way: 3D as the moment it meant
    moment = datetime.fromtimestamp(1_800_000_000).astimezone().isoformat(timespec="seconds")
    assert f"--seed 7 --time {moment} --kit k.gpg --from-nothing" in again.message, again.message
    assert error.exit_code == ExitCode.DUPLICITY
    assert "damaged" not in error.message and "--full" not in error.message
    assert "could not check 2 file(s)" in error.message
    assert "UnicodeDecodeError" in error.message
    assert "cfbackup -c /etc/cfb.toml drill web1 --sample 100% --seed 7" in error.message


def test_damage_duplicity_names_still_fails_the_files():
    state, chain, unit = _drill_with(["a"])
    damage = BackupDamaged("remote volume x is corrupt: the backup at the target is damaged")
    state._restore_failed(chain, unit, damage)
    (result,) = state.results.values()
    assert result.status == drill.FAILED and "is corrupt" in result.reason
    assert state.report.errors == []


def test_too_little_space_suggests_a_drill_that_runs_as_printed(tmp_path, monkeypatch):
    """A drill refused for lack of space names a smaller drill as a command (-c FILE, the
    profile, the options that chose the backup), not just "a smaller --sample"."""
    import shutil

    from cfbackup import volumes
    from cfbackup.errors import RunRefused

    state = drill._Drill.__new__(drill._Drill)
    state.profile = types.SimpleNamespace(name="web1")
    state.same = ["--time", "3D"]
    monkeypatch.setattr(shutil, "disk_usage", lambda path: types.SimpleNamespace(free=1000))
    need = [volumes.VolumeRef("duplicity-full.T.vol1.difftar.gpg", 1, "full", 10_000, None)]
    suggest.use_config("/etc/cfb.toml")
    try:
        with pytest.raises(RunRefused) as raised:
            state._check_space(tmp_path, need, [])
    finally:
        suggest.use_config(None)
    assert raised.value.message.endswith(
        "drill a smaller sample, down to one file: cfbackup -c /etc/cfb.toml drill web1 "
        "--sample 1 --time 3D."
    ), raised.value.message


def test_a_drill_that_checked_no_file_suggests_one_that_can():
    """Cut short before its first file, the drill suggests the same drill with twice the time;
    one that sampled files but checked none (and met no error) says so: neither passes."""
    report = drill.Report(seed=7, sample="2%", files_in_backup=50, stopped=True)
    report.files = [drill.FileResult("a", 0, reason="max-duration reached before it was restored")]
    suggest.use_config("/etc/cfb.toml")
    try:
        stopped = drill_action._nothing_checked(report, "drill of web1", "web1", "/srv", 4, [])
        report.stopped, report.files[0].reason = False, "not restored"
        none = drill_action._nothing_checked(
            report, "drill of web1", "web1", "/srv", None, ["--time", "3D"]
        )
    finally:
        suggest.use_config(None)
    assert stopped.startswith("drill of web1 checked no file before --max-duration 4s ran out")
    assert "cfbackup -c /etc/cfb.toml drill web1 --sample 2% --max-duration 8s," in stopped
    assert (
        "checked none of the 1 file(s) it sampled, so it proves nothing: a: not restored;" in none
    )
    assert none.endswith("drill again: cfbackup -c /etc/cfb.toml drill web1 --sample 2% --time 3D")


def test_files_lost_to_one_cause_are_named_together_in_the_message():
    """Eight files of one damaged volume read as one cause, not as the same sentence after each
    of the first five files; another cause keeps its own place."""
    volume = "its volume 3 of the full backup of 2026-12-06 (x.vol3.difftar.gpg) is corrupt"
    problems = [drill.FileResult(f"d/f{n}", 0, drill.FAILED, reason=volume) for n in range(8)]
    problems.append(drill.FileResult("e/g", 0, drill.MISMATCH, reason="mode 0600, backup 0644"))
    shown = drill_action._by_cause(problems)
    assert shown == (
        f"d/f0, d/f1, d/f2 and 5 more file(s): {volume}; e/g: mode 0600, backup 0644"
    )
    assert shown.count(volume) == 1
    causes = [drill.FileResult(f"c{n}", 0, drill.FAILED, reason=f"cause {n}") for n in range(7)]
    assert drill_action._by_cause(causes).endswith("c4: cause 4; and 2 more file(s)")
