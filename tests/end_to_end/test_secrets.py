"""No secret reaches argv (checked in /proc while duplicity runs), a log, or the output,
even with duplicity at debug verbosity, which logs its connection arguments."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from support.cli import BIN, assert_no_secret, secret_values
from support.trees import make_awkward_tree

pytestmark = pytest.mark.swift


def _cmdlines() -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
    return found


def test_no_secret_in_argv_logs_or_output(tmp_path, make_config, cli_env, local_swift):
    src = make_awkward_tree(tmp_path / "src", big_mb=20)
    config = make_config(source=src, extra='verbosity = "debug"\nvolsize = 5\n')
    process = subprocess.Popen(
        [str(BIN / "cfbackup"), "-c", str(config), "backup"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen_duplicity = False
    secrets = secret_values(local_swift)
    while process.poll() is None:
        for pid, cmdline in _cmdlines().items():
            if "duplicity" in cmdline and "backup" in cmdline:
                seen_duplicity = True
                for secret in secrets:
                    assert secret not in cmdline, f"secret in argv of {pid}: {cmdline}"
        time.sleep(0.05)
    out, err = process.communicate()
    assert process.returncode == 0, err
    assert seen_duplicity, "never saw the duplicity child to check its argv"
    assert_no_secret(out + err, local_swift)
    logs = list((tmp_path / "state" / "logs").glob("*.log"))
    assert logs
    for log in logs:
        assert oct(log.stat().st_mode & 0o777) == "0o600"
        text = log.read_text()
        assert "SWIFT" in text or "swift" in text  # the debug output really is in the log
        assert_no_secret(text, local_swift)


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
