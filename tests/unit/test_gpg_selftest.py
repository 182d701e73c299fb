"""duplicity's gpg self-test under the gpg-selftest patch (cfbackup/duplicity/patches/
gpg_selftest.py), with real duplicity and gpg through cfbackup's launcher on a file:// target:
a backup and a restore each test the agent without a key derivation and without the test
passphrase on gpg's command line, and an agent that refuses loopback pinentry still ends the
run with duplicity's own message."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support.cli import PASSPHRASE, stop_gpg_agent
from support.exectrace import run_traced
from support.trees import assert_same_tree

from cfbackup.duplicity import launcher
from cfbackup.duplicity.patches import gpg_selftest

REFUSED = "GnuPG agent does not allow loopback pinentry."
GPG_FAILED = 31  # duplicity's log.ErrorCode.gpg_failed


@pytest.fixture
def gnupghome(empty_gnupghome):
    return empty_gnupghome


def _env(gnupghome: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CFBACKUP_", "SWIFT_"))}
    return {**env, "PASSPHRASE": PASSPHRASE, "GNUPGHOME": str(gnupghome)}


def _duplicity(tmp_path: Path, *args: str) -> list[str]:
    return [*launcher.command(), *args, "--name", "selftest", "--archive-dir",
            str(tmp_path / "archive")]


def _selftests(execs) -> list[list[str]]:
    return [e.argv for e in execs if e.program == "gpg" and gpg_selftest.NO_KEY in e.argv]


def test_backup_and_restore_test_the_agent_without_deriving_a_key(tmp_path, gnupghome):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("selftest\n" * 100)
    target = f"file://{tmp_path / 'target'}"
    env = _env(gnupghome)

    def kill_agent():
        stop_gpg_agent(gnupghome)

    runs = (("full", str(src), target), ("restore", target, str(tmp_path / "restored")))
    for n, args in enumerate(runs):
        traced = run_traced(_duplicity(tmp_path, *args), env=env,
                            log=tmp_path / f"trace-{n}.log", after_exit=kill_agent)
        assert traced.returncode == 0, traced.stdout[-2000:] + traced.stderr[-2000:]
        gpgs = [e.argv for e in traced.execs if e.program == "gpg"]
        tests = _selftests(traced.execs)
        assert len(tests) == 1, gpgs  # the self-test ran, once, as the cheap one
        assert "--export-secret-keys" in tests[0], tests
        assert tests[0][tests[0].index("--pinentry-mode") + 1] == "loopback", tests
        # duplicity's own test encrypted with the passphrase "test" on gpg's command line
        assert not [argv for argv in gpgs if "--passphrase" in argv], gpgs
    assert_same_tree(src, tmp_path / "restored")


def test_an_agent_refusing_loopback_still_ends_the_run_with_duplicitys_message(
    tmp_path, gnupghome
):
    (gnupghome / "gpg-agent.conf").write_text("no-allow-loopback-pinentry\n")
    (tmp_path / "src").mkdir()
    run = subprocess.run(
        _duplicity(tmp_path, "full", str(tmp_path / "src"), f"file://{tmp_path / 'target'}"),
        env=_env(gnupghome), capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == GPG_FAILED, run.stdout + run.stderr
    assert REFUSED in run.stdout + run.stderr
    assert not (tmp_path / "target").exists() or not list((tmp_path / "target").iterdir())
