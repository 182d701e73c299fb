"""The interrupted-set patch: during a backup, a set Swift refused to delete ends duplicity
(it deleted it again for ever); elsewhere (retention, cleanup) deletes go on as before."""

from __future__ import annotations

import pytest

from cfbackup.duplicity.patches import interrupted_set, swift_deletes

REFUSAL = (
    "Swift refused to delete host1/duplicity-full.X.vol1.difftar.gpg: it answered 403 Forbidden"
)


class _Set:
    def __init__(self, refuse: bool) -> None:
        self.refuse, self.deleted = refuse, 0

    def get_timestr(self) -> str:
        return "Sun Dec  6 09:00:00 2026"


def _delete(backup_set) -> None:
    backup_set.deleted += 1
    if backup_set.refuse:
        swift_deletes.refusals["duplicity-full.X.vol1.difftar.gpg"] = REFUSAL


@pytest.fixture
def action(monkeypatch):
    from duplicity import config

    def set_action(name):
        monkeypatch.setattr(config, "action", name)

    yield set_action
    swift_deletes.refusals.clear()


@pytest.mark.parametrize("name", ["full", "inc"])
def test_a_backup_ends_with_swift_s_answer_when_the_set_s_delete_was_refused(action, name):
    from duplicity.errors import BackendException

    action(name)
    refused = _Set(refuse=True)
    with pytest.raises(BackendException) as raised:
        interrupted_set._stopping(_delete)(refused)
    assert refused.deleted == 1
    assert str(raised.value) == (
        f"{interrupted_set.MARK} the interrupted backup set Sun Dec  6 09:00:00 2026 could not "
        f"be deleted ({REFUSAL})"
    )


def test_a_delete_swift_made_or_another_command_s_goes_on(action):
    action("full")
    swift_deletes.refusals["an earlier one"] = REFUSAL  # not this set's
    done = _Set(refuse=False)
    interrupted_set._stopping(_delete)(done)
    assert done.deleted == 1
    for other in ("remove-all-but-n-full", "cleanup"):
        action(other)
        refused = _Set(refuse=True)
        interrupted_set._stopping(_delete)(refused)  # retention checks what stayed itself
        assert refused.deleted == 1


def test_cfbackup_says_what_happened_what_it_means_and_the_fix(monkeypatch):
    from cfbackup import suggest
    from cfbackup.duplicity.failures import classify_failure
    from cfbackup.duplicity.result import DuplicityResult
    from cfbackup.errors import ExitCode

    text = (
        f"ERROR 50 BackendException\n. BackendException: {interrupted_set.MARK} the interrupted "
        f"backup set T could not be deleted ({REFUSAL})\n"
    )
    from cfbackup.duplicity import machinelog

    parser = machinelog.MachineLogParser()
    records = [r for line in text.splitlines(keepends=True) if (r := parser.feed(line))]
    records += [last] if (last := parser.close()) else []
    monkeypatch.setattr(suggest, "_config", "/etc/cfbackup/x.toml")
    error = classify_failure(DuplicityResult(("duplicity", "full"), 50, records, ()))
    assert error.exit_code == ExitCode.BACKEND
    assert error.message == (
        "an incomplete backup set at the target (an interrupted backup's) could not be deleted "
        f"({REFUSAL}), which duplicity must do before it backs up again: nothing was backed up "
        "this time and no backup was lost; let the backup's user delete objects in the target "
        "(a Swift ACL, an object lock or a middleware may refuse deletes; a local target may be "
        "read-only or not writable), or wait until it answers, then run "
        "cfbackup -c /etc/cfbackup/x.toml cleanup PROFILE or the backup again (duplicity exit "
        "code 50)."
    )


def test_a_local_target_that_cannot_delete_the_set_ends_the_backup(tmp_path):
    """A file:// target whose interrupted set cannot be deleted (here a volume name that is a
    folder with a file in it: rmdir fails as on a read-only disk, whoever runs the test):
    duplicity's retries only warn, and the backup deleted the set again for ever."""
    import os
    import subprocess

    from cfbackup.duplicity import launcher

    source, target = tmp_path / "src", tmp_path / "target"
    source.mkdir()
    (source / "a.txt").write_text("a\n")
    stuck = target / "duplicity-full.20260101T000000Z.vol1.difftar.gz"
    stuck.mkdir(parents=True)
    (stuck / "x").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CFBACKUP_", "SWIFT_"))}
    run = subprocess.run(
        [*launcher.command(), "full", "--no-encryption", "--num-retries", "1", "--archive-dir",
         str(tmp_path / "archive"), "--name", "x", str(source), f"file://{target}"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    said = run.stdout + run.stderr
    assert run.returncode != 0, said[-2000:]
    assert interrupted_set.MARK in said and "could not be deleted" in said, said[-2000:]
    assert "Directory not empty" in said, said[-2000:]
    assert said.count("Cleaning up previous partial") <= 2, said[-2000:]
    assert stuck.is_dir()  # nothing else touched


def test_a_backend_s_own_delete_methods_are_put_back_and_a_retry_clears_a_failure():
    """par2's backend sets _delete_list on itself: it must still be there after the set's
    delete; a delete that failed once and then worked (duplicity retries) is no failure; a batch
    that raised counts once, not as every name in it."""

    class Own:
        def __init__(self) -> None:
            self.calls = 0
            self._delete_list = self.delete_list

        def delete_list(self, names):
            self.calls += 1
            if self.calls == 1:
                raise OSError("busy")

    raw = Own()
    own = raw._delete_list
    failed: dict[str, str] = {}
    with interrupted_set._recording(raw, failed):
        with pytest.raises(OSError):
            raw._delete_list(["a", "b", "c"])
        assert list(failed.values()) == ["a (one of 3 in a batch): OSError: busy"]
        raw._delete_list(["a", "b", "c"])  # the retry worked
    assert failed == {} and raw._delete_list == own
