"""Drills that cannot prove anything say so, against a real duplicity (``file://``).

A drill of a backup that holds no file (an empty source, everything excluded) compared nothing
and passed: exit 0, a success in the history and the metrics. A backup set whose manifest was
lost, with no complete backup before it, made the drill say there was no backup at all. Each
now fails with one sentence naming the cause and a fix that runs as printed (``-c FILE``).
"""

from __future__ import annotations

import json

import pytest

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift


def _error_line(result) -> str:
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("cfbackup: error: ")]
    return line


@pytest.mark.parametrize("how", ["empty source", "everything excluded"])
def test_a_drill_that_compared_nothing_does_not_pass(tmp_path, make_config, cfbackup, how):
    src = tmp_path / "src"
    src.mkdir()
    extra = ""
    if how == "everything excluded":
        (src / "data").mkdir()
        (src / "data" / "file").write_text("excluded\n")
        extra = f'exclude = ["{src}/data"]\n'
    prom = tmp_path / "cfbackup.prom"
    config = make_config(
        source=src,
        target=f"file://{tmp_path}/backup",
        extra=extra,
        more=f'\n[profiles.main.notify]\nactions = ["drill"]\nmetrics_file = "{prom}"\n',
    )
    assert cfbackup("-c", config, "backup").returncode == 0
    result = cfbackup("-c", config, "drill", "main")
    assert result.returncode == ExitCode.PARTIAL, result
    line = _error_line(result)
    assert "drill of main found nothing to check: the full backup of " in line, line
    assert f"holds no file (the source {src} was empty, or include/exclude left" in line, line
    assert f"check profiles.main.source and its include/exclude, then run cfbackup -c {config} " \
        "backup main [" in line, line  # fmt: skip
    (row,) = [r for r in json.loads(cfbackup("-c", config, "history", "--json").stdout)
              if r["action"] == "drill"]  # fmt: skip
    assert row["exit_code"] == ExitCode.PARTIAL and row["stats"]["files_checked"] == 0, row
    text = prom.read_text()
    assert "cfbackup_drill_last_success_timestamp{" not in text  # it proved nothing
    assert 'cfbackup_last_run_success{action="drill",profile="main"} 0' in text


def test_a_lost_manifest_with_nothing_before_it_is_named(tmp_path, make_config, cfbackup):
    src = tmp_path / "src"
    src.mkdir()
    (src / "file").write_text("data\n")
    backup = tmp_path / "backup"
    config = make_config(source=src, target=f"file://{backup}")
    assert cfbackup("-c", config, "backup").returncode == 0
    (manifest,) = backup.glob("*.manifest.gpg")
    manifest.unlink()
    result = cfbackup("-c", config, "drill", "main", "--sample", "100%")
    assert result.returncode == ExitCode.VERIFY_DIFFERENCES, result
    line = _error_line(result)
    assert "no backup of profile main" not in line, line
    assert " has 1 volume(s) and its signatures but no manifest at file://" in line, line
    assert f"cfbackup -c {config} verify main checks it" in line, line
    assert f"cfbackup -c {config} backup main --full to start a sound chain" in line, line

    # without its signatures either, the backup was interrupted: the next backup resumes it
    for signatures in backup.glob("*signatures*"):
        signatures.unlink()
    result = cfbackup("-c", config, "drill", "main")
    assert result.returncode == ExitCode.REFUSED, result
    line = _error_line(result)
    assert "no complete backup of profile main at file://" in line, line
    assert "was interrupted before its end" in line, line
    assert f"run cfbackup -c {config} backup main, which resumes it, and drill again." in line


def test_a_drill_before_the_oldest_backup_names_it_as_restore_does(
    tmp_path, make_config, cfbackup
):
    """``drill --time`` before the oldest backup said "no backup of profile main at ... at
    that time: run a backup first", beside a backup there, without naming it; ``restore``
    with the same --time names the oldest backup and the --time to give. The drill now says
    what restore says (exit 5), and the --time it names drills that backup."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "file.txt").write_text("proof\n")
    config = make_config(
        source=src, target=f"file://{tmp_path}/backup", encryption='mode = "none"'
    )
    assert cfbackup("-c", config, "backup", "main").returncode == 0
    before = "2000-01-01T00:00:00Z"
    restore = cfbackup("-c", config, "restore", "main", tmp_path / "out", "--time", before)
    drill = cfbackup("-c", config, "drill", "main", "--time", before)
    assert drill.returncode == restore.returncode == ExitCode.REFUSED, drill
    said = _error_line(restore)
    assert _error_line(drill) == said, drill
    assert said.endswith(f"or see every backup with cfbackup -c {config} status main."), said
    oldest = said.split("give a --time at or after ", 1)[1].split(",", 1)[0]
    again = cfbackup("-c", config, "drill", "main", "--time", oldest)
    assert again.returncode == 0, again


def test_a_split_root_backed_up_after_the_time_drilled_is_not_said_never_backed_up(
    tmp_path, make_config, cfbackup
):
    """split_chains, ``drill --time T`` where the root /db was first backed up after T: the
    drill left /db out saying "chain /db has no backup yet", beside its backups (restore with
    the same --time says "no backup of it at or before --time"). It names the oldest now."""
    import time

    src = tmp_path / "src"
    for root in ("etc", "db"):
        (src / root).mkdir(parents=True)
        (src / root / "file.txt").write_text(f"{root}\n")

    def config(*roots):
        include = ", ".join(f'"{src}/{root}"' for root in roots)
        return make_config(
            source=src,
            target=f"file://{tmp_path}/backup",
            encryption='mode = "none"',
            extra=f"include = [{include}]\nsplit_chains = true\n",
        )

    assert cfbackup("-c", config("etc"), "backup", "main").returncode == 0
    time.sleep(1.5)
    between = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(1.5)
    assert cfbackup("-c", config("etc", "db"), "backup", "main").returncode == 0
    drill = cfbackup("-c", config("etc", "db"), "drill", "main", "--time", between)
    assert drill.returncode == 0, drill
    assert "chain /db has no backup yet" not in drill.stderr, drill
    assert "chain /db has no backup at or before --time (its oldest is the full backup of " in (
        drill.stderr
    ), drill
