"""restore --force's merge, on folders made here (the end-to-end cases with duplicity are in
tests/end_to_end/test_restore_force.py)."""

from __future__ import annotations

import errno
import os

import pytest

from cfbackup import restore_merge
from cfbackup.duplicity.commands import STAGE_PREFIX
from cfbackup.errors import RestoreTargetError


def _stage(tmp_path):
    destination = tmp_path / "t"
    (destination / "d").mkdir(parents=True)
    (destination / "d" / "old").write_text("old\n")
    folder = destination / f"{STAGE_PREFIX}{os.getpid()}-x"
    (folder / "restored" / "d").mkdir(parents=True)
    (folder / "restored" / "d" / "new").write_text("new\n")
    return restore_merge.Stage(into=folder / "restored", folder=folder), destination


def test_a_folder_whose_mode_this_user_may_not_set_does_not_stop_the_merge(tmp_path, monkeypatch):
    """Not root, writing into a group-writable folder of another user: chmod/utime on it fail
    with EPERM; the files are what matters, the move is not left half-done for that."""
    stage, destination = _stage(tmp_path)
    monkeypatch.setattr(restore_merge.os, "geteuid", lambda: 1000)

    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(restore_merge.os, "chmod", refuse)
    restore_merge.merge(stage, destination, None, False)
    assert (destination / "d" / "new").read_text() == "new\n"
    assert (destination / "d" / "old").read_text() == "old\n"
    assert not stage.keep


def test_a_folder_set_aside_is_never_taken_for_a_stale_staging_folder(tmp_path, monkeypatch):
    """A folder in the way is renamed aside until its replacement is in place: a restore
    killed with -9 at that moment leaves the only copy of it, which the next restore's
    clean-up of dead restores' staging folders must keep."""
    target = tmp_path / "etc"
    target.mkdir()
    (target / "only copy").write_text("precious\n")
    new = tmp_path / "new"
    new.write_text("from the backup\n")
    monkeypatch.setattr(restore_merge.os, "getpid", lambda: 99999999)  # as if that run were dead
    replace, seen = os.replace, []

    def killed_here(source, destination):  # the next restore runs now, in the same folder
        restore_merge.remove_stale(tmp_path)
        seen.extend(p.name for p in tmp_path.iterdir() if p.name.startswith(STAGE_PREFIX))
        assert any(p.read_text() == "precious\n" for p in tmp_path.rglob("only copy"))
        replace(source, destination)

    monkeypatch.setattr(restore_merge.os, "replace", killed_here)
    restore_merge._replace(new, target)
    assert seen and target.read_text() == "from the backup\n"


def test_only_staging_folders_of_dead_restores_are_removed(tmp_path):
    dead, alive = 99999999, os.getpid()
    names = {
        f"{STAGE_PREFIX}{dead}-a": False,  # killed with -9: removed
        f"{STAGE_PREFIX}{alive}-b": True,  # a restore running now
        f"{STAGE_PREFIX}kept-{dead}-c": True,  # kept by a merge that stopped part-way
        f"{STAGE_PREFIX}old-{dead}-etc": True,  # the only copy of a replaced folder
    }
    for name in names:
        (tmp_path / name).mkdir()
    restore_merge.remove_stale(tmp_path)
    assert {name: (tmp_path / name).exists() for name in names} == names


def _stopped_part_way(tmp_path, monkeypatch, names, failure=errno.EIO, as_os_does=False, **again):
    """``restore --path d`` into an empty folder ``t/d`` (no --force needed): the staged
    entries ``names`` are moved in one by one, and the second move fails (naming its target,
    or, ``as_os_does``, its source then its target, as ``os.replace``'s own errors do)."""
    destination = tmp_path / "t" / "d"
    folder = destination / f"{STAGE_PREFIX}{os.getpid()}-x"
    (folder / "restored").mkdir(parents=True)
    for name in names:
        (folder / "restored" / name).write_text(f"{name!r}\n")
    stage = restore_merge.Stage(into=folder / "restored", folder=folder)
    replace, calls = os.replace, []

    def second_fails(source, target):
        calls.append(target)
        if len(calls) == 2:
            named = (os.fspath(source), os.fspath(target)) if as_os_does else (target,)
            raise OSError(failure, os.strerror(failure), *map(os.fspath, named))
        replace(source, target)

    monkeypatch.setattr(restore_merge.os, "replace", second_fails)
    with pytest.raises(RestoreTargetError) as raised:
        restore_merge.merge(stage, destination, "d", False, **again)
    monkeypatch.undo()
    assert stage.keep and any(destination.iterdir())  # a retry now needs --force
    return raised.value.message, stage, destination


