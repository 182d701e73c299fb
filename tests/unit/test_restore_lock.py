"""restore_lock: one restore at a time into a folder (the end-to-end runs with two real
restores are in tests/end_to_end/test_restore_target_lock.py). Two ``held`` in one process
conflict as two processes do: each opens the folder anew, and flock locks belong to an open
file, not to a process (this process's own PID is left out of the message)."""

from __future__ import annotations

import pytest

from cfbackup import restore_lock
from cfbackup.errors import LockHeld, RestoreTargetError

FIX = "wait for it to finish (the lock is released when that process ends), or restore into"


def test_a_second_restore_into_the_folder_is_refused_and_it_is_free_after(tmp_path):
    folder = tmp_path / "restore"
    folder.mkdir()
    with restore_lock.held(folder):
        with pytest.raises(LockHeld) as refused, restore_lock.held(folder):
            pass
        assert refused.value.message == (
            f"{folder} is being restored into by another restore: {FIX} another folder."
        )
    with restore_lock.held(folder):  # released with the first
        pass


def test_folders_inside_or_around_are_refused_and_siblings_are_not(tmp_path):
    outer, inner = tmp_path / "restore", tmp_path / "restore" / "web"
    with restore_lock.held(inner) as made:
        assert made == [inner, outer]  # made, deepest first
        with pytest.raises(LockHeld) as refused, restore_lock.held(outer):
            pass
        assert refused.value.message == (  # this process's own folders are not named
            f"a folder inside {outer} is being restored into by another restore: {FIX} "
            "another folder."
        )
        with pytest.raises(LockHeld) as deeper, restore_lock.held(inner / "etc" / "nginx"):
            pass
        assert deeper.value.message == (
            f"{inner} is being restored into by another restore, and {inner / 'etc' / 'nginx'} "
            f"is inside it: {FIX} a folder outside {inner}."
        )
        assert not (inner / "etc").exists()  # nothing made inside the held folder
        with restore_lock.held(outer / "db"):  # a sibling runs beside it
            pass
    assert inner.is_dir()  # a restore that succeeded keeps the folders made for it


def test_a_failed_restore_removes_the_folders_made_for_it_when_empty(tmp_path):
    folder = tmp_path / "a" / "b"
    with pytest.raises(RestoreTargetError), restore_lock.held(folder):
        raise RestoreTargetError("failed")
    assert not (tmp_path / "a").exists()
    with pytest.raises(RestoreTargetError), restore_lock.held(folder):
        (folder / "kept").write_text("something restored\n")
        raise RestoreTargetError("failed")
    assert (folder / "kept").exists()  # only empty folders are removed


def test_a_new_folder_made_by_the_first_restore_is_refused_to_the_second_and_kept(tmp_path):
    folder = tmp_path / "new"
    with restore_lock.held(folder) as made:
        assert made == [folder]
        with pytest.raises(LockHeld), restore_lock.held(folder):
            pass
        assert folder.is_dir()  # the refused one never removes what the first restores into
