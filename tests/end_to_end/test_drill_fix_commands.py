"""What a drill that fails suggests runs as printed, against a real duplicity (``file://``).

A drill with a wrong passphrase printed a warning line per manifest before its error, and the
error ended "(cfbackup check tests them)": no ``-c FILE``, no profile, so the command failed
with "no config file found" or checked another config.
"""

from __future__ import annotations

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
