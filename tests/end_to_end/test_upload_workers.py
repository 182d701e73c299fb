"""duplicity's upload processes (``upload_workers``, ``--concurrency``) against the real Swift.

The processes start only for a backup with a second volume: every program a backup starts is
recorded (``support/exectrace.py``), so a worker (multiprocessing's ``--multiprocessing-fork``
interpreter) or the pool's resource tracker cannot start unseen; a one-volume incremental is
uploaded by duplicity itself. "auto" is 1 across the bench's delay relay and 0 nearby, and a
``--concurrency`` in extra_options wins; every restore is byte for byte."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from support.cli import BIN
from support.trees import assert_same_tree, make_awkward_tree
from support.wanlink import delayed

pytestmark = pytest.mark.swift


def _logs(tmp_path: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((tmp_path / "state" / "logs").glob("*.log")))


def _backup_argv(tmp_path: Path) -> list[str]:
    """The duplicity backup command lines the run logs say ran, oldest first."""
    return re.findall(r"running: (.* backup .*)", _logs(tmp_path))


def _spawned(execs) -> tuple[list[str], list[str]]:
    """The upload pool's worker processes and multiprocessing resource trackers started."""
    workers = [str(e) for e in execs if "--multiprocessing-fork" in e.argv]
    trackers = [str(e) for e in execs if any("resource_tracker" in a for a in e.argv)]
    return workers, trackers


def test_workers_start_for_a_second_volume_never_for_a_one_volume_incremental(
    tmp_path, make_config, cfbackup, cli_env
):
    from support.exectrace import run_traced

    src = make_awkward_tree(tmp_path / "src", big_mb=4)  # 1 MB volumes: five of them
    config = make_config(source=src, extra="volsize = 1\nupload_workers = 1\n")
    gnupghome = tmp_path / "gnupg"  # an agent started under the trace is ended after it
    gnupghome.mkdir(mode=0o700)
    env = {**cli_env, "GNUPGHOME": str(gnupghome)}

    def backup(n: int):
        traced = run_traced(
            [str(BIN / "cfbackup"), "-c", str(config), "backup"], env=env,
            log=tmp_path / f"trace-{n}.log",
            after_exit=lambda: subprocess.run(
                ["gpgconf", "--homedir", str(gnupghome), "--kill", "gpg-agent"], check=False
            ),
        )  # fmt: skip
        assert traced.returncode == 0, traced.stderr
        return _spawned(traced.execs)

    workers, trackers = backup(1)
    assert len(workers) == 1 and len(trackers) == 1, (workers, trackers)
    (src / "plain.txt").write_text("changed after the full backup\n")
    workers, trackers = backup(2)
    assert workers == [] and trackers == [], (workers, trackers)  # no process at all

    ran = _backup_argv(tmp_path)
    assert len(ran) == 2 and all(" --concurrency=1 " in line for line in ran), ran
    assert "upload workers: 1, the profile's" in _logs(tmp_path)
    out = tmp_path / "out"
    assert cfbackup("-c", config, "restore", "main", out, env=env).returncode == 0
    assert_same_tree(src, out)


def test_auto_is_one_across_a_wan_and_extra_options_win(
    tmp_path, make_config, cfbackup, local_swift
):
    src = make_awkward_tree(tmp_path / "src", big_mb=1)
    with delayed(local_swift.auth_url, 30) as relay_url:
        config = make_config(source=src)
        config.write_text(config.read_text().replace(local_swift.auth_url, relay_url))
        assert cfbackup("-c", config, "backup").returncode == 0
        chosen = re.search(
            r"upload workers: 1: Swift answers in (\d+) ms, so each volume", _logs(tmp_path)
        )
        assert chosen and int(chosen[1]) >= 30, _logs(tmp_path)
        assert " --concurrency=1 " in _backup_argv(tmp_path)[-1]
        assert " --volsize=10 " in _backup_argv(tmp_path)[-1]  # volsize "auto", the same probe
        assert "volume size: 10 MB first: Swift answers in " in _logs(tmp_path)

        (src / "plain.txt").write_text("changed after the full backup\n")
        text = config.read_text()
        config.write_text(
            text.replace(
                "[profiles.main.swift]",
                'extra_options = ["--concurrency=2"]\n\n[profiles.main.swift]',
            )
        )
        assert cfbackup("-c", config, "backup").returncode == 0
        assert "upload workers: 2, extra_options' --concurrency (it wins over upload_workers)" in (
            _logs(tmp_path)
        )
        last = _backup_argv(tmp_path)[-1]
        assert re.findall(r"--concurrency=\d", last) == ["--concurrency=2"], last
        out = tmp_path / "out"
        assert cfbackup("-c", config, "restore", "main", out).returncode == 0
    assert_same_tree(src, out)

    near = make_config(source=src, name="near.toml", target=f"swift://near-{tmp_path.name}/x")
    assert cfbackup("-c", near, "backup").returncode == 0
    newest = max((tmp_path / "state" / "logs").glob("*.log"), key=lambda p: p.stat().st_mtime)
    log = newest.read_text()
    # the loopback Swift: near, unless a loaded machine (the suite's workers) delayed every
    # probe past 10 ms; either way the choices follow the round trip the log shows
    chosen = re.search(r"upload workers: (\d): Swift answers in ([\d.]+) ms", log)
    assert chosen, log
    far = int(chosen[1]) == 1
    shown = float(chosen[2])  # rounded to the millisecond: 9.6 ms shows as "10 ms", and is near
    assert (shown >= 10) if far else (shown <= 10), log
    assert ("--concurrency" in log) == far, log
    # (far: the first size, the rate unknown; the backups above had no volume to measure it)
    size, first = (10, " first") if far else (50, "")
    assert f" --volsize={size} " in log, log
    assert f"volume size: {size} MB{first}: Swift answers in " in log, log
