"""Retention never removes what the newest backup does not hold: a partial backup, a missing
include root, a failed retention after a good upload, a manifest lost at the target (real
Swift, duplicity, gpg). Deletes Swift refuses or cannot confirm: test_retention_unconfirmed.py;
what prune's dry run and keep_all say: test_prune_dry_run.py."""

from __future__ import annotations

import json
import os
import subprocess
import time

from support.cli import BIN, CliResult
from support.stores import full_backups, object_names
from support.trees import assert_same_tree, make_awkward_tree

from cfbackup import chains
from cfbackup.errors import ExitCode

# root without the capabilities that read any file: permission denied for real (as in
# tests/faults/test_keys_and_permissions.py)
NO_DAC = ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")


def _without_dac(cli_env, *args) -> CliResult:
    completed = subprocess.run(
        [*NO_DAC, str(BIN / "cfbackup"), *map(str, args)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    return CliResult(completed)


def test_a_partial_full_backup_removes_no_older_backup(
    tmp_path, make_config, cfbackup, cli_env, local_swift, container
):
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src, more="[profiles.main.retention]\nkeep_full = 1\n")
    closed = src / "closed dir"
    closed.mkdir()
    (closed / "inside").write_text("only in the first full\n")
    assert cfbackup("-c", config, "backup").returncode == 0
    time.sleep(1.1)
    os.chown(closed, 65534, 65534)
    closed.chmod(0o700)

    result = _without_dac(cli_env, "-c", config, "backup", "--full")
    assert result.returncode == ExitCode.PARTIAL, result
    assert "1 file(s) could not be read" in result.stderr
    assert "retention was skipped: it runs after the next complete backup" in result.stderr
    assert full_backups(object_names(local_swift, container), "host1/") == 2  # older full kept

    # a dry run names the older chain, and that prune itself would be refused
    result = cfbackup("-c", config, "prune", "--dry-run")
    assert result.returncode == 0, result
    assert "dry run: prune would remove 1 backup set(s)" in result.stdout, result
    assert "prune itself would be refused now: the newest full backup of main is partial" in (
        result.stdout
    )
    assert full_backups(object_names(local_swift, container), "host1/") == 2

    # an explicit prune refuses too while the newest full is the partial one
    result = cfbackup("-c", config, "prune")
    assert result.returncode == ExitCode.REFUSED, result
    assert "partial" in result.stderr and f"-c {config} backup main" in result.stderr
    assert full_backups(object_names(local_swift, container), "host1/") == 2

    # a complete backup (an incremental that now holds the files) lets retention run again
    result = cfbackup("-c", config, "backup")
    assert result.returncode == 0, result
    assert full_backups(object_names(local_swift, container), "host1/") == 1
    out = tmp_path / "out"
    assert cfbackup("-c", config, "restore", "main", out).returncode == 0
    assert (out / "closed dir" / "inside").read_text() == "only in the first full\n"


def _split_tree(root):
    make_awkward_tree(root / "etc", big_mb=0)
    make_awkward_tree(root / "srv" / "www", big_mb=0, seed=11)
    return root


def test_a_missing_include_root_fails_its_chain_and_keeps_its_backups(
    tmp_path, make_config, cfbackup, local_swift, container
):
    src = _split_tree(tmp_path / "src")
    extra = f'include = ["{src}/etc", "{src}/srv/www"]\nsplit_chains = true\n'
    config = make_config(source=src, extra=extra, more="[profiles.main.retention]\nkeep_full = 1\n")
    assert cfbackup("-c", config, "backup").returncode == 0
    time.sleep(1.1)
    www = src / "srv" / "www"
    www.rename(src / "srv" / "www.unmounted")

    result = cfbackup("-c", config, "backup", "--full")
    assert result.returncode == ExitCode.PARTIAL, result
    assert f"{www} is missing or not mounted: mount it, or remove it from include" in result.stderr
    names = object_names(local_swift, container)
    assert full_backups(names, f"host1/{chains.slug_of('srv/www')}/") == 1  # its backup is kept
    assert full_backups(names, f"host1/{chains.slug_of('etc')}/") == 1  # the other chain: pruned

    (src / "srv" / "www.unmounted").rename(www)
    out = tmp_path / "out"
    assert cfbackup("-c", config, "restore", "main", out).returncode == 0
    assert_same_tree(www, out / "srv" / "www")


def _with_disk(cli_env, mount_point, files, *args) -> CliResult:
    """``cfbackup ARGS`` in a mount namespace of its own where a tmpfs holding ``files`` (a
    folder copied in) is mounted on ``mount_point``: out of it, the folder is empty again, as a
    disk that did not mount leaves its mount point."""
    script = 'mount -t tmpfs cfbackup-test "$1" && cp -a "$2"/. "$1"/ && shift 2 && exec "$@"'
    completed = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
         str(mount_point), str(files), str(BIN / "cfbackup"), *map(str, args)],
        env=cli_env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return CliResult(completed)


