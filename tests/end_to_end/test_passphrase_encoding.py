"""A passphrase with characters outside ASCII (a German or French one, a euro sign) works the
whole way: duplicity encrypts with it in UTF-8, and what cfbackup decrypts itself (the
passphrase check before an incremental, ``cfbackup check``, the restore prefetch's volumes and
manifests) must give gpg the same bytes (``execute.duplicity_passphrase``). Before, python-gnupg
wrote it in latin-1: gpg answered "Bad session key" and cfbackup called the right passphrase
wrong."""

from __future__ import annotations

import pytest
from support.cli import UTF8_PASSPHRASE as PASSPHRASE
from support.trees import assert_same_tree, make_awkward_tree

pytestmark = pytest.mark.swift


def test_a_non_ascii_passphrase_backs_up_checks_and_restores(tmp_path, make_config, cfbackup):
    src = make_awkward_tree(tmp_path / "src", big_mb=1)
    config = make_config(source=src)
    env = {"T_PASSPHRASE": PASSPHRASE}
    full = cfbackup("-c", config, "backup", env=env)
    assert full.returncode == 0, full
    (src / "later.txt").write_text("after the full\n")
    incremental = cfbackup("-c", config, "backup", env=env)  # its check decrypts a manifest
    assert incremental.returncode == 0, incremental
    check = cfbackup("-c", config, "check", env=env)
    assert check.returncode == 0, check

    restored = tmp_path / "restored"
    restore = cfbackup("-c", config, "restore", "main", restored, env=env)  # prefetch decrypts
    assert restore.returncode == 0, restore
    assert_same_tree(src, restored)

    wrong = cfbackup("-c", config, "backup", env={"T_PASSPHRASE": PASSPHRASE.replace("€", "E")})
    assert wrong.returncode != 0 and "passphrase" in wrong.output, wrong
