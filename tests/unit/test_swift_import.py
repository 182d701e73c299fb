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
