"""The core promise, end to end: the installed CLI backs up to a real Swift with real duplicity
and gpg, and what comes back is byte-identical (content, modes, symlinks, empty dirs)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import pytest
from support.cli import BIN
from support.trees import assert_same_tree, make_awkward_tree

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift


def test_full_incremental_restore_latest_and_point_in_time(tmp_path, make_config, cfbackup):
    src = make_awkward_tree(tmp_path / "src")
    config = make_config(source=src)
    first = cfbackup("-c", config, "backup")
    assert first.returncode == 0, first
    assert "backup of main done" in first.stdout
    before = tmp_path / "before"
    shutil.copytree(src, before, symlinks=True)
    time.sleep(1.1)  # duplicity's times have one-second resolution
    (src / "plain.txt").write_text("changed after the full\n")
    (src / "new file.txt").write_text("added later\n")
    (src / "zero bytes").unlink()
    (src / "run.sh").chmod(0o700)
    between = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
    time.sleep(1.1)
    second = cfbackup("-c", config, "backup")
    assert second.returncode == 0, second

    status = cfbackup("-c", config, "status", "--json")
    assert status.returncode == 0, status
    assert '"last_incremental": null' not in status.stdout

    latest = tmp_path / "latest"
    restored = cfbackup("-c", config, "restore", "main", latest)
    assert restored.returncode == 0, restored
    assert_same_tree(src, latest)

    old = tmp_path / "old"
    restored = cfbackup("-c", config, "restore", "main", old, "--time", between)
    assert restored.returncode == 0, restored
    assert_same_tree(before, old)


@pytest.mark.parametrize("prefetch", [4, 0])
def test_a_time_before_the_oldest_backup_is_refused_before_anything_runs(
    tmp_path, make_config, cfbackup, prefetch
):
    """duplicity given a time before its oldest chain restores (lists, verifies) that chain: a
    state newer than the one asked for ("as of T", exit 0). With the prefetch on it stepped
    aside (no sets at T), with it off duplicity read the target itself: both must refuse."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src, extra=f"restore_prefetch = {prefetch}\n")
    assert cfbackup("-c", config, "backup").returncode == 0
    target = tmp_path / "before the break-in"
    for command in (("restore", "main", target), ("list", "main"), ("verify", "main")):
        result = cfbackup("-c", config, *command, "--time", "2020-01-01")
        assert result.returncode == ExitCode.REFUSED, result
        assert result.stderr.count("\n") == 1, result
        assert "--time 2020-01-01 is before the oldest backup of profile main" in result.stderr
        assert f"cfbackup -c {config} status main" in result.stderr, result
        assert not target.exists()
    # the time the sentence names is one --time reads, and it restores the oldest backup
    oldest = re.search(r"give a --time at or after (\S+),", result.stderr)[1]
    restored = cfbackup("-c", config, "restore", "main", target, "--time", oldest)
    assert restored.returncode == 0, restored
    assert_same_tree(src, target)


def test_restore_one_path_verify_and_difference(tmp_path, make_config, cfbackup):
    src = make_awkward_tree(tmp_path / "src", big_mb=1)
    config = make_config(source=src)
    assert cfbackup("-c", config, "backup").returncode == 0

    one = tmp_path / "one"
    result = cfbackup("-c", config, "restore", "main", one, "--path", "dir one/nested")
    assert result.returncode == 0, result
    assert_same_tree(src / "dir one" / "nested", one / "dir one" / "nested")
    assert sorted(p.name for p in one.iterdir()) == ["dir one"]

    result = cfbackup(
        "-c",
        config,
        "restore",
        "main",
        tmp_path / "file",
        "--path",
        str(src / "naïve ünïcode — ✓.txt"),
    )
    assert result.returncode == 0, result
    assert (tmp_path / "file" / "naïve ünïcode — ✓.txt").read_text() == "non-ASCII name\n"

    assert cfbackup("-c", config, "verify").returncode == 0
    assert cfbackup("-c", config, "verify", "--compare-data").returncode == 0
    time.sleep(1.1)
    (src / "plain.txt").write_text("changed locally\n")
    result = cfbackup("-c", config, "verify", "--compare-data")
    assert result.returncode == ExitCode.VERIFY_DIFFERENCES, result
    assert "plain.txt" in result.stderr


