"""Helpers for the quota guard tests: a profile on the real local Swift, run through the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

CFBACKUP = Path(sys.executable).parent / "cfbackup"

QG_PASSPHRASE = f"quota-guard-{secrets.token_hex(6)}"  # drawn per process: none in the code


class QuotaProfile:
    """One profile in its own config file, backing up ``source`` to a fresh container."""

    def __init__(self, swift, base: Path, gpg_home: Path, *, who="user", encrypted=False,
                 volsize=1, include=(), exclude=(), prefix="", plugin=None,
                 profile_lines=()):  # fmt: skip
        self.swift, self.base, self.who = swift, base, who
        self.container = f"quota-{uuid.uuid4().hex[:12]}"
        self.prefix = prefix
        self.source = base / "src"
        self.source.mkdir(parents=True, exist_ok=True)
        self.config = base / "config.toml"
        user, key = swift.users[who]
        self.env = dict(os.environ, QG_PASSPHRASE=QG_PASSPHRASE, QG_SWIFT_KEY=key)
        target = f"swift://{self.container}" + (f"/{prefix}" if prefix else "")
        lines = [
            f'state_dir = "{base / "state"}"',
            "[profiles.qg]",
            f'source = "{self.source}"',
            f'target = "{target}"',
            f'archive_dir = "{base / "archive"}"',
            f"volsize = {volsize}",
            f"include = {json.dumps(list(include))}",
            f"exclude = {json.dumps(list(exclude))}",
            *profile_lines,
            "[profiles.qg.encryption]",
            f'gpg_home = "{gpg_home}"',
            'passphrase_env = "QG_PASSPHRASE"' if encrypted else 'mode = "none"',
            "[profiles.qg.retention]",
            "after_backup = false",  # a second duplicity run per backup: not what is tested here
            "[profiles.qg.swift]",
            f'auth_url = "{swift.auth_url}"',
            f'username = "{user}"',
            'password_env = "QG_SWIFT_KEY"',
        ]
        if plugin:
            lines.append("[profiles.qg.quota_guard]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in plugin.items()]
        self.config.write_text("\n".join(lines) + "\n")

    def cli(self, *args, check=None, env=None) -> subprocess.CompletedProcess:
        """``cfbackup -c CONFIG ARGS`` as a user runs it; ``check`` is the expected exit code."""
        done = subprocess.run(
            [str(CFBACKUP), "-c", str(self.config), *args],
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check is not None:
            assert done.returncode == check, (
                f"cfbackup {' '.join(args)} exited {done.returncode}, expected {check}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
        return done

    def conn(self, who=None):
        from swiftclient import client

        user, key = self.swift.users[who or self.who]
        return client.Connection(
            authurl=self.swift.auth_url, user=user, key=key, auth_version="1", retries=0
        )

    def head(self) -> dict:
        return self.conn().head_container(self.container)

    def objects(self) -> list[dict]:
        from swiftclient.exceptions import ClientException

        try:
            return self.conn().get_container(self.container, full_listing=True)[1]
        except ClientException as error:
            if error.http_status == 404:
                return []
            raise

    def uploaded_bytes(self) -> int:
        return sum(o["bytes"] for o in self.objects())

    def set_container_quota(self, quota_bytes=None, quota_count=None):
        headers = {
            "X-Container-Meta-Quota-Bytes": "" if quota_bytes is None else str(quota_bytes),
            "X-Container-Meta-Quota-Count": "" if quota_count is None else str(quota_count),
        }
        self.conn().put_container(self.container, headers=headers)

    def next_backup(self) -> dict:
        """What ``quota show --estimate --json`` says of the next backup, asked in-process
        (the same code as the CLI, without a second of interpreter start per call)."""
        from types import SimpleNamespace

        from cfbackup_quota_guard import guard

        from cfbackup.cli.context import CliContext

        saved = {k: os.environ.get(k) for k in ("QG_PASSPHRASE", "QG_SWIFT_KEY")}
        os.environ.update({k: self.env[k] for k in saved})
        try:
            context = CliContext()
            context.args = SimpleNamespace(config=str(self.config))
            profile = context.config.profile("qg")
            settings = {"check_account": True, **profile.plugin_config("quota_guard")}
            found = guard.assess(profile, settings, state_dir=context.config.state_dir)
            return found.as_dict()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 (files), "dir" or "link:TARGET", for byte-identical checks."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def random_files(root: Path, count: int, size: int, *, per_dir: int = 100, seed: int = 0):
    """``count`` files of ``size`` incompressible bytes in folders of ``per_dir``."""
    import random

    rng = random.Random(seed)
    for i in range(count):
        folder = root / f"d{i // per_dir:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}.bin").write_bytes(rng.randbytes(size))
