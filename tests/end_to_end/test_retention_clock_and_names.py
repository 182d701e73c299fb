"""Retention against what duplicity decides on its own: a target holding backups dated after
now (a clock that was ahead), a newest chain whose signatures are lost, and file names under
``--file-prefix`` (real duplicity, ``file://`` targets, no encryption)."""

from __future__ import annotations

import time

import pytest
from support.trees import make_awkward_tree

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
