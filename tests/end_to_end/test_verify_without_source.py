"""``verify`` on a machine where the profile's source does not exist (a new machine, before the
restore is moved into place; docs/runbook-restore.md): duplicity's verify made the source folder
(an empty one, where the next backup would read "everything deleted"), and ``--compare-data``
listed every file as missing (exit 8) instead of saying the source is not there."""

from __future__ import annotations

import pytest

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift  # make_config's fixtures; the target is a file:// URL


def test_verify_makes_no_source_folder_and_compare_data_names_the_missing_source(
    tmp_path, make_config, cfbackup
):
    src = tmp_path / "srv" / "data"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (src / "other.txt").write_text("left out\n")
    config = make_config(
        source=src,
        target=f"file://{tmp_path}/backups",
        encryption='mode = "none"',
        extra=f'include = ["{src}/etc"]\n',
    )
    assert cfbackup("-c", config, "backup").returncode == 0
    (tmp_path / "srv").rename(tmp_path / "old-machine")  # the new machine has no /srv yet

    result = cfbackup("-c", config, "verify", "main")
    assert result.returncode == 0, result
    assert "every volume is intact" in result.stdout, result
    assert not (tmp_path / "srv").exists(), "verify made the source folder"

    result = cfbackup("-c", config, "verify", "main", "--compare-data")
    assert result.returncode == ExitCode.REFUSED, result
    assert result.stderr.strip() == (
        f"cfbackup: error: the source {src} of profile main does not exist on this machine, so "
        "verify --compare-data has nothing to compare the backup with: restore into it first, "
        f"or check the backup without it with cfbackup -c {config} verify main --read-data."
    ), result.stderr
    assert not (tmp_path / "srv").exists()

    (tmp_path / "old-machine").rename(tmp_path / "srv")  # restored into place: compared again
    result = cfbackup("-c", config, "verify", "main", "--compare-data")
    assert result.returncode == 0, result


def test_plain_verify_checks_the_volumes_not_the_source(tmp_path, make_config, cfbackup):
    """docs/checks.md said plain ``verify`` compares each file's type, size and modification
    time with the source ("a changed file is a difference"): duplicity 3.2's verify compares
    nothing with the source unless --compare-data is given (``ROPath.compare_verbose``), so a
    changed file, mode or mtime passes it. This test fails when duplicity starts comparing."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("first\n")
    target = f"file://{tmp_path}/backups"
    config = make_config(source=src, target=target, encryption='mode = "none"')
    assert cfbackup("-c", config, "backup").returncode == 0
    (src / "a.txt").write_text("changed, and longer than before\n")
    (src / "a.txt").chmod(0o600)
    result = cfbackup("-c", config, "verify", "main")
    assert result.returncode == 0 and "every volume is intact" in result.stdout, result
    result = cfbackup("-c", config, "verify", "main", "--compare-data")
    assert result.returncode == ExitCode.VERIFY_DIFFERENCES, result
    assert "a.txt has permissions" in result.stderr, result
