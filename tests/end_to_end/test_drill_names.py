"""Drills and restores of names that are not UTF-8, against a real duplicity (``file://``).

duplicity 3.2 reads a restore list as UTF-8 text and decodes its restore target's path: one
latin-1 name (``caf\\xe9`` from an old system) made every file of a drill's listed restore
"cannot be restored", and the drill blamed the backup (exit 8, "run a full backup", which could
not help); ``restore --path`` of that name crashed the same way. The backup itself is sound.
"""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.swift

CAFE = os.fsdecode(b"caf\xe9")  # as Python spells a latin-1 name it read from the disk


def _tree(src):
    (src / "weird").mkdir(parents=True)
    (src / "weird" / CAFE).write_text("coffee\n")
    (src / "weird" / "ok").write_text("fine\n")
    (src / CAFE).mkdir()
    (src / CAFE / "menu").write_text("espresso\n")
    (src / "data").mkdir()
    for i in range(40):
        (src / "data" / f"f{i:02d}").write_text(f"file {i}\n" * (i + 1))


def test_a_drill_restores_names_that_are_not_utf8_and_passes(tmp_path, make_config, cfbackup):
    src = tmp_path / "src"
    _tree(src)
    config = make_config(source=src, target=f"file://{tmp_path}/backup")
    assert cfbackup("-c", config, "backup").returncode == 0
    result = cfbackup("-c", config, "drill", "main", "--sample", "100%", "--json")
    assert result.returncode == 0, result
    report = json.loads(result.stdout)
    statuses = {f["path"]: f["status"] for f in report["files"]}
    assert statuses[f"weird/{CAFE}"] == "match" and statuses[f"{CAFE}/menu"] == "match"
    assert set(statuses.values()) == {"match"}, report["files"]


def test_restore_of_one_path_that_is_not_utf8(tmp_path, make_config, cfbackup):
    src = tmp_path / "src"
    _tree(src)
    config = make_config(source=src, target=f"file://{tmp_path}/backup")
    assert cfbackup("-c", config, "backup").returncode == 0
    out = tmp_path / "out"
    result = cfbackup("-c", config, "restore", "main", out, "--path", f"weird/{CAFE}")
    assert result.returncode == 0, result
    assert (out / "weird" / CAFE).read_text() == "coffee\n"
    assert os.listdir(out / "weird") == [CAFE]  # no staging folder left beside it
    assert "weird/caf\\xe9 restored to" in result.stdout
    out = tmp_path / "out2"
    result = cfbackup("-c", config, "restore", "main", out, "--path", f"{CAFE}/menu")
    assert result.returncode == 0, result
    assert (out / CAFE / "menu").read_text() == "espresso\n"
