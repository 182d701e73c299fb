"""restore, verify, list, prune and cleanup hand their checks' login to duplicity as backups do
(``actions/common.duplicity``, ``patches/handed_token.py``): the token goes on the launcher's
argument pipe, never in a process's environment or command line (``/proc/PID/environ`` keeps
what a process started with, whatever it unsets later), nor in a log line at debug verbosity,
nor in a file left behind. Each duplicity is watched in /proc while it runs."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
from support import proxylog
from support.cli import BIN
from support.trees import make_awkward_tree

pytestmark = pytest.mark.swift

TOKEN = re.compile(rb"AUTH_tk[0-9a-f]{32}")  # a tempauth token


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(proc.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _watched(argv: list[str], env: dict[str, str]) -> tuple[int, list[str], list[str]]:
    """Run ``argv``; read the environ and cmdline of it and every process under it every
    20 ms. Returns its exit code, the command lines of the duplicity processes seen, and where
    a token was found."""
    process = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    seen: set[str] = set()
    leaks: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for pid in _descendants(process.pid):
                for part in ("environ", "cmdline"):
                    try:
                        data = Path(f"/proc/{pid}/{part}").read_bytes()
                    except OSError:
                        continue
                    if part == "cmdline" and b"duplicity" in data:
                        seen.add(data.replace(b"\0", b" ").decode(errors="replace"))
                    if TOKEN.search(data):
                        leaks.append(f"{part} of {pid}: {data[:200]!r}")
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    output, _ = process.communicate(timeout=300)
    done.set()
    thread.join()
    assert not TOKEN.search(output), output
    return process.returncode, sorted(seen), leaks


def test_the_handed_token_is_in_no_environment_argv_log_or_file(
    tmp_path, make_config, cfbackup, cli_env, local_swift
):
    src = make_awkward_tree(tmp_path / "src", big_mb=2)
    more = '[profiles.main.retention]\nafter_backup = false\nremove_older_than = "1s"\n'
    # no prefetch: the restore's duplicity downloads from Swift itself, with the token
    config = make_config(
        source=src, extra='restore_prefetch = 0\nverbosity = "debug"\nvolsize = 1\n', more=more
    )
    for number in range(2):
        (src / "plain.txt").write_text(f"version {number}\n")
        assert cfbackup("-c", config, "backup", "--full").returncode == 0
        time.sleep(1.1)  # duplicity's times have one-second resolution
    env = {**cli_env, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    for args in (
        ("restore", "main", str(tmp_path / "restored")),
        ("verify", "main"),
        ("list", "main"),
        ("cleanup",),
        ("prune",),
    ):
        skip = proxylog.length(local_swift)
        code, duplicities, leaks = _watched([str(BIN / "cfbackup"), "-c", str(config), *args], env)
        assert code == 0, args
        assert duplicities, f"{args}: no duplicity seen in /proc"
        assert not leaks, (args, leaks)
        requests = proxylog.requests_since(local_swift, skip)
        logins = sum(1 for _m, path, _s in requests if path.startswith("/auth/"))
        # the token reached duplicity: it logged in no more (prune's deletes check: its own)
        assert logins == (2 if args[0] == "prune" else 1), (args, requests)
    assert (tmp_path / "restored" / "plain.txt").read_text() == "version 1\n"
    files = [p for root in ("state", "archive", "tmp") for p in (tmp_path / root).rglob("*")]
    logs = [p for p in files if p.suffix == ".log"]
    assert logs and any("handed-token" in p.read_text() for p in logs)  # debug: it ran
    for path in files:
        if path.is_file() and not path.is_symlink():
            assert not TOKEN.search(path.read_bytes()), f"a token in {path}"