def test_restore_refuses_non_empty_target_without_force(tmp_path, make_config, cfbackup):
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src)
    assert cfbackup("-c", config, "backup").returncode == 0
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep me").write_text("precious")
    result = cfbackup("-c", config, "restore", "main", target)
    assert result.returncode == ExitCode.RESTORE_TARGET, result
    assert "--force" in result.stderr and "not empty" in result.stderr
    assert (target / "keep me").read_text() == "precious"
    assert sorted(p.name for p in target.iterdir()) == ["keep me"]
    forced = cfbackup("-c", config, "restore", "main", target, "--force")
    assert forced.returncode == 0, forced
    assert (target / "plain.txt").read_text() == "plain file\n"


def test_list_plain_and_json(tmp_path, make_config, cfbackup):
    import json

    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src)
    assert cfbackup("-c", config, "backup").returncode == 0
    listing = cfbackup("-c", config, "list", "--json")
    assert listing.returncode == 0, listing
    paths = {entry["path"]: entry["type"] for entry in json.loads(listing.stdout)}
    assert paths["naïve ünïcode — ✓.txt"] == "reg"
    assert paths["link to plain"] == "sym"
    assert paths["empty dir/also empty"] == "dir"
    plain = cfbackup("-c", config, "list")
    assert "with space.txt" in plain.stdout


def test_include_exclude_follow_the_old_rule(tmp_path, make_config, cfbackup):
    import json

    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    extra = (
        f'include = ["{src}/dir one", "{src}/plain.txt"]\n'
        f'exclude = ["{src}/dir one/nested/deeper"]\n'
    )
    config = make_config(source=src, extra=extra)
    assert cfbackup("-c", config, "backup").returncode == 0
    listing = json.loads(cfbackup("-c", config, "list", "--json").stdout)
    paths = sorted(entry["path"] for entry in listing)
    assert paths == [".", "dir one", "dir one/nested", "plain.txt"]


def test_dry_run_uploads_nothing(tmp_path, make_config, cfbackup, local_swift, container):
    from swiftclient import client

    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src)
    result = cfbackup("-c", config, "backup", "--dry-run")
    assert result.returncode == 0, result
    assert "dry run" in result.stdout
    user, key = local_swift.users["admin"]
    conn = client.Connection(authurl=local_swift.auth_url, user=user, key=key, auth_version="1")
    try:
        objects = conn.get_container(container)[1]
    except client.ClientException as error:
        assert error.http_status == 404
        objects = []
    assert objects == []
    # nothing reached the target: status shows no last backup, the history says it was a dry run
    status = json.loads(cfbackup("-c", config, "status", "--json").stdout)
    assert status["last_success"] is None, status["last_success"]
    (row,) = [r for r in json.loads(cfbackup("-c", config, "history", "--json").stdout)
              if r["action"] == "backup"]  # fmt: skip
    assert row["result"] == "success" and row["stats"]["dry_run"] is True, row


def test_prune_keeps_the_newest_full_chains_and_cleanup_runs(tmp_path, make_config, cfbackup):
    import json

    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(
        source=src, more="[profiles.main.retention]\nkeep_full = 1\nafter_backup = false\n"
    )
    for _ in range(2):
        assert cfbackup("-c", config, "backup", "--full").returncode == 0
        time.sleep(1.1)
    chains = json.loads(cfbackup("-c", config, "status", "--json").stdout)["chains"]
    assert len(chains) == 2
    result = cfbackup("-c", config, "prune")
    assert result.returncode == 0, result
    assert "remove-all-but-n-full 1" in result.stdout
    chains = json.loads(cfbackup("-c", config, "status", "--json").stdout)["chains"]
    assert len(chains) == 1
    assert cfbackup("-c", config, "cleanup").returncode == 0
    out = tmp_path / "out"
    assert cfbackup("-c", config, "restore", "main", out).returncode == 0
    assert_same_tree(src, out)


def test_file_target_round_trip(tmp_path, make_config, cfbackup):
    src = make_awkward_tree(tmp_path / "src", big_mb=1)
    config = make_config(source=src, target=f"file://{tmp_path}/target dir")
    assert cfbackup("-c", config, "backup").returncode == 0
    assert any((tmp_path / "target dir").glob("duplicity-full.*.manifest.gpg"))
    out = tmp_path / "out"
    assert cfbackup("-c", config, "restore", "main", out).returncode == 0
    assert_same_tree(src, out)
    assert cfbackup("-c", config, "verify", "--compare-data").returncode == 0


