"""cfbackup's own Swift client loads without python-keystoneclient (0.2 s of every run)."""

from __future__ import annotations

import os
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
    """What duplicity's interpreter imports when cfbackup starts it, with a plugin's start-up
    file and a sitecustomize of the system's behind ours (both must run, once)."""
    from cfbackup.duplicity.run import startup_environment, startup_file

    system = tmp_path / "system"
    system.mkdir(exist_ok=True)
    (system / "sitecustomize.py").write_text("import sys\nsys.chained = True\n")
    plugin = tmp_path / "plugin_patch.py"
    plugin.write_text("import sys\nsys.plugin_runs = getattr(sys, 'plugin_runs', 0) + 1\n")
    with startup_file(plugin):
        env = startup_environment({"SWIFT_AUTHVERSION": auth_version, "PYTHONPATH": ""})
    env["PYTHONPATH"] += f":{system}"
    env["PATH"] = "/usr/bin:/bin"
    result = subprocess.run(
        [sys.executable, "-c", DUPLICITY_PROBE + "print(sys.plugin_runs)\n"],
        env={**env, "CFBACKUP_DUPLICITY_STARTUP": str(plugin)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr, result.stderr
    return result.stdout.split()


def test_duplicity_skips_keystoneclient_with_v1_auth_only(tmp_path):
    assert _duplicity_interpreter(tmp_path, "1") == ["False", "True", "1"]
    assert _duplicity_interpreter(tmp_path, "3") == ["True", "True", "1"]


def test_the_quota_plugins_patch_loads_through_the_startup_list(tmp_path):
    """quota_guard's sized uploads (shim/sized_uploads.py) patch swiftclient inside duplicity."""
    from cfbackup_quota_guard import SHIM

    from cfbackup.duplicity.run import startup_environment, startup_file

    with startup_file(SHIM):
        env = startup_environment(
            {"SWIFT_AUTHVERSION": "1", "PYTHONPATH": "", "PATH": "/usr/bin:/bin"}
        )
        env["CFBACKUP_DUPLICITY_STARTUP"] = os.environ["CFBACKUP_DUPLICITY_STARTUP"]
    probe = (
        "import duplicity.backends.swiftbackend as b, swiftclient.client as c\n"
        "print(getattr(c.Connection.put_object, 'cfbackup_patched', False),"
        " getattr(b.SwiftBackend._put, 'cfbackup_patched', False))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "Error" not in result.stderr, result.stderr
    assert result.stdout.split() == ["True", "True"]
