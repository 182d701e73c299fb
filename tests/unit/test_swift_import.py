"""cfbackup's own Swift client loads without python-keystoneclient (0.2 s of every run)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from cfbackup import swift
client = swift.load_client()
assert client.Connection and client.ClientException
assert "keystoneclient" not in sys.modules, "keystoneclient was imported"
import keystoneclient.v3  # still importable afterwards, for whoever needs it
print("ok")
"""


def test_swiftclient_loads_without_keystoneclient_and_leaves_it_importable():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


DUPLICITY_PROBE = """
import sys
import swiftclient.client
print("keystoneclient" in sys.modules and sys.modules["keystoneclient"] is not None)
print(getattr(sys, "chained", False))
"""


def _duplicity_interpreter(tmp_path, auth_version: str) -> list[str]:
    """What duplicity's interpreter imports when cfbackup starts it, with a sitecustomize of
    the system's behind ours (ours must run it)."""
    from cfbackup.duplicity.run import startup_environment

    system = tmp_path / "system"
    system.mkdir(exist_ok=True)
    (system / "sitecustomize.py").write_text("import sys\nsys.chained = True\n")
    env = startup_environment({"SWIFT_AUTHVERSION": auth_version, "PYTHONPATH": ""})
    env["PYTHONPATH"] += f":{system}"
    env["PATH"] = "/usr/bin:/bin"
    result = subprocess.run(
        [sys.executable, "-c", DUPLICITY_PROBE], env=env, capture_output=True, text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_duplicity_skips_keystoneclient_with_v1_auth_only(tmp_path):
    assert _duplicity_interpreter(tmp_path, "1") == ["False", "True"]
    assert _duplicity_interpreter(tmp_path, "3") == ["True", "True"]