def test_recovery_kit_holds_config_and_keys(tmp_path, make_config, cfbackup, gpg_keys):
    import io
    import subprocess
    import tarfile

    from support.cli import KEY_PASSPHRASE

    enc = (
        f'mode = "pubkey"\nencrypt_keys = ["{gpg_keys["fingerprint"]}"]\n'
        f'gpg_home = "{gpg_keys["home"]}"\npassphrase_env = "T_KEY_PASSPHRASE"\n'
    )
    config = make_config(encryption=enc)
    kit_dir = tmp_path / "kit"
    result = cfbackup(
        "-c", config, "recovery-kit", "export", kit_dir, env={"T_KEY_PASSPHRASE": KEY_PASSPHRASE}
    )
    assert result.returncode == 0, result
    (kit,) = kit_dir.glob("*.tar.gpg")
    assert oct(kit.stat().st_mode & 0o777) == "0o600"
    plain = subprocess.run(
        [
            "gpg",
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase-fd",
            "0",
            "--decrypt",
            str(kit),
        ],
        input=KEY_PASSPHRASE.encode(),
        capture_output=True,
        env={"GNUPGHOME": gpg_keys["home"], "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        names = set(tar.getnames())
        keys = tar.extractfile("keys.asc").read().decode()
    assert names == {"config.toml", "keys.asc", "README.txt"}
    assert "BEGIN PGP PUBLIC KEY BLOCK" in keys and "BEGIN PGP PRIVATE KEY BLOCK" in keys


def test_retention_after_backup_runs_only_when_it_can_remove(tmp_path, make_config, cfbackup):
    """The retention run after a backup is skipped while the local archive shows no more full
    chains than kept, and still removes the old chain as soon as there is one."""
    import json

    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src, more="[profiles.main.retention]\nkeep_full = 1\n")
    first = cfbackup("-c", config, "--verbose", "backup")
    assert first.returncode == 0, first
    assert "remove-all-but-n-full 1 skipped: 1 full backup(s)" in first.stderr
    time.sleep(1.1)
    second = cfbackup("-c", config, "--verbose", "backup", "--full")
    assert second.returncode == 0, second
    assert "skipped" not in second.stderr
    assert "retention: duplicity remove-all-but-n-full 1" in second.stderr
    chains = json.loads(cfbackup("-c", config, "status", "--json").stdout)["chains"]
    assert len(chains) == 1
    out = tmp_path / "out"
    assert cfbackup("-c", config, "restore", "main", out).returncode == 0
    assert_same_tree(src, out)


def test_a_restore_into_the_empty_folder_it_is_typed_in(tmp_path, make_config, cli_env):
    """``mkdir /srv/restore && cd /srv/restore && cfbackup restore web .``: duplicity refuses to
    restore into the folder it runs in ("Restore '/srv/restore' is not empty or is
    current_dir"), and the restore failed with exit 7. It restores there now, the folder
    itself kept (the shell's current folder stays valid), and is refused, as anywhere, once
    the folder is not empty."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    target = f"file://{tmp_path}/backups"
    config = make_config(source=src, target=target, encryption='mode = "none"')
    here = tmp_path / "restore"
    here.mkdir()

    def cfbackup(*args):
        done = subprocess.run([str(BIN / "cfbackup"), "-c", str(config), *args], cwd=here,
                              env=cli_env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert "Traceback" not in done.stderr, done.stderr
        return done

    assert cfbackup("backup").returncode == 0
    inode = here.stat().st_ino
    done = cfbackup("restore", "main", ".")
    assert done.returncode == 0, done.stderr
    assert here.stat().st_ino == inode
    assert_same_tree(src, here)
    done = cfbackup("restore", "main", ".")
    assert done.returncode == ExitCode.RESTORE_TARGET, done.stderr
    assert "is not empty" in done.stderr, done.stderr


def test_a_restore_into_the_current_folder_killed_before_it_finished_can_be_run_again(
    tmp_path, make_config, cli_env
):
    """A restore into '.' killed with -9 (the OOM killer, a power cut) leaves only its hidden
    staging folder (``.cfbackup-restore-PID-*``) there; the retry said "is not empty" about a
    folder where ``ls`` shows nothing, without naming it. The retry removes it (it holds only
    what the dead restore copied from the backup, which the retry restores again), says so,
    and restores."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    target = f"file://{tmp_path}/backups"
    config = make_config(source=src, target=target, encryption='mode = "none"')
    here = tmp_path / "restore"
    left = here / ".cfbackup-restore-99999999-x1y2" / "restored"
    left.mkdir(parents=True)
    (left / "plain.txt").write_text("half restored\n")
    run = [str(BIN / "cfbackup"), "-c", str(config)]
    assert subprocess.run([*run, "backup"], env=cli_env, timeout=300).returncode == 0
    done = subprocess.run([*run, "restore", "main", "."], cwd=here, env=cli_env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"removed {left.parent}, left by a restore that did not finish" in done.stderr
    assert_same_tree(src, here)
