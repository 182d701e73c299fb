"""Fixtures of the fault suite (tools in faultkit.py). Each test module sets
``pytestmark = pytest.mark.faults``, so ``pytest -m faults`` runs the suite alone.

They run on the session's Swift (tests/conftest.py: 3 replicas over 3 object servers), which
the outage tests stop and start again. Every test here is also checked, after it ran, for
secrets: in the argv of every process it started (sampled from /proc while it runs), in every
log file and in the run history it left.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from pathlib import Path

import pytest
from faultkit import (
    LEGACY_PROFILE,
    LocalSwift,
    Setup,
    all_secrets,
    assert_clean,
    legacy_config,
    native_config,
)
from procwatch import CmdlineWatcher
from webhook_receiver import Webhook


@pytest.fixture(autouse=True)
def no_secret_anywhere(tmp_path):
    """After each fault test: no secret in any process's argv, log file or run history."""
    with CmdlineWatcher(all_secrets()) as watcher:
        yield watcher  # tests that run duplicity for seconds assert watcher.saw(...)
    assert not watcher.leaks, f"secrets in argv: {watcher.leaks[:3]}"
    for path in list(tmp_path.rglob("*.log")) + list(tmp_path.rglob("history.sqlite3")):
        assert_clean(path.read_bytes().decode("utf-8", "replace"), str(path))


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(name)``: a 2 MB tmpfs mounted at tmp_path/name, unmounted after the test."""
    mounted: list[Path] = []

    def mount(name: str) -> Path:
        path = tmp_path / name
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path)], check=True)
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(["umount", "-l", str(path)], check=True, capture_output=True)


@pytest.fixture
def webhook():
    """A webhook receiver for the notify plugin (``make_setup(notify_url=webhook.url)``)."""
    receiver = Webhook()
    yield receiver
    receiver.close()


@pytest.fixture
def make_setup(tmp_path, cli_env, local_swift):
    """``make_setup(front_end, source=..., swift=..., profiles=(...), extra=..., encryption=...,
    swift_options=...)``: a profile on its own container; the source tree is empty unless
    given. ``swift_options`` are more keys of the profile's [swift] table (native configs)."""

    def make(
        front_end: str = "cfbackup",
        *,
        source: Path | None = None,
        swift: LocalSwift | None = None,
        profiles: tuple[str, ...] = ("main",),
        extra: str = "",
        encryption: str = 'passphrase_env = "T_PASSPHRASE"',
        static_options: str = "--volsize 1",
        notify_url: str | None = None,
        swift_options: str = "",
    ) -> Setup:
        swift = swift or local_swift
        source = source or tmp_path / "src"
        source.mkdir(parents=True, exist_ok=True)
        container = f"f-{uuid.uuid4().hex[:10]}"
        home = Path(cli_env["HOME"])
        if front_end == "dt-cf-backup":
            config = legacy_config(
                home / ".dt-cf-backup.conf",
                source=source,
                swift=swift,
                container=container,
                static_options=static_options,
            )
            state_dir = home / ".local" / "state" / "cfbackup"
            archive_dir = home / ".cache" / "cfbackup" / "duplicity"
            profile = LEGACY_PROFILE
        else:
            config = tmp_path / "config.toml"
            native_config(
                config,
                source=source,
                swift=swift,
                container=container,
                workdir=tmp_path,
                profiles=profiles,
                extra=extra,
                encryption=encryption,
                notify_url=notify_url,
                swift_options=swift_options,
            )
            state_dir, archive_dir, profile = tmp_path / "state", tmp_path / "archive", profiles[0]
        return Setup(
            front_end=front_end,
            config=config,
            source=source,
            container=container,
            state_dir=state_dir,
            archive_dir=archive_dir,
            profile=profile,
            swift=swift,
            env=dict(cli_env),
            workdir=tmp_path,
        )

    return make
