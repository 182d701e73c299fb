"""Fixtures of the incident-recovery tests: the Nova/Glance emulator, a real BIND, configs, and
the cfbackup CLI run in-process with the server_image and ip_fixup plugins loaded."""

from __future__ import annotations

import contextlib
import io
import logging
import textwrap
import uuid
from pathlib import Path

import pytest
from recovery_support import load_config, plugin_manager  # noqa: F401
from support.bind import Bind
from support.openstack_emulator import OpenStackEmulator


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "recovery: incident recovery (server parking, IP fix-ups) against the "
        "Nova/Glance emulator, a real BIND and the local Swift",
    )


@pytest.fixture
def emulator():
    with OpenStackEmulator() as emu:
        yield emu


@pytest.fixture(scope="session")
def bind():
    with Bind(records={}) as server:
        yield server


@pytest.fixture
def clouds(emulator, tmp_path, monkeypatch):
    """A clouds.yaml naming the emulator as cloud ``emulator`` (found through
    OS_CLIENT_CONFIG_FILE, openstacksdk's own loader)."""
    path = tmp_path / "clouds.yaml"
    path.write_text(emulator.clouds_yaml("emulator"))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    monkeypatch.delenv("OS_CLOUD", raising=False)
    return path


@pytest.fixture
def host_name():
    """A unique host label, so tests sharing the session's BIND never collide."""
    return f"web-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def write_config(tmp_path):
    """Write a config with one profile per keyword section set; returns its path.

    ``profiles`` maps a profile name to a dict: ``target`` (default a file:// URL, so park
    records stay local), ``swift`` / ``server_image`` / ``ip_fixup`` (TOML body lines) and
    ``extra`` (more profile keys).
    """

    def write(profiles: dict[str, dict], name: str = "config.toml") -> Path:
        text = f'state_dir = "{tmp_path}/state"\n'
        for profile, parts in profiles.items():
            source = tmp_path / f"src-{profile}"
            source.mkdir(exist_ok=True)
            target = parts.get("target") or f"file://{tmp_path}/backup-{profile}"
            text += textwrap.dedent(f"""
                [profiles.{profile}]
                source = "{source}"
                target = "{target}"
                archive_dir = "{tmp_path}/archive"
                """) + parts.get("extra", "")
            for section in ("swift", "encryption", "server_image", "ip_fixup"):
                body = parts.get(section)
                if section == "encryption" and body is None:
                    body = 'mode = "none"'
                if body is not None:
                    text += f"\n[profiles.{profile}.{section}]\n" + textwrap.dedent(body) + "\n"
        path = tmp_path / name
        path.write_text(text)
        path.chmod(0o600)
        return path

    return write


class CliRun:
    def __init__(self, code: int, out: str, err: str):
        self.returncode, self.stdout, self.stderr = code, out, err
        self.output = out + err

    def __repr__(self) -> str:
        return f"<exit {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}>"


@pytest.fixture
def cli():
    """Run ``cfbackup ARGS`` in-process, with the plugins its entry points load (checked)."""
    from cfbackup.cli import main

    plugin_manager()  # fails the test when server_image or ip_fixup did not load

    def run(*args) -> CliRun:
        logger = logging.getLogger("cfbackup")
        handlers = list(logger.handlers)
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main([str(a) for a in args])
        finally:
            for handler in logger.handlers[:]:
                if handler not in handlers:
                    logger.removeHandler(handler)
        result = CliRun(code, out.getvalue(), err.getvalue())
        assert "Traceback" not in result.output, result
        return result

    return run


@pytest.fixture
def config(write_config, clouds, tmp_path):
    """``config(**server_image)``: a profile web1 with server_image and ip_fixup (a hosts
    file) sections, for the server park and unpark tests."""
    from recovery_support import server_image_section

    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")

    def make(**overrides):
        return write_config(
            {
                "web1": {
                    "server_image": server_image_section(**overrides),
                    "ip_fixup": f'update_hosts = true\nhosts_file = "{hosts}"\n',
                }
            }
        )

    return make
