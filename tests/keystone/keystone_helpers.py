"""What the Keystone tier's tests share besides fixtures (import it as ``keystone_helpers``)."""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from local_keystone import LocalKeystone
from support.cli import BIN, KEY_PASSPHRASE, PASSPHRASE, CliResult, stop_gpg_agent

REPO = Path(__file__).resolve().parents[2]
TOKEN_LIFETIME = 15  # [token] expiration, seconds
TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_\-]{20,}")  # a Keystone fernet token


class Tier:
    """The running Keystone and Swift, and every secret the tests hand out."""

    def __init__(self, keystone: LocalKeystone, swift):
        self.keystone = keystone
        self.swift = swift
        passwords = [user["password"] for user in keystone.identities["users"].values()]
        self.secrets = [PASSPHRASE, KEY_PASSPHRASE, *passwords]

    def application_credential(self, project: str = "backups", **kwargs) -> tuple[str, str]:
        """A new application credential of user ``backup`` on ``project``: (id, secret)."""
        cred_id, secret = self.keystone.create_application_credential(
            f"cfbackup-test-{uuid.uuid4().hex[:8]}", project=project, **kwargs
        )
        self.secrets.append(secret)
        return cred_id, secret

    def account(self, project: str) -> str:
        return f"AUTH_{self.keystone.project(project)['id']}"

    def proxy_log(self) -> list[str]:
        return (self.swift.log_dir / "proxy.log").read_text(errors="replace").splitlines()

    def assert_no_secret(self, text: str) -> None:
        for secret in self.secrets:
            assert secret not in text, f"a secret leaked: {text[:3000]}"
        assert not TOKEN.search(text), f"a token leaked: {text[:3000]}"

    # ---- the CLI, as a user runs it ---------------------------------------------------
    def cli_env(self, home: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "CFBACKUP_"))}
        env.update(
            T_PASSPHRASE=PASSPHRASE,
            T_KS_PASSWORD=self.keystone.user("backup")["password"],
            HOME=str(home),
        )
        return env

    def cfbackup(self, env: dict[str, str], *args, timeout: float = 300) -> CliResult:
        """Run ``cfbackup ARGS``; no traceback, secret or token may be in its output."""
        completed = subprocess.run(
            [str(BIN / "cfbackup"), *map(str, args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        result = CliResult(completed)
        assert "Traceback" not in result.output, result
        self.assert_no_secret(result.output)
        return result


def config_text(base: Path, source: Path, container: str, swift: str, extra: str = "") -> str:
    """A config with one profile ``main``; no retention run after a backup (shorter runs)."""
    text = textwrap.dedent(f"""\
        state_dir = "{base}/state"

        [profiles.main]
        source = "{source}"
        target = "swift://{container}/host1"
        archive_dir = "{base}/archive"
        """)
    text += textwrap.dedent(extra)
    text += "\n[profiles.main.retention]\nafter_backup = false\n"
    text += "\n[profiles.main.swift]\n" + textwrap.dedent(swift)
    text += '\n[profiles.main.encryption]\npassphrase_env = "T_PASSPHRASE"\n'
    return text


def password_swift(tier: Tier, **overrides: str) -> str:
    """The [swift] table of user ``backup`` with a password on project ``backups``."""
    keys = {
        "auth_version": "3",
        "auth_url": tier.keystone.url,
        "username": "backup",
        "password_env": "T_KS_PASSWORD",
        "user_domain_name": "BackupDomain",
        "project_name": "backups",
        "project_domain_name": "BackupDomain",
        "region_name": "RegionOne",
        **overrides,
    }
    return "".join(f'{k} = "{v}"\n' for k, v in keys.items() if v is not None)


def appcred_swift(tier: Tier, cred_id: str, **overrides: str) -> str:
    """The [swift] table of an application credential (its secret in T_KS_APPCRED)."""
    keys = {
        "auth_url": tier.keystone.url,
        "application_credential_id": cred_id,
        "application_credential_secret_env": "T_KS_APPCRED",
        "region_name": "RegionOne",
        **overrides,
    }
    return "".join(f'{k} = "{v}"\n' for k, v in keys.items() if v is not None)


def run_logs(base: Path) -> str:
    """Every cfbackup run log under ``base``/state/logs."""
    logs = sorted((base / "state" / "logs").glob("*.log"))
    return "\n".join(p.read_text(errors="replace") for p in logs)


class ExpiryRuns:
    """Two backups that outlive several token lifetimes, one with a password (project
    expiry-password) and one with an application credential (expiry-appcred), started in the
    background so that their throttled uploads overlap the tier's other tests.

    Swift's own ratelimit middleware stretches them, not a fake: each account's writes are
    limited through X-Account-Sysmeta-Global-Write-Ratelimit (WRITES_PER_SECOND), so VOLUMES
    one-MB volumes take about VOLUMES / WRITES_PER_SECOND seconds however fast the machine is.
    """

    WRITES_PER_SECOND = 0.5
    VOLUMES = 20
    PROJECTS = ("expiry-password", "expiry-appcred")

    def __init__(self, tier: Tier, base: Path):
        self.tier, self.base = tier, base
        self.source = base / "big"
        self.source.mkdir(parents=True)
        for index in range(self.VOLUMES):
            (self.source / f"part{index:02}.bin").write_bytes(os.urandom(1024 * 1024))
        cred_id, self.secret = tier.application_credential(project="expiry-appcred")
        swift = {
            "expiry-password": password_swift(tier, project_name="expiry-password"),
            "expiry-appcred": appcred_swift(tier, cred_id),
        }
        self.configs = {}
        for project in self.PROJECTS:
            folder = base / project
            folder.mkdir()
            config = folder / "config.toml"
            config.write_text(
                config_text(
                    folder,
                    self.source,
                    f"expiry-{uuid.uuid4().hex[:8]}",
                    swift[project],
                    extra="volsize = 1\n",
                )
            )
            config.chmod(0o600)
            self.configs[project] = config
            # before the proxy first sees the account: it caches account info
            tier.swift.set_account_sysmeta(
                tier.account(project),
                {"X-Account-Sysmeta-Global-Write-Ratelimit": str(self.WRITES_PER_SECOND)},
            )
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="expiry")
        self.futures: dict[str, Future] = {
            project: self._pool.submit(self._backup, project) for project in self.PROJECTS
        }

    def _backup(self, project: str) -> tuple[CliResult, float]:
        env = {**self.tier.cli_env(self.base), "T_KS_APPCRED": self.secret}
        started = time.monotonic()
        result = self.tier.cfbackup(env, "-c", self.configs[project], "backup")
        return result, time.monotonic() - started

    def results(self) -> dict[str, tuple[CliResult, float]]:
        return {project: future.result(timeout=600) for project, future in self.futures.items()}

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        stop_gpg_agent(self.base / ".gnupg")  # HOME is base: the backups' agent