def test_a_merge_stopped_part_way_gives_a_retry_that_runs_as_printed(tmp_path, monkeypatch):
    """Before: "... or run the restore again": run as typed (no --force, the folder was empty),
    that retry was refused, the folder no longer being empty."""
    # no command to give (dt-cf-backup --restore-file): the flag it needs, named
    message, stage, _ = _stopped_part_way(tmp_path, monkeypatch, ["a", "b"])
    assert f"run the restore again with --force, then delete {stage.folder}." in message, message
    again = "cfbackup -c /etc/c.toml restore main /srv/t --path d --force"
    message, stage, _ = _stopped_part_way(tmp_path / "2", monkeypatch, ["a", "b"], again=again)
    assert f"run the restore again ({again}), then delete {stage.folder}." in message, message


def test_the_list_of_moved_paths_holds_any_name(tmp_path, monkeypatch):
    """Before: moved.txt had one path a line: a name holding a newline read as two paths."""
    names = ["a\nb", "z"]  # sorted: "a\nb" moves, then "z" fails
    message, stage, destination = _stopped_part_way(tmp_path, monkeypatch, names)
    listing = stage.folder / "moved.nul"
    assert f"(listed in {listing}, NUL-separated)" in message, message
    moved = listing.read_bytes().split(b"\0")
    assert moved == [os.fsencode(destination / "a\nb"), b""]
    assert (destination / "a\nb").read_text() == "'a\\nb'\n"
    assert not (stage.folder / "moved.txt").exists()


def test_a_merge_stopped_on_a_staged_path_names_it_in_the_kept_folder(tmp_path, monkeypatch):
    """os.replace's error names the staged entry first: the message named it in the staging
    folder as it was before it was renamed to the kept one, a path that no longer existed."""
    message, stage, destination = _stopped_part_way(
        tmp_path, monkeypatch, ["a", "b"], as_os_does=True
    )
    assert STAGE_PREFIX + "kept-" in stage.folder.name
    staged = stage.folder / "restored" / "b"
    assert staged.exists()
    assert f"stopped part-way at {staged} (Input/output error)" in message, message


def test_a_merge_stopped_by_a_full_disk_says_what_to_free_first(tmp_path, monkeypatch):
    """The disk full, moved.nul could not be written either: the message still said the moved
    entries were "listed in" it, and its advice, run the restore again then delete the kept
    copy, staged a second whole copy beside the first on the disk that was full."""
    from pathlib import Path

    write_bytes = Path.write_bytes

    def disk_full(self, data):
        if self.name == "moved.nul":
            write_bytes(self, data[:3])  # cut short, as a full disk does
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    again = "cfbackup -c /etc/c.toml restore main /srv/t --path d --force"
    message, stage, destination = _stopped_part_way(
        tmp_path, monkeypatch, ["a", "b"], failure=errno.ENOSPC, again=again
    )
    kept, rest = stage.folder, stage.folder / "restored"
    assert not (kept / "moved.nul").exists()  # no list rather than a cut one
    assert message == (
        f"moving the restored files into {destination} stopped part-way at {destination}/b (No "
        f"space left on device) after 1 entry was moved (their list could not be written (No "
        f"space left on device)): the rest of the restore is kept in {rest}: free room there "
        f"first (the kept copy takes room too), then finish by hand (cp -a {rest}/. "
        f"{destination}/) and delete {kept}; or delete {kept} first and run the restore again "
        f"({again}), or restore into a folder on another disk."
    ), message


def test_a_ctrl_c_as_a_read_only_folder_moves_leaves_it_with_its_mode_and_listed(tmp_path):
    """A staged 0555 folder is made writable to move it to its place, then given its mode
    again: a Ctrl-C right after the rename left it 0755 in the user's tree, missing from
    moved.nul, and the mode put back on the staged path (gone) raised FileNotFoundError in
    place of the interruption. The signal now waits until the folder is in place, 0555."""
    import signal
    import stat

    from cfbackup import interrupts
    from cfbackup.errors import Interrupted

    destination = tmp_path / "t"
    destination.mkdir()
    folder = destination / f"{STAGE_PREFIX}{os.getpid()}-x"
    (folder / "restored" / "ro").mkdir(parents=True)
    (folder / "restored" / "ro" / "f").write_text("f\n")
    (folder / "restored" / "z").write_text("z\n")
    os.chmod(folder / "restored" / "ro", 0o555)
    stage = restore_merge.Stage(into=folder / "restored", folder=folder)
    replace = os.replace

    def ctrl_c_after(source, target):
        replace(source, target)
        if os.path.basename(target) == "ro":
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, interrupts._on_stop_signal)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(restore_merge.os, "replace", ctrl_c_after)
            with pytest.raises(Interrupted):
                restore_merge.merge(stage, destination, None, False)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert stat.S_IMODE(os.lstat(destination / "ro").st_mode) == 0o555
    listing = (stage.folder / "moved.nul").read_bytes().split(b"\0")
    assert os.fsencode(destination / "ro") in listing
