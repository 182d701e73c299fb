"""A backup's duplicity starts while cfbackup's checks run and waits for its arguments
(``WarmDuplicity`` in ``duplicity/run.py``, ``launcher.ARGV_FROM``): a before_backup hook sees it
waiting, it then runs the backup (restored byte for byte); when a check refuses the backup it
exits without having touched anything; ``CFBACKUP_NO_WARM=1`` starts it after the checks. A
restore's starts while the volumes to fetch are planned."""

from __future__ import annotations

import os
import sys

import pytest
from support.trees import assert_same_tree, make_awkward_tree

from cfbackup.duplicity import launcher
from cfbackup.duplicity.run import WarmDuplicity

pytestmark = pytest.mark.swift

# a before_backup hook: the pids and command lines of the children of its ancestors (cfbackup's, the
# shell's that runs the hook), one per line, into a file
SNAPSHOT = """#!{python}
import os, sys
def parent(pid):
    with open(f"/proc/{{pid}}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])
ancestors, pid = set(), os.getpid()
while pid > 1:
    pid = parent(pid)
    ancestors.add(pid)
lines = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        ppid = parent(pid)
        with open(f"/proc/{{pid}}/cmdline", "rb") as f:
            args = f.read().split(b"\\0")
    except OSError:
        continue
    if ppid in ancestors - {{1}}:
        lines.append(pid + " " + " ".join(a.decode() for a in args if a))
open({out!r}, "w").write("\\n".join(lines))
sys.exit({status})
"""


def _hook(tmp_path, status: int = 0):
    out = tmp_path / f"children-{status}"
    hook = tmp_path / f"snapshot-{status}"
    hook.write_text(SNAPSHOT.format(python=sys.executable, out=str(out), status=status))
    hook.chmod(0o700)
    return hook, out


def _waiting(children: str) -> list[str]:
    return [line for line in children.splitlines() if launcher.ARGV_FROM in line]


def test_duplicity_waits_warm_during_the_checks(tmp_path, make_config, cfbackup):
    src = make_awkward_tree(tmp_path / "src", big_mb=1)
    hook, out = _hook(tmp_path)
    config = make_config(
        source=src, more=f'[profiles.main.command_hooks]\nbefore_backup = ["{hook}"]\n'
    )
    result = cfbackup("-c", config, "backup")
    assert result.returncode == 0, result
    waiting = _waiting(out.read_text())
    assert len(waiting) == 1, out.read_text()  # started, its arguments not given yet
    assert " backup " not in waiting[0] and "swift://" not in waiting[0]
    # the interpreter started at cfbackup's first statement, then given the run's environment
    assert launcher.ENV_FIRST in waiting[0], waiting
    logs = "\n".join(p.read_text() for p in (tmp_path / "state" / "logs").glob("*.log"))
    assert "running: " in logs and " backup " in logs  # the arguments it was given, logged

    restored = cfbackup("-c", config, "restore", "main", tmp_path / "restored")
    assert restored.returncode == 0, restored
    assert_same_tree(src, tmp_path / "restored")


def test_a_refused_backup_leaves_its_warm_duplicity_unused(tmp_path, make_config, cfbackup):
    src = make_awkward_tree(tmp_path / "src", big_mb=1)
    hook, out = _hook(tmp_path, status=3)
    config = make_config(
        source=src, more=f'[profiles.main.command_hooks]\nbefore_backup = ["{hook}"]\n'
    )
    result = cfbackup("-c", config, "backup")
    assert result.returncode != 0 and "refused" in result.output, result
    waiting = _waiting(out.read_text())
    assert len(waiting) == 1, out.read_text()
    pid = int(waiting[0].split()[0])
    assert not os.path.exists(f"/proc/{pid}"), "the unused duplicity outlived cfbackup"
    archive = tmp_path / "archive"
    assert not archive.exists() or not [p for p in archive.rglob("*") if p.is_file()]
    listing = cfbackup("-c", config, "list", "main")
    assert "no backup" in listing.output.lower() or listing.returncode != 0, listing


def test_the_switch_starts_duplicity_after_the_checks(tmp_path, make_config, cfbackup):
    src = make_awkward_tree(tmp_path / "src", big_mb=1)
    hook, out = _hook(tmp_path)
    config = make_config(
        source=src, more=f'[profiles.main.command_hooks]\nbefore_backup = ["{hook}"]\n'
    )
    result = cfbackup("-c", config, "backup", env={WarmDuplicity.OFF: "1"})
    assert result.returncode == 0, result
    assert _waiting(out.read_text()) == [], out.read_text()


