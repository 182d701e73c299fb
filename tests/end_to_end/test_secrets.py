"""No secret reaches an argv, an environment it does not belong in (every program started is
recorded by strace), a log, or the output, even with duplicity at debug verbosity, which logs
its connection arguments."""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest
from support.cli import BIN, PASSPHRASE, assert_no_secret, secret_values
from support.trees import make_awkward_tree

from cfbackup.duplicity.early import ROOM
from cfbackup.duplicity.launcher import ENV_FIRST
from cfbackup.errors import ExitCode
from cfbackup.execute import CFBACKUP_ENV, PASSTHROUGH_ENV

pytestmark = pytest.mark.swift


HOOK = """#!/bin/sh
# a command hook: says it ran; fails when the flag file exists (to make a run fail)
echo "hook $1 ran"
[ ! -e "{flag}" ]
"""
SECRET_COMMAND = """#!/bin/sh
exec cat "{secret_file}"
"""
# what a command hook may find in its environment (docs/plugins/command_hooks.md)
HOOK_VARIABLES = {*PASSTHROUGH_ENV, "CFBACKUP_PROFILE", "CFBACKUP_ACTION", "CFBACKUP_ERROR"}
# the two processes that need a secret: cfbackup (given them by the test, as a user does) and
# duplicity (they travel in its environment, never in argv; the checks' token not even there)
WITH_SECRETS = ("cfbackup", "cfbackup-duplicity")
TOKEN = re.compile(r"AUTH_tk[0-9a-f]{32}")  # a tempauth token


def test_every_program_started_is_recorded_and_none_gets_a_secret(
    tmp_path, make_config, cli_env, local_swift
):
    """strace records every execve of backup, restore, verify and a failing backup: argv and
    environment of cfbackup, duplicity, each gpg and gpg-agent, the passphrase command and
    each command hook. No secret in any argv; secrets only in cfbackup's and duplicity's
    environment; command hooks get exactly the documented minimal environment."""
    from support.exectrace import run_traced

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    flag = tmp_path / "fail-the-hook"
    secret_file = tmp_path / "passphrase"
    secret_file.write_text(PASSPHRASE + "\n")
    secret_file.chmod(0o600)
    for name, text in (
        ("cfb-hook", HOOK.format(flag=flag)),
        ("cfb-passphrase", SECRET_COMMAND.format(secret_file=secret_file)),
    ):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    hooks = "".join(
        f'{key} = ["cfb-hook {key}"]\n'
        for key in ("before_backup", "after_backup", "before_restore", "after_restore", "on_error")
    )
    src = make_awkward_tree(tmp_path / "src", big_mb=1)
    config = make_config(
        source=src,
        encryption='passphrase_command = "cfb-passphrase"',
        # no upload processes: they are duplicity's own, with its environment
        # (test_upload_workers.py counts them), and "auto" may start one on a loaded loopback
        extra="volsize = 1\nupload_workers = 0\n",
        more=f"[profiles.main.command_hooks]\n{hooks}",
    )
    gnupghome = tmp_path / "gnupg"  # a new agent is started, and recorded, under the trace
    gnupghome.mkdir(mode=0o700)
    env = {**cli_env, "PATH": f"{bin_dir}:{cli_env['PATH']}", "GNUPGHOME": str(gnupghome)}

    def kill_agent():
        subprocess.run(
            ["gpgconf", "--homedir", str(gnupghome), "--kill", "gpg-agent"], env=env, check=False
        )

    execs, hook_runs, handed, started_early = [], [], [], []
    for n, (args, code) in enumerate(
        (
            (("backup",), 0),
            (("restore", "main", tmp_path / "restored"), 0),
            (("verify", "main"), 0),
            (("backup",), ExitCode.REFUSED),  # before_backup fails: on_error runs
        )
    ):
        if code:
            flag.touch()
        traced = run_traced(
            [str(BIN / "cfbackup"), "-c", str(config), *map(str, args)],
            env=env,
            log=tmp_path / f"trace-{n}.log",
            after_exit=kill_agent,
        )
        assert traced.returncode == code, traced.stderr
        assert_no_secret(traced.stdout + traced.stderr, local_swift)
        execs += traced.execs
        if code == 0:  # each duplicity waits for the checks' token on its argument pipe
            handed += [
                r.env.get("SWIFT_HANDOVER_LATE", "")
                for r in traced.execs
                if r.program == "cfbackup-duplicity" and ENV_FIRST not in r.argv
            ]
        # a backup's duplicity started before the config was read: its whole environment,
        # the secrets and the late hand-over included, comes on its argument pipe
        started_early += [r for r in traced.execs if ENV_FIRST in r.argv]
        hook_runs += [e for e in traced.execs if e.argv[:2] == ["/bin/sh", "-c"]]

    secrets = secret_values(local_swift)
    for record in execs:
        for secret in secrets:
            assert not any(secret in arg for arg in record.argv), f"secret in argv: {record}"
            if record.program not in WITH_SECRETS:
                assert not any(secret in value for value in record.env.values()), (
                    f"secret in the environment of {record}: "
                    f"{[k for k, v in record.env.items() if secret in v]}"
                )
    # the token of the checks goes to duplicity on its argument pipe: in no argv, no environment
    for record in execs:
        assert not any(TOKEN.search(arg) for arg in record.argv), f"token in argv: {record}"
        assert not any(TOKEN.search(value) for value in record.env.values()), (
            f"token in the environment of {record}"
        )
    assert len(handed) >= 2 and all(late == "1" for late in handed), handed
    assert len(started_early) == 2, started_early  # the two backups'
    for record in started_early:
        assert set(record.env) <= {*PASSTHROUGH_ENV, *CFBACKUP_ENV, ROOM}, record
    programs = [r.program for r in execs]
    # the trace saw what it was meant to see: four cfbackup runs, duplicity for the first
    # three, gpg under it, the agent gpg starts, the passphrase command each time
    assert programs.count("cfbackup") == 4, programs
    assert programs.count("cfbackup-duplicity") >= 3, programs
    assert programs.count("gpg") >= 3 and "gpg-agent" in programs, programs
    assert programs.count("cfb-passphrase") >= 4, programs
    ran = [r.argv[2] for r in hook_runs]
    assert ran == [
        "cfb-hook before_backup",
        "cfb-hook after_backup",
        "cfb-hook before_restore",
        "cfb-hook after_restore",
        "cfb-hook before_backup",
        "cfb-hook on_error",
    ], ran
    for record in hook_runs:
        extra = set(record.env) - HOOK_VARIABLES
        assert not extra, f"{record}: variables a hook must not get: {sorted(extra)}"
        assert record.env["CFBACKUP_PROFILE"] == "main"
        assert record.env["CFBACKUP_ACTION"] in ("backup", "restore")
    assert (
        "before_backup command 'cfb-hook before_backup' exited with code 1"
        in (hook_runs[-1].env["CFBACKUP_ERROR"])
    )


