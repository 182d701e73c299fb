"""A remote volume changed or deleted behind cfbackup's back: verify and restore fail and name
the volume, status marks the backup broken (a deleted volume), nothing ends in a traceback."""

from __future__ import annotations

import json

import pytest
from faultkit import error_line, write_tree

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.faults, pytest.mark.swift]


def test_corrupted_then_deleted_volume(make_setup, tmp_path):
    setup = make_setup()
    write_tree(setup.source, mb=2)
    assert setup.run("backup").returncode == 0
    volumes = sorted(setup.volumes("full"), key=lambda n: int(n.split(".vol")[1].split(".")[0]))
    assert len(volumes) >= 3, volumes
    corrupt, gone = volumes[1], volumes[2]
    conn = setup.connection()

    data = bytearray(conn.get_object(setup.container, corrupt)[1])
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # same size, other bytes
    conn.put_object(setup.container, corrupt, bytes(data))
    result = setup.run("verify")  # a damaged volume is what verify is there to find: 8
    assert result.returncode == ExitCode.VERIFY_DIFFERENCES, result
    assert corrupt in error_line(result) and "is corrupt" in error_line(result)
    out = tmp_path / "restored"
    result = setup.run("restore", out)
    assert result.returncode == ExitCode.DUPLICITY, result
    assert corrupt in error_line(result)
    assert not out.exists(), "a failed restore left a partial tree where there was nothing"

    conn.delete_object(setup.container, gone)
    volume = "vol" + gone.split(".vol")[1].split(".")[0] + ".difftar"
    status = setup.run("status", "--json")
    assert status.returncode == 0, status
    report = json.loads(status.stdout)
    assert report["broken"], report
    assert report["missing_volumes"][0]["expected"] == len(volumes), report
    result = setup.run("verify")
    assert result.returncode == ExitCode.VERIFY_DIFFERENCES, result
    assert volume in error_line(result) and "missing" in error_line(result)

    # the same backup read through the compatibility script (its own cache, synced from Swift)
    legacy = make_setup("dt-cf-backup", source=setup.source)
    legacy.config.write_text(legacy.config.read_text().replace(legacy.container, setup.container))
    result = legacy.run("restore", tmp_path / "legacy-restored")
    assert result.returncode == ExitCode.DUPLICITY, result
    assert volume in error_line(result)
    setup.assert_history(ExitCode.VERIFY_DIFFERENCES, ExitCode.DUPLICITY)  # verify, restore
    legacy.assert_history(ExitCode.DUPLICITY)
