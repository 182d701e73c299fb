"""The checks are the proof that the backups restore: whenever a restore would fail, so must
``verify --read-data`` and ``drill``, naming the cause (real duplicity and gpg, file://
targets)."""

from __future__ import annotations

import json
import time

from cfbackup.errors import ExitCode


def _error(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("cfbackup: error:")]
    assert len(lines) == 1, result
    return lines[0]


def test_a_manifest_lost_mid_chain_fails_every_check_and_restore_says_why(
    tmp_path, make_config, cfbackup
):
    """1 full + 3 incrementals, the manifest of the second-to-last incremental deleted: the
    checks used to leave that set out as "an interrupted backup", read the chain up to it and
    pass, while restore died on duplicity's "AssertionError: No remote manifest name"."""
    src, target = tmp_path / "src", tmp_path / "target"
    src.mkdir()
    config = make_config(source=src, target=f"file://{target}")
    for i in range(4):
        (src / f"file-{i}.txt").write_text(f"version {i}\n" * 200)
        assert cfbackup("-c", config, "backup", "main").returncode == 0
        time.sleep(1.1)  # duplicity's times have one-second resolution
    manifests = sorted(target.glob("duplicity-inc.*.manifest.gpg"))
    assert len(manifests) == 3
    lost = manifests[-2]
    lost.unlink()
    stamp = lost.name.split(".to.")[1].split(".")[0]  # 20261206T035816Z
    shown = _shown(stamp)
    fix = f"cfbackup -c {config} backup main --full"

    result = cfbackup("-c", config, "verify", "main", "--read-data")
    assert result.returncode == ExitCode.VERIFY_DIFFERENCES, result
    line = _error(result)
    assert f"the incremental backup of {shown} UTC has 1 volume(s) but no manifest" in line
    assert "4 volume(s)" in line and fix in line

    result = cfbackup("-c", config, "drill", "main", "--sample", "100%")
    assert result.returncode == ExitCode.VERIFY_DIFFERENCES, result
    line = _error(result)
    assert f"the incremental backup of {shown} UTC has 1 volume(s) but no manifest" in line
    assert fix in line

    status = json.loads(cfbackup("-c", config, "status", "main", "--json").stdout)
    assert status["broken"] and status["lost_manifests"] == [
        {"type": "inc", "time": stamp, "volumes": 1}
    ]
    # the failed checks are in status, and the newest (the drill) makes the profile broken
    assert status["last_checks"]["read_data"]["exit_code"] == ExitCode.VERIFY_DIFFERENCES
    assert status["last_checks"]["drill"]["damage"] and status["damage_found_by"] == "drill"
    text = cfbackup("-c", config, "status", "main").stdout
    assert f"BROKEN: the chain is broken at the inc set of {stamp}" in text, text
    assert "(an interrupted backup): the next backup resumes it" not in text

    result = cfbackup("-c", config, "restore", "main", tmp_path / "out")
    assert result.returncode == ExitCode.DUPLICITY, result
    assert "AssertionError" not in result.output
    line = _error(result)
    assert "has no manifest at the target" in line and fix in line

    # a time before the lost set restores, and the drill says which backup it drilled
    before = sorted(target.glob("duplicity-inc.*.manifest.gpg"))[0]
    when = before.name.split(".to.")[1].split(".")[0]
    result = cfbackup("-c", config, "drill", "main", "--time", when)
    assert result.returncode == 0, result
    assert f"passed: the incremental backup of {_shown(when)} UTC: " in result.stdout, result


def _shown(stamp: str) -> str:
    """duplicity's 20261206T035816Z as messages show it: 2026-12-06 03:58:16."""
    return f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]} {stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}"


def test_a_split_root_whose_chain_vanished_fails_every_check(tmp_path, make_config, cfbackup):
    """split_chains: a root's chain removed from the target used to be left out of every check
    with a warning ("no backup yet"), exit 0, while restore then exited 9 without it. A root
    the run history shows backed up fails the checks (exit 8, named); a root added since the
    last backup is still left out with a warning, and named in the message and stats."""
    from cfbackup import chains, history

    src, target = tmp_path / "src", tmp_path / "target"
    for root in ("a", "b", "c"):
        (src / root).mkdir(parents=True)
        (src / root / f"{root}.txt").write_text(f"root {root}\n" * 100)
    extra = f'include = ["{src}/a", "{src}/b"]\nsplit_chains = true\n'
    config = make_config(source=src, target=f"file://{target}", extra=extra)
    assert cfbackup("-c", config, "backup", "main").returncode == 0
    backups = [r for r in history.runs(tmp_path / "state", "main") if r["action"] == "backup"]
    assert backups[0]["stats"][chains.ROOTS_STAT] == ["/a", "/b"]
    checks = (("verify",), ("verify", "--read-data"), ("drill", "--sample", "100%"))

    # a root added since the last backup: left out, and said so
    config.write_text(config.read_text().replace(f'"{src}/b"]', f'"{src}/b", "{src}/c"]'))
    for check in checks:
        result = cfbackup("-c", config, check[0], "main", *check[1:])
        assert result.returncode == 0, result
        assert "chain /c has no backup yet: left out" in result.stderr, result
        assert "/c left out: no backup of it yet" in result.stdout, result
        row = history.runs(tmp_path / "state", "main")[0]
        assert row["stats"]["roots_without_backup"] == ["/c"], row

    # the chain of /b vanishes from the target
    for name in (target / chains.slug_of("b")).iterdir():
        name.unlink()
    for check in checks:
        result = cfbackup("-c", config, check[0], "main", *check[1:])
        assert result.returncode == ExitCode.VERIFY_DIFFERENCES, (check, result)
        line = _error(result)
        assert "include root(s) /b of profile main have no backup at" in line, line
        assert f"cfbackup -c {config} backup main" in line
        assert "/b, /c" not in line


def test_status_says_a_split_roots_chain_vanished(tmp_path, make_config, cfbackup):
    """split_chains: with a root's chain removed from the target, status listed the other
    roots' chains, "broken": false, until a check ran: the chain of that root simply was not
    there. A root the run history shows backed up is now BROKEN (``lost_roots`` in --json);
    one added since the last backup is not (its first backup is still to come)."""
    from cfbackup import chains

    src, target = tmp_path / "src", tmp_path / "target"
    for root in ("a", "b", "c"):
        (src / root).mkdir(parents=True)
        (src / root / f"{root}.txt").write_text(f"root {root}\n")
    extra = f'include = ["{src}/a", "{src}/b"]\nsplit_chains = true\n'
    config = make_config(source=src, target=f"file://{target}", extra=extra)
    assert cfbackup("-c", config, "backup", "main").returncode == 0
    config.write_text(config.read_text().replace(f'"{src}/b"]', f'"{src}/b", "{src}/c"]'))
    for name in (target / chains.slug_of("b")).iterdir():
        name.unlink()
    result = cfbackup("-c", config, "status", "main")
    assert result.returncode == 0, result
    (line,) = [x.strip() for x in result.stdout.splitlines() if x.strip().startswith("BROKEN")]
    assert line == (
        "BROKEN: the chain of /b is gone from the target though the run history shows it was "
        f"backed up: a restore of /b fails: run cfbackup -c {config} backup main to start a new "
        "chain for it, and find out what removed it"
    ), line
    data = json.loads(cfbackup("-c", config, "status", "main", "--json").stdout)
    assert data["broken"] is True and data["lost_roots"] == ["/b"], data
