"""Rackspace ServiceNet with v1 auth: the snet- storage host, in cfbackup and in duplicity.

The requests really going to that host are shown end to end by the corpus test (a relay at the
snet- name, tests/end_to_end/test_legacy_corpus.py); here: the rewrite and its wiring.
"""

from __future__ import annotations

import subprocess
import sys

from cfbackup.config import build_config
from cfbackup.duplicity.environment import swift_environment
from cfbackup.servicenet import ENVIRONMENT, servicenet_url


def test_the_storage_host_gets_the_snet_prefix_once():
    url = "https://storage101.dfw1.clouddrive.com/v1/MossoCloudFS_abc"
    assert servicenet_url(url) == "https://snet-storage101.dfw1.clouddrive.com/v1/MossoCloudFS_abc"
    assert servicenet_url(servicenet_url(url)) == servicenet_url(url)
    assert (
        servicenet_url("http://127.0.0.1:8080/v1/AUTH_t") == "http://snet-127.0.0.1:8080/v1/AUTH_t"
    )


def _profile(interface: str):
    raw = {
        "profiles": {
            "p": {
                "source": "/",
                "target": "swift://box",
                "swift": {
                    "auth_url": "http://a/auth/v1.0",
                    "username": "u:v",
                    "password_env": "T_KEY",
                    "interface": interface,
                },
            }
        }
    }
    return build_config(raw, path=None).profiles["p"]


def test_a_v1_profile_asks_duplicity_for_servicenet(monkeypatch):
    monkeypatch.setenv("T_KEY", "a-test-key")
    assert swift_environment(_profile("internal"))[ENVIRONMENT] == "1"
    assert ENVIRONMENT not in swift_environment(_profile("public"))


PROBE = """
from cfbackup.duplicity import launcher
launcher._apply()
import swiftclient, swiftclient.client, swiftclient.service
classes = {swiftclient.Connection, swiftclient.client.Connection, swiftclient.service.Connection}
print(sorted(c.__name__ for c in classes))
"""


def test_duplicitys_interpreter_gets_the_servicenet_connection():
    """The launcher's patch choice, applied as in duplicity's interpreter."""
    from cfbackup.duplicity import launcher

    base = {"SWIFT_AUTHVERSION": "1", "PATH": "/usr/bin:/bin"}
    for extra, expected in (({ENVIRONMENT: "1"}, "ServiceNetConnection"), ({}, "TimedConnection")):
        env, _ = launcher.environment({**base, **extra})
        out = subprocess.run(
            [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0 and out.stdout.strip() == f"['{expected}']", out.stderr