def test_an_include_root_whose_disk_is_not_mounted_keeps_its_backups(
    tmp_path, make_config, cfbackup, cli_env, local_swift, container
):
    """An unmounted disk leaves its mount point as an empty folder: it exists, so it was backed
    up empty (exit 0) and retention removed the root's real backups. A folder that was a mount
    point at the last backup and is empty now is left out, until it is mounted again."""
    src = _split_tree(tmp_path / "src")
    www = src / "srv" / "www"
    disk = tmp_path / "www-disk"
    www.rename(disk)
    www.mkdir()
    extra = f'include = ["{src}/etc", "{www}"]\nsplit_chains = true\n'
    config = make_config(source=src, extra=extra, more="[profiles.main.retention]\nkeep_full = 1\n")
    mounted = _with_disk(cli_env, www, disk, "-c", config, "backup")
    assert mounted.returncode == 0, mounted
    time.sleep(1.1)

    for _ in range(2):  # remembered: the next backup says it again
        result = cfbackup("-c", config, "backup", "--full")
        assert result.returncode == ExitCode.PARTIAL, result
        assert (
            f"{www} was a mount point at the last backup and is now an empty folder (its disk "
            "is not mounted): mount it and run the backup again"
        ) in result.stderr, result
        names = object_names(local_swift, container)
        assert full_backups(names, f"host1/{chains.slug_of('srv/www')}/") == 1  # its backup is kept

    again = _with_disk(cli_env, www, disk, "-c", config, "backup")
    assert again.returncode == 0, again
    out = tmp_path / "out"
    assert cfbackup("-c", config, "restore", "main", out).returncode == 0
    assert_same_tree(disk, out / "srv" / "www")


def test_a_source_whose_disk_is_not_mounted_is_not_backed_up(
    tmp_path, make_config, cfbackup, cli_env
):
    src = tmp_path / "src"
    disk = make_awkward_tree(tmp_path / "disk", big_mb=0)
    src.mkdir()
    config = make_config(source=src)
    assert _with_disk(cli_env, src, disk, "-c", config, "backup").returncode == 0
    result = cfbackup("-c", config, "backup")
    assert result.returncode == ExitCode.REFUSED, result
    assert f"nothing was backed up: {src} was a mount point at the last backup" in result.stderr
    # verify --compare-data said every file was missing (exit 8): the disk only needs mounting
    compare = cfbackup("-c", config, "verify", "--compare-data")
    assert compare.returncode == ExitCode.REFUSED, compare
    assert f"{src} of profile main was a mount point at the last backup" in compare.stderr
    assert f"-c {config} verify main --read-data." in compare.stderr, compare
    mounted = _with_disk(cli_env, src, disk, "-c", config, "verify", "--compare-data")
    assert mounted.returncode == 0, mounted


def test_a_missing_plain_include_makes_the_backup_partial_and_keeps_its_backups(
    tmp_path, make_config, cfbackup, local_swift, container
):
    """Without split_chains, an include moved away was a warning and exit 0, and the full
    backup's retention then removed the only backup holding its files: now it is named, the
    backup exits 9 and no retention runs, as for a split root."""
    src = tmp_path / "src"
    for name in ("a", "b"):
        (src / name).mkdir(parents=True)
        (src / name / "f").write_text(f"in {name}\n")
    extra = f'include = ["{src}/a", "{src}/b"]\n'
    config = make_config(source=src, extra=extra, more="[profiles.main.retention]\nkeep_full = 1\n")
    assert cfbackup("-c", config, "backup").returncode == 0
    time.sleep(1.1)
    first = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
    time.sleep(1.1)  # the next full in the same second as `first` would be the one restored
    (src / "b").rename(tmp_path / "b moved")
    for _ in range(2):  # named on every backup
        result = cfbackup("-c", config, "backup", "--full")
        assert result.returncode == ExitCode.PARTIAL, result
        assert f"{src}/b is missing or not mounted: mount it, or remove it from include" in (
            result.stderr
        ), result
        assert "retention was skipped: it runs after the next complete backup" in result.stderr
        time.sleep(1.1)
    assert full_backups(object_names(local_swift, container), "host1/") == 3  # the first kept
    out = tmp_path / "out"
    result = cfbackup("-c", config, "restore", "main", out, "--path", "b/f", "--time", first)
    assert result.returncode == 0, result
    assert (out / "b" / "f").read_text() == "in b\n"