def test_no_secret_in_logs_or_output_at_debug_verbosity(
    tmp_path, make_config, cfbackup, local_swift
):
    """duplicity's swift backend logs its connection arguments, password included, at debug
    level: the run log holds that output, masked."""
    src = make_awkward_tree(tmp_path / "src", big_mb=1)
    config = make_config(source=src, extra='verbosity = "debug"\n')
    result = cfbackup("-c", config, "backup")
    assert result.returncode == 0, result
    logs = list((tmp_path / "state" / "logs").glob("*.log"))
    assert logs
    for log in logs:
        assert oct(log.stat().st_mode & 0o777) == "0o600"
        text = log.read_text()
        assert "SWIFT" in text or "swift" in text  # the debug output really is in the log
        assert_no_secret(text, local_swift)
        assert not TOKEN.search(text), "a token in the run log"


def test_secret_from_file_and_command(tmp_path, make_config, cfbackup, cli_env):
    from support.cli import PASSPHRASE

    secret_file = tmp_path / "passphrase"
    secret_file.write_text(PASSPHRASE + "\n")
    secret_file.chmod(0o600)
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src, encryption=f'passphrase_file = "{secret_file}"')
    assert cfbackup("-c", config, "backup").returncode == 0
    command = f'passphrase_command = "cat {secret_file}"'
    config = make_config(source=src, encryption=command, name="c2.toml")
    result = cfbackup("-c", config, "restore", "main", tmp_path / "out")
    assert result.returncode == 0, result
    assert (tmp_path / "out" / "plain.txt").exists()


def _holding(value: str) -> list[str]:
    """The processes of this user whose environment holds ``value`` (this one aside)."""
    import os
    from pathlib import Path

    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if value.encode() in (proc / "environ").read_bytes():
                found.append(
                    (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
        except OSError:
            continue
    return found


def test_secrets_in_cfbackup_variables_reach_no_child(
    tmp_path, make_config, cfbackup, cli_env, local_swift
):
    """``config migrate`` tells users to keep secrets in CFBACKUP_ENCRYPTION_PASSPHRASE and
    CFBACKUP_SWIFT_PASSWORD: a hook, gpg and the gpg-agent it starts never get them, nor any
    other CFBACKUP_* variable cfbackup does not define."""
    dump = tmp_path / "hook-env"
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(
        source=src,
        encryption='passphrase_env = "CFBACKUP_ENCRYPTION_PASSPHRASE"',
        more=f'[profiles.main.command_hooks]\nbefore_backup = ["env > {dump}"]\n',
    )
    config.write_text(config.read_text().replace('"T_SWIFT_KEY"', '"CFBACKUP_SWIFT_PASSWORD"'))
    key = local_swift.users["admin"][1]
    passphrase = f"own-Passphrase-{uuid.uuid4().hex}"  # held by no other test's processes
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=cli_env, check=False)
    env = {
        "CFBACKUP_ENCRYPTION_PASSPHRASE": passphrase,
        "CFBACKUP_SWIFT_PASSWORD": key,
        "CFBACKUP_MY_NOTE": "not cfbackup's",
    }
    result = cfbackup("-c", config, "backup", env=env)
    assert result.returncode == 0, result
    seen = dict(line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line)
    assert seen["CFBACKUP_ACTION"] == "backup"
    given = {"CFBACKUP_PROFILE", "CFBACKUP_ACTION"}
    leaked = {k for k in seen if k.startswith("CFBACKUP_")} - given
    assert not leaked, leaked
    assert passphrase not in dump.read_text() and key not in dump.read_text()
    assert not _holding(passphrase)  # the gpg-agent the run started outlives it
