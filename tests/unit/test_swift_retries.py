"""``swift.retries``: swiftclient's own retries of a request, in duplicity and in cfbackup's
downloads. That a backup really gives up sooner with it is shown end to end by
tests/faults/test_swift_outage.py; here: the setting, its wiring and the patch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cfbackup.config import build_config
from cfbackup.duplicity.environment import swift_environment
from cfbackup.duplicity.patches.swift_retries import ENVIRONMENT
from cfbackup.errors import ConfigError
from cfbackup.stores import DOWNLOAD_RETRIES, SwiftStore


def _profile(**swift):
    raw = {
        "profiles": {
            "p": {
                "source": "/",
                "target": "swift://box",
                "swift": {
                    "auth_url": "http://a/auth/v1.0",
                    "username": "u:v",
                    "password_env": "T_KEY",
                    **swift,
                },
            }
        }
    }
    return build_config(raw, path=None).profiles["p"]


def test_the_setting_reaches_duplicitys_environment_only_when_set(monkeypatch):
    monkeypatch.setenv("T_KEY", "a-test-key")
    assert swift_environment(_profile(retries=0))[ENVIRONMENT] == "0"
    assert swift_environment(_profile(retries=2))[ENVIRONMENT] == "2"
    assert ENVIRONMENT not in swift_environment(_profile())


def test_a_keystone_profile_passes_it_too(monkeypatch):
    monkeypatch.setenv("T_KEY", "a-test-key")
    profile = _profile(
        auth_version="3",
        auth_url="http://k/v3",
        username="u",
        project_name="p",
        user_domain_name="Default",
        project_domain_name="Default",
        retries=1,
    )
    assert swift_environment(profile)[ENVIRONMENT] == "1"


def test_more_than_ten_is_refused():
    with pytest.raises(ConfigError, match=r"swift\.retries: must be at most 10"):
        _profile(retries=11)


def test_cfbackups_downloads_follow_it(monkeypatch):
    """The store's connection (its login, made as the first connection is: left out here)."""
    from cfbackup import swift

    monkeypatch.setenv("T_KEY", "a-test-key")
    monkeypatch.setattr(swift, "log_in", lambda conn, **kw: None)
    assert SwiftStore(_profile(retries=1))._conn().retries == 1
    assert SwiftStore(_profile(retries=0))._conn().retries == 0
    assert SwiftStore(_profile())._conn().retries == DOWNLOAD_RETRIES == 3


PROBE = """
from cfbackup.duplicity import launcher
launcher._apply()
import swiftclient, swiftclient.client, swiftclient.service
backend = swiftclient.Connection(authurl="http://a/auth/v1.0", user="u", key="k")
options = {"auth": "http://a/auth/v1.0", "user": "u", "key": "k", "os_options": {}}
pool = swiftclient.service.get_conn(options)
print(backend.retries, pool.retries)
"""


def test_every_connection_in_duplicitys_interpreter_gets_it():
    """The launcher's patch choice, applied as in duplicity's interpreter: the backend's
    Connection and a SwiftService pool's (which passes its own retries, 5)."""
    from cfbackup.duplicity import launcher

    base = {"SWIFT_AUTHVERSION": "1", "PATH": "/usr/bin:/bin"}
    for extra, expected in (({ENVIRONMENT: "2"}, "2 2"), ({ENVIRONMENT: "0"}, "0 0"), ({}, "5 5")):
        env, _ = launcher.environment({**base, **extra})
        out = subprocess.run(
            [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0 and out.stdout.strip() == expected, (extra, out.stderr)
