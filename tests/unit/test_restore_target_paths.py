"""Where a restore writes: ``restore_target``'s refusals before anything downloads, on folders
made by the tests. A symlink between the target and the path restored (the restore would write
through it, outside the target), a folder where a one-path restore may put a file, a target
path holding a newline, several paths in the way of a ``--force`` merge."""

from __future__ import annotations

import logging
import os
import re
import subprocess

import pytest

from cfbackup import restore_target
from cfbackup.cli import output
from cfbackup.errors import RestoreTargetError

LOGGED = re.compile(r"in the way of the restore: (.*) is a .* \((mv .*)\)$")


def _refusal(target, destination, force, **kwargs) -> str:
    with pytest.raises(RestoreTargetError) as raised:
        restore_target.check_target(target, destination, force, **kwargs)
    return raised.value.message


@pytest.mark.parametrize("force", [False, True])
def test_a_symlink_between_the_target_and_the_path_is_refused(tmp_path, force):
    """Before: `restore --path etc/hosts` with TARGET/etc a symlink to a live folder wrote
    through it, replacing the live file (with --force) or creating one (without)."""
    live = tmp_path / "live"
    live.mkdir()
    target = tmp_path / "tsl"
    target.mkdir()
    (target / "etc").symlink_to(live)
    message = _refusal(target, target / "etc" / "hosts", force, rel="etc/hosts")
    link = target / "etc"
    assert message == (
        f"{link} is a symlink where the backup has a folder, nothing was changed: move it "
        f"away (mv {link} {link}.old) and run the restore again, or restore into an empty "
        "directory."
    )
    # deeper down, and a symlink to a folder inside the target is no better
    (target / "a" / "real").mkdir(parents=True)
    (target / "a" / "b").symlink_to(target / "a" / "real")
    message = _refusal(target, target / "a" / "b" / "c" / "d", force, rel="a/b/c/d")
    assert message.startswith(f"{target}/a/b is a symlink where the backup has a folder"), message


@pytest.mark.parametrize("force", [False, True])
def test_a_symlinked_target_is_refused_for_one_path_as_for_the_whole_tree(tmp_path, force):
    """Before: `restore main /srv/link --path etc/hosts` with /srv/link a symlink to a live tree
    wrote through it (only the folders between the target and the path were checked), while
    the whole-tree restore refused the same target. Both refuse now, with the same sentence
    and the command that restores into the folder it points to, checked again after the hooks
    (check_path_to)."""
    live = tmp_path / "live"
    (live / "etc").mkdir(parents=True)
    (live / "etc" / "hosts").write_text("LIVE\n")
    link = tmp_path / "link"
    link.symlink_to(live)

    def again(real):
        return f"cfbackup restore main {real}"

    expected = (
        f"{link} is a symlink to {live}: give {live} as the target (cfbackup restore main {live})."
    )
    # with no command to give (dt-cf-backup --restore-file, a name that does not paste)
    message = _refusal(link, link / "etc" / "hosts", force, rel="etc/hosts")
    assert message == f"{link} is a symlink to {live}: give {live} as the target."
    for destination, rel in ((link, None), (link / "etc" / "hosts", "etc/hosts")):
        assert _refusal(link, destination, force, rel=rel, again=again) == expected, rel
        with pytest.raises(RestoreTargetError) as raised:
            restore_target.check_path_to(link, destination, again)
        assert raised.value.message == expected
    assert (live / "etc" / "hosts").read_text() == "LIVE\n"


def test_a_folder_that_is_not_empty_names_the_files_own_path_at_once(tmp_path):
    """Before: `dt-cf-backup --restore-file etc/hosts te3` said "add --force", which then said
    "give the file's own path": the first refusal now names it, and offers no --force."""
    folder = tmp_path / "te3"
    folder.mkdir()
    (folder / "x").write_text("x\n")
    message = _refusal(folder, folder, False, rel="etc/hosts", exact=True)
    assert f"give the file's own path as the destination, such as {folder}/hosts" in message
    # --restore-file's DEST is the file's own path: no --force merge (a file cannot merge)
    assert "--force" not in message and f"move the folder away first (mv {folder} " in message
    # cfbackup restore --path: TARGET/etc/hosts is a folder, not empty
    (tmp_path / "t" / "etc" / "hosts" / "x").mkdir(parents=True)
    dest = tmp_path / "t" / "etc" / "hosts"
    message = _refusal(tmp_path / "t", dest, False, rel="etc/hosts")
    assert f"(if etc/hosts is a file, move the folder away first: mv {dest} {dest}.old)" in message


