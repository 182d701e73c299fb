"""Retention against what duplicity decides on its own: a target holding backups dated after
now (a clock that was ahead), a newest chain whose signatures are lost, and file names under
``--file-prefix`` (real duplicity, ``file://`` targets, no encryption)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.trees import make_awkward_tree

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift  # make_config's fixtures; the profile's target is a file:// URL

PLAIN = 'mode = "none"'


def _manifests(target, kind: str = "full") -> list[str]:
    return sorted(p.name for p in target.iterdir() if p.name.endswith(".manifest") and
                  f"duplicity-{kind}." in p.name)  # fmt: skip


def test_retention_reads_names_under_a_file_prefix(tmp_path, make_config, cfbackup):
    """duplicity writes ``web1-duplicity-full...`` (in the archive dir too): the count of full
    backups that decides whether retention can remove anything found none, and keep_full = 1
    kept every full."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    target = tmp_path / "target"
    config = make_config(
        source=src,
        target=f"file://{target}",
        encryption=PLAIN,
        extra='extra_options = ["--file-prefix=web1-"]\n',
        more="[profiles.main.retention]\nkeep_full = 1\n",
    )
    for _ in range(3):
        result = cfbackup("-c", config, "backup", "--full")
        assert result.returncode == 0, result
        time.sleep(1.1)
    fulls = _manifests(target)
    assert len(fulls) == 1 and fulls[0].startswith("web1-"), fulls
    out = tmp_path / "out"
    assert cfbackup("-c", config, "restore", "main", out).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in src.iterdir())