def test_a_warm_duplicity_fits_only_its_own_environment():
    env = {"LANG": "C.UTF-8"}  # any environment: these test the process, not duplicity
    warm = WarmDuplicity(env)
    try:
        assert warm.fits(env)
        assert not warm.fits({**env, "SWIFT_HANDOVER_TOKEN": "t"})  # e.g. a token handed later
    finally:
        warm.close()
    # stopped at once (it holds nothing yet), or gone already: its pipe closed without arguments
    assert warm.process.returncode in (0, -15)
    assert not warm.fits(env)  # closed: never used after


def test_a_restore_runs_in_a_duplicity_started_before_its_plan(
    tmp_path, make_config, cfbackup, cli_env
):
    """A restore's duplicity starts while cfbackup reads the manifests and plans the volumes
    it fetches ahead (``prefetch.py``): strace sees it started with no command, and the
    restore is complete; with the switches (no warm start, no token to hand over: one started
    cold to be handed the token gets it with its arguments, on the same pipe) it starts with its
    command, after the plan."""
    import subprocess

    from support.cli import BIN
    from support.exectrace import run_traced

    src = make_awkward_tree(tmp_path / "src", big_mb=1)
    config = make_config(source=src)
    assert cfbackup("-c", config, "backup").returncode == 0
    gnupghome = tmp_path / "gnupg"
    gnupghome.mkdir(mode=0o700)
    env = {**cli_env, "GNUPGHOME": str(gnupghome)}

    def kill_agent():
        subprocess.run(
            ["gpgconf", "--homedir", str(gnupghome), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
        )

    switches = {WarmDuplicity.OFF: "1", "CFBACKUP_NO_HANDED_TOKEN": "1"}
    for switch, first in (({}, launcher.ARGV_FROM), (switches, "restore")):
        into = tmp_path / f"restored{len(switch)}"
        traced = run_traced(
            [str(BIN / "cfbackup"), "-c", str(config), "restore", "main", str(into)],
            env={**env, **switch},
            log=tmp_path / f"trace{len(switch)}.log",
            after_exit=kill_agent,
        )
        assert traced.returncode == 0, traced.stderr
        assert_same_tree(src, into)
        started = [r.argv[1] for r in traced.execs if r.program == "cfbackup-duplicity"]
        assert len(started) == 1 and started[0].startswith(first), started


def test_a_warm_duplicity_that_died_waiting_is_replaced_by_a_cold_one():
    """Killed (an admin, the OOM killer) or failed in its start-up: not used; the command runs
    in a cold duplicity, which says why if it fails too."""
    import signal

    from cfbackup.duplicity.run import run_duplicity

    env = {"LANG": "C.UTF-8"}  # any environment: these test the process, not duplicity
    warm = WarmDuplicity(env)
    warm.process.send_signal(signal.SIGKILL)
    warm.process.wait(timeout=10)
    assert not warm.fits(env)
    result = run_duplicity(lambda fd: ("duplicity", "--version"), env, warm=warm)
    assert result.returncode == 0 and any("duplicity 3." in line for line in result.output_tail)
    assert result.argv[1] == "--version"  # the cold one's


def test_an_error_before_the_arguments_stops_the_warm_duplicity_at_once():
    """An error (or Ctrl-C) between taking the warm duplicity and sending its arguments: it is
    stopped, its pipes closed once, and the error is the one raised, without a wait."""
    import time

    from cfbackup.duplicity.run import run_duplicity

    env = {"LANG": "C.UTF-8"}  # any environment: these test the process, not duplicity
    warm = WarmDuplicity(env)

    def refuse(fd):
        raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_duplicity(refuse, env, warm=warm)
    assert time.monotonic() - started < 15  # not the log reader's 30 s
    assert warm.process.returncode is not None
    warm.close()  # again, as the run's ExitStack does: nothing left to close


def test_a_check_that_fails_after_the_warm_start_still_stops_the_backup(
    tmp_path, make_config, cli_env
):
    """The warm duplicity starts before the checks authenticate (their token follows on its
    argument pipe): Swift refusing the credentials still ends the run with its one sentence,
    and that duplicity, started, never ran a command or touched the target."""
    from support.cli import BIN
    from support.exectrace import run_traced

    src = make_awkward_tree(tmp_path / "src", big_mb=1)
    config = make_config(source=src)
    traced = run_traced(
        [str(BIN / "cfbackup"), "-c", str(config), "backup"],
        env={**cli_env, "T_SWIFT_KEY": "not-the-key"},
        log=tmp_path / "trace.log",
    )
    assert traced.returncode != 0, traced.stdout
    errors = [line for line in traced.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "auth" in errors[0].lower(), traced.stderr
    started = [r.argv[1:] for r in traced.execs if r.program == "cfbackup-duplicity"]
    # one, started at cfbackup's first statement (early.py), never given a command
    assert started == [[started[0][0], launcher.ENV_FIRST]], started
    assert started[0][0].startswith(launcher.ARGV_FROM), started
    archive = tmp_path / "archive"
    assert not archive.exists() or not [p for p in archive.rglob("*") if p.is_file()]
