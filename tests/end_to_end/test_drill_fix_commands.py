"""What a drill that fails suggests runs as printed, against a real duplicity (``file://``).

A drill with a wrong passphrase printed a warning line per manifest before its error, and the
error ended "(cfbackup check tests them)": no ``-c FILE``, no profile, so the command failed
with "no config file found" or checked another config.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from datetime import datetime

import pytest

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift


def test_a_wrong_passphrase_is_one_line_naming_a_check_that_runs(tmp_path, make_config, cfbackup):
    src = tmp_path / "src"
    src.mkdir()
    (src / "file").write_text("data\n")
    config = make_config(source=src, target=f"file://{tmp_path}/backup")
    assert cfbackup("-c", config, "backup").returncode == 0
    wrong = {"T_PASSPHRASE": "not-the-passphrase"}
    result = cfbackup("-c", config, "drill", "main", env=wrong)
    assert result.returncode == ExitCode.CRYPTO, result
    (line,) = result.stderr.splitlines()  # the error alone, not a warning per manifest first
    assert line.startswith("cfbackup: error: gpg could not decrypt the manifests at "), line
    check = f"cfbackup -c {config} check main --for-restore"
    assert line.endswith(f"check the passphrase in $T_PASSPHRASE and the keys; {check} tests them.")
    # and that command, as printed, says what is wrong
    checked = cfbackup(*check.split()[1:], env=wrong)
    assert checked.returncode == ExitCode.REFUSED, checked
    assert "the passphrase of profile main does not decrypt the backups" in checked.output


def test_a_drill_again_with_a_relative_time_names_the_moment_it_meant(
    tmp_path, make_config, cfbackup
):
    """Before: "drill again ... --time 1m" as typed: pasted later, it counts back from then
    and may drill another backup. As the restore's suggestions do, it names the moment."""
    src = tmp_path / "src"
    src.mkdir()
    for number in range(200):
        (src / f"file{number}").write_text(f"data {number}\n")
    config = make_config(source=src, target=f"file://{tmp_path}/backup")
    assert cfbackup("-c", config, "backup").returncode == 0
    time.sleep(2)
    # a machine where a decryption takes 2 s: in its --max-duration 1s the drill checks no
    # file (duplicity's start alone took about that long, but not always: CI run 9ff615c)
    slow = tmp_path / "slow-gpg"
    slow.mkdir()
    gpg = slow / "gpg"
    gpg.write_text(
        f'#!/bin/sh\ncase "$*" in *--decrypt*) sleep 2;; esac\nexec {shutil.which("gpg")} "$@"\n'
    )
    gpg.chmod(0o755)
    before = time.time()
    result = cfbackup("-c", config, "drill", "main", "--time", "1s", "--max-duration", "1s",
                      "--sample", "100%", env={"PATH": f"{slow}:{os.environ['PATH']}"})  # fmt: skip
    assert result.returncode == ExitCode.PARTIAL, result
    assert "checked no file before --max-duration 1s ran out" in result.stderr, result
    assert "--time 1s" not in result.stderr, result.stderr
    given = re.search(r"--max-duration 2s --time (\S+),", result.stderr)
    assert given, result.stderr
    meant = datetime.fromisoformat(given[1]).timestamp()
    assert before - 2 <= meant <= time.time(), (given[1], before)