def test_prune_refuses_remove_older_than_while_the_newest_chain_has_no_signatures(
    tmp_path, make_config, cfbackup
):
    """A new machine (empty archive dir) and the newest full's signature file lost at the
    target: duplicity keeps only the chain its signatures match, so remove-older-than removed
    both chains, while the dry run (which assumed the newest kept) named one."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    target = tmp_path / "target"
    more = '[profiles.main.retention]\nafter_backup = false\nremove_older_than = "1s"\n'
    config = make_config(source=src, target=f"file://{target}", encryption=PLAIN, more=more)
    for _ in range(2):
        assert cfbackup("-c", config, "backup", "--full").returncode == 0
        time.sleep(1.1)
    shutil.rmtree(tmp_path / "archive")  # a new machine
    newest = _manifests(target)[-1].split(".")[1]
    (signature,) = target.glob(f"duplicity-full-signatures.{newest}.*")
    signature.unlink()
    time.sleep(1.5)
    before = sorted(p.name for p in target.iterdir())

    fix = f"`cfbackup -c {config} backup main --full` to start a new chain with its signatures"
    status = cfbackup("-c", config, "status")
    assert status.returncode == 0, status
    said = "REFUSED: remove-older-than retention refuses to run: the newest backup chain (the full"
    assert said in status.stdout and fix in status.stdout, status
    (why,) = json.loads(cfbackup("-c", config, "status", "--json").stdout)["unprotected_newest"]
    assert why.startswith("the newest backup chain (the full backup of ") and fix in why, why
    result = cfbackup("-c", config, "prune", "--dry-run")
    assert result.returncode == 0, result
    assert "prune itself would be refused now: the newest backup chain (the full backup of " in (
        result.stdout
    )
    assert fix in result.stdout, result
    result = cfbackup("-c", config, "prune")
    assert result.returncode == ExitCode.REFUSED, result
    assert "prune refused: the newest backup chain" in result.stderr and fix in result.stderr
    assert sorted(p.name for p in target.iterdir()) == before  # nothing removed

    # the fix as printed: a new chain, after which prune removes the older ones only
    assert cfbackup("-c", config, "backup", "main", "--full").returncode == 0
    time.sleep(1.5)
    assert json.loads(cfbackup("-c", config, "status", "--json").stdout)["unprotected_newest"] == []
    result = cfbackup("-c", config, "prune")
    assert result.returncode == 0, result
    assert len(_manifests(target)) == 1 and newest not in _manifests(target)[0]
    out = tmp_path / "out"
    assert cfbackup("-c", config, "restore", "main", out).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in src.iterdir())


def _quoted(text: str, before: str) -> str:
    """The command a message prints between backquotes right after ``before``."""
    return text.split(before + "`", 1)[1].split("`", 1)[0]


def test_backup_and_retention_refuse_while_the_target_holds_sets_dated_after_now(
    tmp_path, make_config, cfbackup
):
    """A full made while the clock was a year ahead (duplicity's --current-time stands for
    it), then the clock corrected: every later full was deleted by keep_full right after it
    was made (its cutoff is the future full), incrementals continued from the future set, and
    prune did the same. Now each refuses, status and check say why, and the fix as printed
    (move the future-dated sets aside, a new full) lets backups and retention run again."""
    from duplicity import dup_time

    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    target = tmp_path / "target"
    ahead = int(time.time()) + 365 * 86400

    def config(extra: str = ""):
        more = "[profiles.main.retention]\nkeep_full = 1\n"
        return make_config(
            source=src, target=f"file://{target}", encryption=PLAIN, extra=extra, more=more
        )

    ahead_config = config(f'extra_options = ["--current-time={ahead}"]\n')
    assert cfbackup("-c", ahead_config, "backup").returncode == 0
    path = config()  # the clock is right again
    future = _manifests(target)
    assert len(future) == 1 and dup_time.timetostring(ahead) in future[0], future
    before = sorted(p.name for p in target.iterdir())

    said = (
        "the target holds 1 backup set(s) dated after now (the newest: the full backup of "
        f"{dup_time.timetostring(ahead)}), and it is "
    )
    for args in (("backup",), ("backup", "--full"), ("prune",), ("prune", "--dry-run")):
        result = cfbackup("-c", path, *args)
        assert result.returncode == ExitCode.REFUSED, result
        assert said in result.stderr, result
        assert sorted(p.name for p in target.iterdir()) == before, args  # nothing changed
    assert "backup refused before anything was uploaded: " in cfbackup("-c", path, "backup").stderr

    status = cfbackup("-c", path, "status")
    assert status.returncode == 0, status
    assert "REFUSED: backups and retention refuse to run: " + said in status.stdout, status
    listed = json.loads(cfbackup("-c", path, "status", "--json").stdout)["future_sets"]
    assert [s["type"] for s in listed] == ["full"] and set(listed[0]["names"]) <= set(before)
    check = cfbackup("-c", path, "check")
    assert check.returncode == ExitCode.REFUSED and said in check.stdout, check

    # the fix as printed: the future-dated sets moved aside, then a new chain
    message = cfbackup("-c", path, "backup").stderr
    move = _quoted(message, "move them out of the target with ")
    assert subprocess.run(["sh", "-c", move], check=False).returncode == 0, move
    aside = sorted(p.name for p in (tmp_path / "target.future-dated").iterdir())
    assert aside == before
    full = shlex.split(_quoted(message, "then run "))
    assert full[:3] == ["cfbackup", "-c", str(path)], full
    assert cfbackup(*full[1:]).returncode == 0
    time.sleep(1.1)
    (src / "new file").write_text("after the clock was corrected\n")
    result = cfbackup("-c", path, "backup")
    assert result.returncode == 0, result
    assert len(_manifests(target)) == 1 and len(_manifests(target, "inc")) == 1
    assert not json.loads(cfbackup("-c", path, "status", "--json").stdout)["broken"]
    out = tmp_path / "out"
    assert cfbackup("-c", path, "restore", "main", out).returncode == 0
    assert (out / "new file").read_text() == "after the clock was corrected\n"


def test_cleanup_refuses_while_the_target_holds_sets_dated_after_now(
    tmp_path, make_config, cfbackup
):
    """An incremental made after the clock was corrected continues from the future-dated full
    and ends before it starts: duplicity calls it orphaned, and ``cleanup`` deleted it, the
    only backup of what changed since, which moving the future-dated sets aside keeps. cleanup
    (its dry run too) now refuses as backup and prune do, and runs once the sets are moved."""
    from duplicity import dup_time

    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    target = tmp_path / "target"
    ahead = int(time.time()) + 365 * 86400
    assert (
        cfbackup(
            "-c",
            make_config(
                source=src,
                target=f"file://{target}",
                encryption=PLAIN,
                extra=f'extra_options = ["--current-time={ahead}"]\n',
            ),
            "backup",
        ).returncode
        == 0
    )
    path = make_config(source=src, target=f"file://{target}", encryption=PLAIN)
    (src / "new file").write_text("changed after the clock was corrected\n")
    # what cfbackup before the future-set guard (or duplicity alone) made next: duplicity itself
    duplicity = str(Path(sys.executable).parent / "duplicity")  # the venv's
    made = subprocess.run(
        [duplicity, "incremental", "--no-encryption", "--archive-dir", str(tmp_path / "archive"),
         "--name", "main", str(src), f"file://{target}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    (inc,) = _manifests(target, "inc")
    assert inc.startswith(f"duplicity-inc.{dup_time.timetostring(ahead)}.to."), inc
    before = sorted(p.name for p in target.iterdir())

    for args in (("cleanup",), ("cleanup", "--dry-run")):
        result = cfbackup("-c", path, *args)
        assert result.returncode == ExitCode.REFUSED, result
        assert "cleanup refused: the target holds 2 backup set(s) dated after now" in (
            result.stderr
        ), result
        assert sorted(p.name for p in target.iterdir()) == before  # the incremental is kept

    move = _quoted(result.stderr, "move them out of the target with ")
    assert subprocess.run(["sh", "-c", move], check=False).returncode == 0, move
    assert inc in {p.name for p in (tmp_path / "target.future-dated").iterdir()}
    assert cfbackup("-c", path, "cleanup").returncode == 0


def test_the_way_out_moves_only_the_future_dated_sets_through_a_symlinked_target(
    tmp_path, make_config, cfbackup
):
    """A full made with the clock right, then an incremental made while it was a day ahead:
    the incremental's names hold the full's time too, and the printed fix (find by times)
    moved the full with it; through a symlinked target folder it moved nothing. The printed
    `mv` moves exactly the incremental's objects, the full stays, and the next backup runs."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    real = tmp_path / "real"
    real.mkdir()
    target = tmp_path / "target"
    target.symlink_to(real)  # the profile's target folder is a symlink
    path = make_config(source=src, target=f"file://{target}", encryption=PLAIN)
    assert cfbackup("-c", path, "backup").returncode == 0
    (full,) = _manifests(real)
    time.sleep(1.1)
    (src / "new file").write_text("made while the clock was ahead\n")
    ahead = make_config(
        source=src,
        target=f"file://{target}",
        encryption=PLAIN,
        extra=f'extra_options = ["--current-time={int(time.time()) + 86400}"]\n',
    )
    assert cfbackup("-c", ahead, "backup").returncode == 0
    (inc,) = _manifests(real, "inc")
    before = {p.name for p in real.iterdir()}
    path = make_config(source=src, target=f"file://{target}", encryption=PLAIN)  # clock right

    result = cfbackup("-c", path, "backup")
    assert result.returncode == ExitCode.REFUSED, result
    move = _quoted(result.stderr, "move them out of the target with ")
    assert subprocess.run(["sh", "-c", move], check=False).returncode == 0, move
    moved = {p.name for p in (tmp_path / "target.future-dated").iterdir()}
    stamp = inc.split(".")[1] + "." + inc.split(".")[2] + "." + inc.split(".")[3]
    assert moved and all(stamp in name for name in moved), moved
    assert {p.name for p in real.iterdir()} == before - moved  # the full stays
    assert _manifests(real) == [full]
    assert cfbackup("-c", path, "backup").returncode == 0
    assert _manifests(real) == [full] and len(_manifests(real, "inc")) == 1