def test_a_newline_in_the_target_stays_on_one_line(tmp_path, capsys):
    """Before: "cfbackup: error: /tmp/rv/t" and "nl is not empty: ..." on two lines."""
    target = tmp_path / "t\nnl"
    target.mkdir()
    (target / "x").write_text("x\n")
    (target / "etc").write_text("a file\n")
    for destination, rel in ((target, None), (target / "etc" / "hosts", "etc/hosts"),
                             (target / "x", "x")):  # fmt: skip
        message = _refusal(target, destination, False, **({"rel": rel} if rel else {}))
        output.print_error(RestoreTargetError(message), debug=False)
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "t\\x0anl" in err, err


def test_several_paths_in_the_way_print_commands_that_run(tmp_path, caplog):
    """Before: "move them away (mv PATH PATH.old)", a template. Now each mv as it is pasted,
    the first five in the message, the rest counted there and listed in the run log."""
    destination = tmp_path / "dest"
    destination.mkdir()
    names = ["a b", "caf\udce9", "new\nline", "d", "e", "f", "g"]
    for name in names:
        (destination / name).mkdir()
    clashes = [(destination / name, "a folder where the backup has a file") for name in names]
    with caplog.at_level(logging.INFO, logger="cfbackup"):
        error = restore_target.clash_error(clashes, tmp_path / "s", destination, None, False)
    message = error.message
    assert "PATH" not in message and "(and 2 more, listed in the run log)" in message, message
    commands = message.split("move them away (")[1].split(") and run the restore again")[0]
    assert commands.count("mv ") == 5 and "\n" not in commands, commands
    subprocess.run(["bash", "-c", commands], check=True)
    logged = {m[1]: m[2] for m in map(LOGGED.match, caplog.messages) if m}
    assert len(logged) == len(names), caplog.messages
    for name in ("f", "g"):
        subprocess.run(["bash", "-c", logged[str(destination / name)]], check=True)
    for name in names:
        path = destination / name
        assert not path.exists() and path.with_name(name + ".old").is_dir(), name


@pytest.mark.parametrize("force", [False, True])
def test_a_whole_restore_onto_a_file_is_refused_at_once_without_offering_force(tmp_path, force):
    """Before: `restore web /tmp/rv/afile` said "add --force to overwrite it", and --force
    then downloaded the backup to say "is a file where the backup has a folder". The whole
    backup is a folder: that second refusal comes first, with or without --force (as for
    dt-cf-backup --restore FILE)."""
    afile = tmp_path / "afile"
    afile.write_text("kept\n")
    message = _refusal(afile, afile, force)
    assert message == (
        f"{afile} is a file where the backup has a folder, nothing was changed: move it away "
        f"(mv {afile} {afile}.old) and run the restore again, or restore into an empty "
        "directory."
    )
    # a symlink that points to no folder says so, and where it points
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    message = _refusal(dangling, dangling, force)
    assert message.startswith(
        f"{dangling} is a symlink to {tmp_path}/nowhere (which does not exist) where the "
        "backup has a folder, nothing was changed:"
    ), message
    # one path restored onto a file: the backup may have a file there, --force replaces it
    message = _refusal(tmp_path, afile, False, rel="afile")
    assert "add --force to overwrite it" in message, message
    restore_target.check_target(tmp_path, afile, True, rel="afile")
    assert afile.read_text() == "kept\n"


def test_a_symlink_to_no_folder_in_the_way_of_a_path_says_where_it_points(tmp_path):
    """Before: a dangling symlink (or one to a file) as the target of `restore --path` was
    "a file where the restore needs a folder": it is a symlink, and the message says so."""
    (tmp_path / "real").write_text("a file\n")
    for name, points, missing in (
        ("dangling", tmp_path / "nowhere", " (which does not exist)"),
        ("tofile", tmp_path / "real", ""),
    ):
        link = tmp_path / name
        link.symlink_to(points)
        message = _refusal(link, link / "etc" / "hosts", False, rel="etc/hosts")
        assert message == (
            f"{link} is a symlink to {points}{missing} where the restore needs a folder (to "
            f"hold {link}/etc/hosts): move it away (mv {link} {link}.old) or choose another "
            "target."
        ), message


