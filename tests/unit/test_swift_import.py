"""Neither cfbackup's Swift client nor duplicity (v1 auth) loads python-keystoneclient (0.2 s of
every run), and duplicity's uploads carry a Content-Length."""

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


LAUNCHER_PROBE = """
import sys
from cfbackup.duplicity import launcher
launcher._apply()  # what launcher.main does before it runs duplicity
import swiftclient.client
print("keystoneclient" in sys.modules and sys.modules["keystoneclient"] is not None)
print(getattr(sys, "chained", False))
"""


def _launcher(tmp_path, env: dict[str, str], probe: str = "") -> list[str]:
    """What duplicity's interpreter imports when cfbackup's launcher starts it, with the
    environment run.py gives it and a sitecustomize of the system's on its path (it must run:
    the launcher shadows nothing)."""
    from cfbackup.duplicity import launcher

    system = tmp_path / "system"
    system.mkdir(exist_ok=True)
    (system / "sitecustomize.py").write_text("import sys\nsys.chained = True\n")
    env, _ = launcher.environment({**env, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(system)})
    result = subprocess.run(
        [sys.executable, "-c", LAUNCHER_PROBE + probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr, result.stderr
    return result.stdout.split()


def test_duplicity_skips_keystoneclient_with_v1_auth_only(tmp_path):
    assert _launcher(tmp_path, {"SWIFT_AUTHVERSION": "1"}) == ["False", "True"]
    assert _launcher(tmp_path, {"SWIFT_AUTHVERSION": "3"}) == ["True", "True"]


def test_uploads_are_sized_in_every_duplicity_unless_switched_off(tmp_path):
    """Core's sized-uploads patch is on for every run, whatever the plugins."""
    probe = (
        "import duplicity.backends.swiftbackend as b\n"
        "print(getattr(swiftclient.client.Connection.put_object, 'cfbackup_patched', False),"
        " getattr(b.SwiftBackend._put, 'cfbackup_patched', False))\n"
    )
    on = _launcher(tmp_path, {"SWIFT_AUTHVERSION": "1"}, probe)
    assert on[2:] == ["True", "True"]
    off = _launcher(tmp_path, {"SWIFT_AUTHVERSION": "1", "CFBACKUP_NO_SIZED_UPLOADS": "1"}, probe)
    assert off[2:] == ["False", "False"]


def test_uploads_the_backend_does_not_report_are_counted_for_progress(tmp_path):
    """duplicity's swift backend reports no transferred bytes: the upload-progress patch counts
    an upload once it is done (a backend that reports is left alone)."""
    probe = (
        "from duplicity import backend, log, progress\n"
        "log.setup()\n"
        "class Tracker:\n"
        "    total_bytecount = 0\n"
        "progress.tracker = Tracker()\n"
        "seen = []\n"
        "def report(done, total):\n"
        "    seen.append(f'{done}/{total}')\n"
        "    progress.tracker.total_bytecount += done\n"
        "progress.report_transfer = report\n"
        "class Source:\n"
        "    def getsize(self):\n"
        "        return 1234\n"
        "class Silent:\n"
        "    def _put(self, source_path, remote_filename):\n"
        "        pass\n"
        "class Reporting:\n"
        "    def _put(self, source_path, remote_filename):\n"
        "        progress.report_transfer(1234, 1234)\n"
        "backend.BackendWrapper(Silent()).put(Source(), b'vol1.difftar.gpg')\n"
        "print(','.join(seen))\n"
        "seen.clear()\n"
        "backend.BackendWrapper(Reporting()).put(Source(), b'vol2.difftar.gpg')\n"
        "print(','.join(seen))\n"
    )
    words = _launcher(tmp_path, {"SWIFT_AUTHVERSION": "1"}, probe)
    assert words[2:] == ["0/1234,1234/1234", "1234/1234"]  # counted once, and only if unreported
