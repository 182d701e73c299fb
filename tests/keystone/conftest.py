"""The Keystone tier: a real Keystone (scripts/local_keystone.py) and a Swift that trusts it.

``keystone_tier`` sets up .venv-keystone when it is missing (scripts/setup_keystone.sh, about a
minute cold; instant when ready) and starts Keystone and a keystone-mode LocalSwift once per
session, with a short token lifetime (TOKEN_LIFETIME) so that every test here also lives through
token expiry. The ``cfbackup`` and ``cli_env`` fixtures override the top-level ones: they do not
start the tempauth Swift, and they check output against this tier's secrets and for tokens.

The token-expiry backups (test_token_expiry.py) last about a minute, mostly waiting on Swift's
ratelimit: when that test is selected they start with the session, in the background, and the
test collects them at the end.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from keystone_helpers import REPO, TOKEN_LIFETIME, ExpiryRuns, Tier, config_text
from local_keystone import LocalKeystone, start_with_swift


@pytest.fixture(scope="session")
def keystone_tier():
    setup = subprocess.run(
        [str(REPO / "scripts" / "setup_keystone.sh")], capture_output=True, text=True
    )
    assert setup.returncode == 0, f"scripts/setup_keystone.sh failed:\n{setup.stderr}"
    keystone = LocalKeystone(token_expiration=TOKEN_LIFETIME)
    swift = start_with_swift(keystone, updater_interval=300)  # usage freshness is not tested here
    try:
        yield Tier(keystone, swift)
    finally:
        swift.stop()
        keystone.stop()


@pytest.fixture(scope="session")
def token_expiry_runs(request, keystone_tier, tmp_path_factory):
    runs = ExpiryRuns(keystone_tier, tmp_path_factory.mktemp("expiry"))
    try:
        yield runs
    finally:
        runs.close()


@pytest.fixture(scope="session", autouse=True)
def _token_expiry_in_background(request):
    """Start the long token-expiry backups first when their test is selected."""
    if any(item.module.__name__ == "test_token_expiry" for item in request.session.items):
        request.getfixturevalue("token_expiry_runs")


@pytest.fixture
def tier(keystone_tier):
    return keystone_tier


@pytest.fixture
def container():
    return f"k-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def source(tmp_path):
    """A small tree to back up."""
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "app.conf").write_text("setting = 1\n")
    (src / "data.bin").write_bytes(os.urandom(200_000))
    return src


@pytest.fixture
def write_config(tmp_path, tier, container, source):
    """Write a config with profile ``main`` whose [swift] table is ``swift`` (a TOML snippet);
    ``extra`` adds profile keys; ``own_state`` gives it a state and archive dir of its own
    (for concurrent runs)."""

    def write(
        swift: str, *, extra: str = "", name: str = "config.toml", own_state: bool = False
    ) -> Path:
        base = tmp_path / Path(name).stem if own_state else tmp_path
        path = tmp_path / name
        path.write_text(config_text(base, source, container, swift, extra))
        path.chmod(0o600)
        return path

    return write


@pytest.fixture
def cli_env(tier, tmp_path):
    return tier.cli_env(tmp_path / "home")


@pytest.fixture
def cfbackup(cli_env, tier):
    """Run ``cfbackup ARGS`` as a user would; no traceback, secret or token in its output."""

    def run(*args: str, env: dict | None = None, timeout: float = 300):
        return tier.cfbackup({**cli_env, **(env or {})}, *args, timeout=timeout)

    return run
