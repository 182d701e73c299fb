"""A drill compares the metadata a restore brings back (mode, set-uid bits, mtime to the
second, owner as root, a device's numbers) and samples empty folders, FIFOs and devices too:
a real backup of a tree full of them passes (no false alarm from symlinks, whose own mode and
mtime duplicity does not keep, from folders files are restored into, or from the root of a
one-path restore), however the drill splits its restores."""

from __future__ import annotations

import json
import os
import stat

import pytest

pytestmark = pytest.mark.swift


def _tree(src):
    (src / "etc" / "conf.d").mkdir(parents=True)
    conf = src / "etc" / "app.conf"
    conf.write_text("key = value\n")
    conf.chmod(0o600)
    (src / "etc" / "conf.d" / "x.conf").write_text("x\n")
    tool = src / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o4755)
    (src / "empty").mkdir()
    (src / "empty").chmod(0o2700)
    os.mkfifo(src / "fifo", 0o640)
    (src / "link").symlink_to("etc/app.conf")
    if os.geteuid() == 0:
        os.chown(conf, 1234, 4321)
        os.chown(src / "empty", 65534, 65534)
        os.mknod(src / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    for i, path in enumerate(["etc/app.conf", "tool", "empty", "fifo", "etc/conf.d", "etc"]):
        os.utime(src / path, (1_000_000_000 + i, 1_000_000_000 + i))
    os.utime(src / "link", (1_000_000_000, 1_000_000_000), follow_symlinks=False)


def test_a_drill_of_a_real_backup_checks_metadata_and_special_files(
    tmp_path, make_config, cfbackup
):
    src = tmp_path / "src"
    _tree(src)
    config = make_config(source=src, target=f"file://{tmp_path}/backup")
    assert cfbackup("-c", config, "backup").returncode == 0
    result = cfbackup("-c", config, "drill", "main", "--sample", "100%", "--json")
    assert result.returncode == 0, result
    files = {f["path"]: f for f in json.loads(result.stdout)["files"]}
    expected = {"etc/app.conf", "etc/conf.d/x.conf", "tool", "empty", "fifo", "link"}
    if os.geteuid() == 0:
        expected.add("null")
    assert set(files) == expected  # not the folders with files in them, not the root
    assert {p: f["reference"] for p, f in files.items() if f["status"] == "match"} == {
        **{p: "source" for p in ("etc/app.conf", "etc/conf.d/x.conf", "tool")},
        **{p: "metadata" for p in expected - {"etc/app.conf", "etc/conf.d/x.conf", "tool"}},
        "link": "link target",
    }
    for seed in range(6):  # one restore of one path each: its root is what is compared
        result = cfbackup(
            "-c", config, "drill", "main", "--sample", "1 files", "--seed", seed, "--json"
        )
        assert result.returncode == 0, result

    # a change of metadata only (an incremental) is what a later drill expects
    (src / "etc" / "app.conf").chmod(0o640)
    os.utime(src / "fifo", (1_200_000_000, 1_200_000_000))
    assert cfbackup("-c", config, "backup").returncode == 0
    result = cfbackup("-c", config, "drill", "main", "--sample", "100%", "--json")
    assert result.returncode == 0, result
