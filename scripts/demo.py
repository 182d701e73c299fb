#!/usr/bin/env python3
"""The demo: cfbackup against a real local Swift, start to finish, in about a minute.

Starts Swift (scripts/local_swift.py), makes a sample tree and a config (the embedded default
below), then runs the commands a user would: check, backup, an incremental, list, restore of one
file and of the whole tree, verify, status with quota use, and stops the servers.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))

from local_swift import LocalSwift  # noqa: E402

CONFIG = """\
# The demo's config: one profile backing up a sample tree to the local Swift.
state_dir = "{work}/state"

[profiles.demo]
source = "{work}/data"
target = "swift://demo-backups/host1"
archive_dir = "{work}/archive"
exclude = ["**/*.tmp"]

[profiles.demo.encryption]
passphrase_file = "{work}/passphrase"     # mode 0600, never on a command line

[profiles.demo.swift]
auth_url = "{auth_url}"
username = "{user}"
password_env = "DEMO_SWIFT_KEY"           # secrets come from env, files or commands

[profiles.demo.retention]
keep_full = 2
"""


def step(title: str, *args: str, env: dict, check: bool = True) -> None:
    print(
        f"\n\033[1m== {title}\033[0m\n$ cfbackup {' '.join(shlex.quote(a) for a in args)}",
        flush=True,
    )
    result = subprocess.run([str(BIN / "cfbackup"), *args], env=env)
    if check and result.returncode != 0:
        raise SystemExit(f"demo: step failed with exit code {result.returncode}")


def make_data(root: Path) -> None:
    (root / "etc" / "nginx").mkdir(parents=True)
    (root / "etc" / "nginx" / "nginx.conf").write_text("worker_processes auto;\n")
    (root / "home" / "ann" / "notes with spaces").mkdir(parents=True)
    (root / "home" / "ann" / "notes with spaces" / "todo — ünïcode.txt").write_text("backups!\n")
    (root / "var" / "www").mkdir(parents=True)
    (root / "var" / "www" / "index.html").write_text("<h1>hello</h1>\n" * 200)
    (root / "var" / "www" / "logo.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    (root / "var" / "www" / "cache.tmp").write_text("excluded\n")
    (root / "etc" / "current").symlink_to("nginx")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cfbackup-demo-") as tmp, LocalSwift() as swift:
        work = Path(tmp)
        print(f"demo: a real Swift is running at {swift.proxy_url} (tempauth, quotas on)")
        make_data(work / "data")
        passphrase = work / "passphrase"
        passphrase.write_text(os.urandom(16).hex() + "\n")
        passphrase.chmod(0o600)
        user, key = swift.users["admin"]
        config = work / "config.toml"
        config.write_text(CONFIG.format(work=work, auth_url=swift.auth_url, user=user))
        env = {**os.environ, "DEMO_SWIFT_KEY": key}
        print(f"demo: config {config}:\n" + textwrap.indent(config.read_text(), "    "))

        from swiftclient import client

        conn = client.Connection(authurl=swift.auth_url, user=user, key=key, auth_version="1")
        conn.put_container("demo-backups", headers={"X-Container-Meta-Quota-Bytes": "50000000"})

        c = ["-c", str(config)]
        step("is everything ready?", *c, "check", env=env)
        step("first backup (a full)", *c, "backup", env=env)
        (work / "data" / "etc" / "nginx" / "nginx.conf").write_text("worker_processes 4;\n")
        step("second backup (an incremental)", *c, "backup", env=env)
        step("what is in the backup", *c, "list", env=env)
        restore_to = work / "restored-file"
        step(
            "restore one file",
            *c,
            "restore",
            "demo",
            str(restore_to),
            "--path",
            "etc/nginx/nginx.conf",
            env=env,
        )
        print((restore_to / "etc" / "nginx" / "nginx.conf").read_text(), end="")
        step("restore the whole tree", *c, "restore", "demo", str(work / "restored"), env=env)
        diff = subprocess.run(
            ["diff", "-r", "--no-dereference", str(work / "data"), str(work / "restored")],
            capture_output=True,
            text=True,
        )
        print(
            "diff against the original: "
            + (
                "only the excluded *.tmp file"
                if "cache.tmp" in diff.stdout and diff.stdout.count("\n") == 1
                else diff.stdout or "identical"
            )
        )
        step("verify the backup against the files", *c, "verify", "--compare-data", env=env)
        step("status, with quota use", *c, "status", env=env)
        step("run history", *c, "history", env=env)
        print("\ndemo: done; stopping Swift.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
