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
        f"{interrupted_set.MARK} Swift refused to delete 1 object(s) of the interrupted backup "
        f"set Sun Dec  6 09:00:00 2026 ({REFUSAL})"
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
        f"ERROR 50 BackendException\n. BackendException: {interrupted_set.MARK} Swift refused "
        f"to delete 1 object(s) of the interrupted backup set T ({REFUSAL})\n"
    )
    from cfbackup.duplicity import machinelog

    parser = machinelog.MachineLogParser()
    records = [r for line in text.splitlines(keepends=True) if (r := parser.feed(line))]
    records += [last] if (last := parser.close()) else []
    monkeypatch.setattr(suggest, "_config", "/etc/cfbackup/x.toml")
    error = classify_failure(DuplicityResult(("duplicity", "full"), 50, records, ()))
    assert error.exit_code == ExitCode.BACKEND
    assert error.message == (
        f"the last backup was interrupted and the objects it left could not be deleted "
        f"({REFUSAL}), which duplicity must do before it backs up again: nothing was backed up "
        "this time and no backup was lost; let the storage user delete objects in the target "
        "(an ACL, an object lock or a middleware may refuse deletes), then run "
        "cfbackup -c /etc/cfbackup/x.toml cleanup PROFILE or the backup again (duplicity exit "
        "code 50)."
    )