def test_a_staging_folder_left_by_a_dead_restore_does_not_make_the_folder_not_empty(tmp_path):
    """``cfbackup restore web .`` killed (-9, the OOM killer, a power cut) leaves only a hidden
    ``.cfbackup-restore-PID-*`` in the folder: the retry said "is not empty" about a folder
    where ``ls`` shows nothing. Such a folder holds only what that restore copied from the
    backup (the staging step removes it: ``restore_merge.remove_stale``); one of a restore
    running now, or one kept on purpose, still counts."""
    from cfbackup.duplicity.commands import STAGE_PREFIX

    target = tmp_path / "restore"
    (target / f"{STAGE_PREFIX}99999999-a" / "restored").mkdir(parents=True)
    restore_target.check_target(target, target, False)
    for kept in (f"{STAGE_PREFIX}{os.getpid()}-b", f"{STAGE_PREFIX}kept-99999999-c"):
        (target / kept).mkdir()
        assert "is not empty" in _refusal(target, target, False)
        (target / kept).rmdir()


def test_a_folder_holding_only_a_restores_hidden_folders_names_them(tmp_path):
    """A folder where ``ls`` shows nothing was refused as "not empty" without naming what is
    in it: the hidden staging folder of a restore running there now (``cfbackup restore web
    .`` in another terminal), or one a ``--force`` merge that stopped part-way kept. The
    refusal names the folder, whose restore it is, and what to do with it."""
    from cfbackup.duplicity.commands import STAGE_PREFIX

    target = tmp_path / "restore"
    live = target / f"{STAGE_PREFIX}{os.getpid()}-b"
    live.mkdir(parents=True)
    message = _refusal(target, target, False)
    assert message == (
        f"{target} is not empty: it holds {live.name}, the staging folder of a restore still "
        f"running there (PID {os.getpid()}): wait for that restore to finish, or restore into "
        f"another directory (if PID {os.getpid()} is no cfbackup restore, remove the folder: "
        f"rm -rf {live})."
    ), message
    live.rmdir()
    kept = target / f"{STAGE_PREFIX}kept-99999999-c"
    kept.mkdir()
    message = _refusal(target, target, False)
    assert message == (
        f"{target} is not empty: it holds {kept.name}, the rest of a restore --force whose "
        f"merge stopped part-way (the entries it moved are listed in {kept}/moved.nul): finish "
        f"it by hand or delete it (rm -rf {kept}), then restore again, or restore into another "
        "directory."
    ), message
    (target / "mine.txt").write_text("mine\n")  # the user's own files: the usual sentence
    assert _refusal(target, target, False) == (
        f"{target} is not empty: restore into an empty directory, or add --force to overwrite "
        "what is there."
    )


@pytest.mark.parametrize("kind", ["file", "folder", "symlink"])
def test_a_users_entry_named_like_cfbackups_hidden_folders_is_no_restores(tmp_path, kind):
    """Any entry whose name began with .cfbackup-restore- was taken for a restore's staging
    folder: a user's file .cfbackup-restore-notes.txt was named "the staging folder of a
    restore still running there (PID notes.txt)", with ``rm -rf`` of it to paste; a symlink
    named .cfbackup-restore-1-x too (PID 1). Only cfbackup's own folders are named so; the
    user's entries get the usual sentence, which deletes nothing."""
    from cfbackup.duplicity.commands import STAGE_PREFIX

    target = tmp_path / "restore"
    target.mkdir()
    if kind == "file":
        (target / f"{STAGE_PREFIX}notes.txt").write_text("precious\n")
    elif kind == "folder":
        (target / f"{STAGE_PREFIX}mine").mkdir()
    else:
        (target / f"{STAGE_PREFIX}1-x").symlink_to(tmp_path)
    message = _refusal(target, target, False)
    assert message == (
        f"{target} is not empty: restore into an empty directory, or add --force to overwrite "
        "what is there."
    ), message