def test_a_failed_retention_keeps_the_backup_and_its_post_hooks(tmp_path, make_config, cfbackup):
    """duplicity's retention command fails (here a sitecustomize stops every duplicity
    remove-older-than; a time duplicity cannot read did it once, and is now refused when the
    config is loaded): the backup is at the target, retention fails after it."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    log = tmp_path / "hooks.log"
    more = (
        '[profiles.main.retention]\nremove_older_than = "1s"\n'
        f'[profiles.main.command_hooks]\nafter_backup = ["echo after_backup >> {log}"]\n'
    )
    config = make_config(source=src, more=more)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\n"
        "if 'remove-older-than' in sys.argv:\n"
        "    sys.stderr.write('remove-older-than refused by the test\\n')\n"
        "    sys.exit(23)\n"
    )
    env = {"PYTHONPATH": str(site)}
    assert cfbackup("-c", config, "backup", env=env).returncode == 0  # one full: nothing to remove
    time.sleep(1.1)
    result = cfbackup("-c", config, "backup", "--full", env=env)
    assert result.returncode == ExitCode.RETENTION_FAILED, result
    assert "backup completed; retention failed:" in result.stderr
    assert f"cfbackup -c {config} prune main" in result.stderr
    assert log.read_text().splitlines() == ["after_backup", "after_backup"]
    status = json.loads(cfbackup("-c", config, "status", "--json").stdout)
    assert len(status["chains"]) == 2
    assert status["last_success"]["exit_code"] == ExitCode.RETENTION_FAILED


def test_two_profiles_on_one_target_are_refused_when_the_config_is_loaded(
    tmp_path, make_config, cfbackup, container, local_swift
):
    """Two profiles at one target (written differently), or one at a split profile's chain
    prefix, deleted each other's backups: `check` said ready, the
    second backup was refused as a changed source with the advice to run --full, and that
    full's retention removed the first profile's only backup. Refused at load, exit 3."""
    other_src = tmp_path / "other"
    other_src.mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_text("web\n")
    target = tmp_path / "target"
    second = (
        f'[profiles.dbB]\nsource = "{other_src}"\ntarget = "file://{tmp_path}//./target/"\n'
        '[profiles.dbB.encryption]\nmode = "none"\n'
    )
    config = make_config(target=f"file://{target}", encryption='mode = "none"', more=second)
    for command in (("check",), ("backup", "main"), ("backup", "dbB", "--full")):
        result = cfbackup("-c", config, *command)
        assert result.returncode == ExitCode.CONFIG, result
        assert f"profile main's target file://{target} and profile dbB's target " \
            f"file://{tmp_path}//./target/ are the same place, so each one's full backups and " \
            "retention would delete the other's backups: give each profile its own container " \
            "or prefix" in result.stderr, result  # fmt: skip
    assert not target.exists()

    slug = chains.slug_of("db")  # where a split profile's chain of /db goes
    extra = f'split_chains = true\ninclude = ["{tmp_path}/src/db"]\n'
    more = (
        f'[profiles.dbB]\nsource = "{other_src}"\ntarget = "swift://{container}/host1/{slug}"\n'
        f'[profiles.dbB.swift]\nauth_url = "{local_swift.auth_url}"\n'
        f'username = "{local_swift.users["admin"][0]}"\npassword_env = "T_SWIFT_KEY"\n'
    )
    config = make_config(extra=extra, more=more, name="split.toml")
    result = cfbackup("-c", config, "check")
    assert result.returncode == ExitCode.CONFIG, result
    assert f"profile dbB's target swift://{container}/host1/{slug} is where profile main " \
        "keeps its chain of /db (split_chains), so " in result.stderr, result  # fmt: skip


def test_a_manifest_lost_at_the_target_is_kept_and_no_incremental_goes_onto_its_chain(
    tmp_path, make_config, cfbackup
):
    """A full backup whose manifest is gone from the target (its archive-dir copy left): the
    next backup exited 0 with an incremental onto a chain that cannot be restored, and
    duplicity deleted the last copy of the manifest ("not authoritative at backend"). Now the
    incremental is refused (5) and the copy is kept aside, by the other commands too."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("one\n")
    target = tmp_path / "target"
    config = make_config(source=src, target=f"file://{target}")
    assert cfbackup("-c", config, "backup").returncode == 0
    time.sleep(1.1)
    assert cfbackup("-c", config, "backup", "--full").returncode == 0
    time.sleep(1.1)
    (src / "f").write_text("two\n")
    assert cfbackup("-c", config, "backup").returncode == 0
    newest_full = sorted(target.glob("duplicity-full.*.manifest.gpg"))[-1]
    newest_full.unlink()
    local = tmp_path / "archive" / "main" / newest_full.name.removesuffix(".gpg")
    original = local.read_bytes()
    kept = tmp_path / "state" / "kept-manifests" / "main" / local.name
    before = sorted(p.name for p in target.iterdir())

    time.sleep(1.1)
    result = cfbackup("-c", config, "backup")
    assert result.returncode == ExitCode.REFUSED, result
    assert "has 1 volume(s) but no manifest at file://" in result.stderr, result
    assert f"is kept at {kept}; an incremental onto that chain could not be restored " \
        f"either: the full backup of " in result.stderr, result  # fmt: skip
    assert f"but its manifest is kept at {kept}: put it back with encrypt {kept} with the " \
        f"profile's gpg key or passphrase and put it at file://{target} as {local.name}.gpg " \
        f"(docs/reliability.md, lost manifests), then run cfbackup -c {config} backup main " \
        f"again; or run cfbackup -c {config} backup main --full to start a new chain " \
        "(retention keeps the old one while its manifest is not back)." in result.stderr, \
        result  # fmt: skip
    assert sorted(p.name for p in target.iterdir()) == before  # nothing uploaded
    assert kept.read_bytes() == original
    kept.unlink()

    result = cfbackup("-c", config, "list", "main")  # duplicity syncs the archive dir here too
    assert f"is kept at {kept}" in result.stderr, result
    assert kept.read_bytes() == original


