"""A profile whose extra_options give duplicity ``--file-prefix*`` options, end to end against
the local Swift: duplicity writes ``host1-m_duplicity-full...manifest.gpg``, and every part of
cfbackup that reads the target's names reads them with those prefixes (duplicity/names.py).
Read without them, status showed no chain, ``verify --read-data`` found "no backup", the
restore's prefetch stepped aside (duplicity read the target itself) and ``prune --dry-run``
handed the listing to duplicity."""

from __future__ import annotations

import json
import time

import pytest
from support.trees import assert_same_tree, make_awkward_tree

pytestmark = pytest.mark.swift

EXTRA = (
    'restore_prefetch = 2\nextra_options = ["--file-prefix=host1-", '
    '"--file-prefix-manifest=m_", "--file-prefix-signature", "s_"]\n'
)


def test_a_prefixed_profile_is_read_by_status_read_data_prefetch_and_prune(
    tmp_path, make_config, cfbackup
):
    src = make_awkward_tree(tmp_path / "src", big_mb=1)
    config = make_config(
        source=src,
        extra=EXTRA,
        more="[profiles.main.retention]\nafter_backup = false\nkeep_full = 1\n",
    )
    for _ in range(2):
        assert cfbackup("-c", config, "backup", "main", "--full").returncode == 0
        time.sleep(1.1)
    (src / "plain.txt").write_text("changed after the fulls\n")
    assert cfbackup("-c", config, "backup", "main").returncode == 0

    status = json.loads(cfbackup("-c", config, "status", "main", "--json").stdout)
    assert [len(c["sets"]) for c in status["chains"]] == [1, 2], status["chains"]
    assert status["chains"][-1]["state"] == "complete" and not status["broken"]
    assert status["last_full"] is not None

    result = cfbackup("-c", config, "verify", "main", "--read-data")
    assert result.returncode == 0, result
    assert "no backup" not in result.stdout + result.stderr

    out = tmp_path / "out"
    result = cfbackup("-c", config, "--verbose", "restore", "main", out)
    assert result.returncode == 0, result
    # duplicity read the prefetch's copy (its own archive dir), not the target
    used = result.stderr.split("Using archive dir: ", 1)[1].split("\n", 1)[0]
    assert not used.startswith(str(tmp_path / "archive")), result
    assert_same_tree(src, out)

    plan = cfbackup("-c", config, "prune", "main", "--dry-run", "--json")
    assert plan.returncode == 0, plan
    (rule,) = [r for c in json.loads(plan.stdout)["chains"] for r in c["rules"]]
    assert "sets" in rule, rule  # read by cfbackup from the listing, not left to duplicity
    (removed,) = rule["sets"]  # the older full, the newest chain kept
    assert removed["type"] == "full" and removed["end"] == status["chains"][0]["sets"][0]["time"]
    assert all(n.startswith("host1-") for n in removed["names"]), removed
