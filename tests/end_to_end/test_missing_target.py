"""Commands that only read or remove backups, on a target that does not exist (a typo in the
target, a container never made): nothing is created (duplicity would make the folder or the
container), the message names the target and the fix, prune and cleanup say there was nothing
to do; status keeps saying "none"."""

from __future__ import annotations

import pytest
from support.stores import admin_connection

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift

READERS = (("list", "main"), ("verify", "main"), ("verify", "main", "--read-data"))


def _error(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("cfbackup: error:")]
    assert len(lines) == 1, result
    return lines[0].removeprefix("cfbackup: error: ")


def _check(cfbackup, config, target, tmp_path, why, gone) -> None:
    """Every command on ``target`` (which holds no backup), then ``gone()`` (nothing made)."""
    fix = f"check profiles.main.target in {config}, or run cfbackup -c {config} backup main"
    for args in (*READERS, ("restore", "main", tmp_path / "restored")):
        result = cfbackup("-c", config, *args)
        assert result.returncode == ExitCode.REFUSED, (args, result)
        assert _error(result) == (
            f"no backup at {target} ({why}; nothing was created): {fix} to make the first backup."
        ), (args, result)
        assert gone(), (args, "the target was created")
    assert not (tmp_path / "restored").exists()
    for command, word in (("prune", "prune"), ("cleanup", "clean up")):
        for dry in ((), ("--dry-run",)):
            result = cfbackup("-c", config, command, "main", *dry)
            assert result.returncode == 0, result
            assert (
                f"nothing to {word}: no backup at {target} ({why}; nothing was created); check "
                f"profiles.main.target in {config} if there should be one"
            ) in result.stdout, result
            assert "retention applied" not in result.output and "removed" not in result.output
            assert gone(), (command, dry, "the target was created")
    result = cfbackup("-c", config, "status", "main")
    assert result.returncode == 0, result
    assert "last full:        none" in result.stdout, result
    assert gone(), ("status", "the target was created")


def test_a_swift_container_that_does_not_exist_is_not_created(
    tmp_path, make_config, cfbackup, local_swift, container
):
    from swiftclient import client

    config = make_config(encryption='mode = "none"')
    conn = admin_connection(local_swift)

    def gone() -> bool:
        try:
            conn.head_container(container)
        except client.ClientException as error:
            return error.http_status == 404
        return False

    target = f"swift://{container}/host1"
    _check(cfbackup, config, target, tmp_path, f"container {container} does not exist", gone)


def test_a_mistyped_file_target_is_not_created(tmp_path, make_config, cfbackup):
    folder = tmp_path / "bakcups" / "web"
    config = make_config(encryption='mode = "none"', target=f"file://{folder}")
    _check(
        cfbackup,
        config,
        f"file://{folder}",
        tmp_path,
        "the folder does not exist",
        lambda: not (tmp_path / "bakcups").exists(),
    )


def test_an_empty_target_names_it_and_the_fix(tmp_path, make_config, cfbackup):
    """The folder is there, no backup in it: duplicity's "no backup chains found" (exit 30)
    named neither the target nor a command that runs; prune and cleanup said "retention
    applied" and "leftovers ... removed"."""
    folder = tmp_path / "backups" / "web"
    folder.mkdir(parents=True)
    config = make_config(encryption='mode = "none"', target=f"file://{folder}")
    result = cfbackup("-c", config, "list", "main")
    assert result.returncode == ExitCode.REFUSED, result
    assert _error(result) == (
        f"no backup at file://{folder}: check profiles.main.target in {config}, or run "
        f"cfbackup -c {config} backup main to make the first backup (duplicity exit code 30)."
    ), result
    for command, word in (("prune", "prune"), ("cleanup", "clean up")):
        result = cfbackup("-c", config, command, "main")
        assert result.returncode == 0, result
        assert (
            f"nothing to {word}: no backup at file://{folder} (it holds no backup of profile "
            "main)"
        ) in result.stdout, result
    assert list(folder.iterdir()) == []
    (tmp_path / "src" / "f").write_text("x")
    result = cfbackup("-c", config, "backup", "main")
    assert result.returncode == 0, result
    result = cfbackup("-c", config, "prune", "main")
    assert result.returncode == 0 and "retention applied" in result.stdout, result