def test_a_set_whose_manifest_only_the_kept_copy_holds_is_neither_cleaned_up_nor_retired(
    tmp_path, make_config, cfbackup
):
    """A full whose manifest was lost at the target, its copy kept aside: duplicity takes the
    set for an incomplete one, so `cleanup` deleted its volumes (exit 0, "leftovers removed")
    and the `backup --full` the refusal names let keep_full = 1 delete the chain the kept
    manifest restores. Now retention is skipped after that full, cleanup and prune refuse (5)
    naming the put-back command, and that command, run as printed, makes the chain restorable
    by duplicity itself."""
    import sys
    from pathlib import Path

    from duplicity import dup_time

    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("one\n")
    target = tmp_path / "target"
    config = make_config(
        source=src,
        target=f"file://{target}",
        encryption='mode = "none"',
        more="[profiles.main.retention]\nkeep_full = 1\n",
    )
    assert cfbackup("-c", config, "backup").returncode == 0
    time.sleep(1.1)
    (src / "f").write_text("two\n")
    assert cfbackup("-c", config, "backup").returncode == 0
    (old_full,) = target.glob("duplicity-full.*.manifest")
    (inc,) = target.glob("duplicity-inc.*.manifest")
    old_full.unlink()
    kept = tmp_path / "state" / "kept-manifests" / "main" / old_full.name
    put_back = f"put it back with `cp -- {kept} {target}/{old_full.name}`"

    result = cfbackup("-c", config, "backup")
    assert result.returncode == ExitCode.REFUSED and put_back in result.stderr, result
    time.sleep(1.1)
    (src / "f").write_text("three\n")
    result = cfbackup("-c", config, "backup", "--full")
    assert result.returncode == 0, result
    assert "retention skipped: the full backup of " in result.stderr, result
    assert put_back in result.stderr, result
    old_volumes = sorted(target.glob(old_full.name.replace(".manifest", ".vol*")))
    assert old_volumes and inc.exists()  # the old chain is still there
    before = sorted(p.name for p in target.iterdir())
    for args in (("cleanup",), ("prune",)):
        result = cfbackup("-c", config, *args)
        assert result.returncode == ExitCode.REFUSED, result
        assert f"{args[0]} refused: the full backup of " in result.stderr, result
        assert put_back in result.stderr, result
        assert sorted(p.name for p in target.iterdir()) == before, args

    command = result.stderr.split(put_back.split("`")[0] + "`", 1)[1].split("`", 1)[0]
    assert subprocess.run(["sh", "-c", command], check=False).returncode == 0, command
    duplicity = str(Path(sys.executable).parent / "duplicity")  # the venv's
    out = tmp_path / "out"
    when = dup_time.stringtotime(inc.name.split(".")[3])
    restored = subprocess.run(
        [duplicity, "restore", "--no-encryption", "--archive-dir", str(tmp_path / "dup-archive"),
         "--time", str(int(when)), f"file://{target}", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    assert (out / "f").read_text() == "two\n"
    assert cfbackup("-c", config, "cleanup").returncode == 0
    assert sorted(p.name for p in target.iterdir()) == sorted([*before, old_full.name])
