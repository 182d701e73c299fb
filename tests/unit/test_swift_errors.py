"""``swift.swift_errors``: what cfbackup's own Swift client meets, in one sentence with the fix
(end to end, through the fault proxy: tests/faults/test_swift_misbehaving.py)."""

from __future__ import annotations

import http.client

import pytest
import requests
import urllib3.exceptions
from swiftclient.exceptions import ClientException

from cfbackup import swift
from cfbackup.config import build_config
from cfbackup.errors import BackendError, ExitCode

AUTH = "http://auth.example:8080/auth/v1.0"


def _profile(interface: str = "public"):
    raw = {
        "profiles": {
            "p": {
                "source": "/",
                "target": "swift://box",
                "swift": {
                    "auth_url": AUTH,
                    "username": "u:v",
                    "password_env": "T_KEY",
                    "interface": interface,
                },
            }
        }
    }
    return build_config(raw, path=None).profiles["p"]


def _raised(error: BaseException, profile=None) -> BackendError:
    with pytest.raises(BackendError) as caught, swift.swift_errors(profile or _profile()):
        raise error
    assert caught.value.exit_code == ExitCode.BACKEND
    return caught.value


def test_a_download_cut_short_is_a_backend_error():
    """urllib3's ProtocolError is no OSError: it went out as "internal error ... a bug", and
    volume_fetch, which retries BackendError only, never tried it again."""
    incomplete = http.client.IncompleteRead(b"x" * 199575, 213656)
    cut = urllib3.exceptions.ProtocolError(f"Connection broken: {incomplete!r}", incomplete)
    chunked = requests.exceptions.ChunkedEncodingError(cut)
    for error in (cut, incomplete, chunked):
        message = _raised(error).message
        assert message.startswith(
            "the connection to Swift was closed before its answer was complete"
        ), message


@pytest.mark.parametrize("keystone", [False, True])
def test_a_download_that_stalls_part_way_does_not_blame_the_auth_url(keystone):
    """swiftclient's _RetryBody.read re-raises urllib3's ReadTimeoutError: it was reported as
    "cannot reach Swift at <auth_url> ...: check swift.auth_url", though the auth had answered
    and so had the storage URL."""
    profile = _profile()
    if keystone:
        raw = {"profiles": {"p": {"source": "/", "target": "swift://box", "swift": {
            "auth_version": "3", "auth_url": "https://keystone.example:5000/v3",
            "username": "u", "password_env": "T_KEY", "user_domain_name": "Default",
            "project_name": "p", "project_domain_name": "Default"}}}}  # fmt: skip
        profile = build_config(raw, path=None).profiles["p"]
    url = "https://swift-storage.example/v1/AUTH_x/box/vol1"
    message = _raised(urllib3.exceptions.ReadTimeoutError(None, url, "Read timed out."), profile)
    assert message.message.startswith(
        "Swift stopped sending in the middle of an answer (timed out, after swiftclient resumed "
        "it): the link to Swift's storage URL or a proxy on the way stalls; run the command again"
    ), message.message
    assert "auth" not in message.message and "keystone" not in message.message, message.message


@pytest.mark.parametrize(
    ("status", "reason", "fix"),
    [
        (503, "Service Unavailable", "Swift's proxy or its storage servers are failing"),
        (500, "Internal Error", "try again later, and ask Swift's operator if it persists"),
        (404, "Not Found", "the container or the account is not there"),
        (429, "Too Many Requests", "Swift limits this account's request rate"),
        (400, "Bad Request", "ask Swift's operator what its proxy's log says"),
    ],
)
def test_a_status_swift_answers_comes_with_its_fix(status, reason, fix):
    error = ClientException("Container GET failed", http_status=status, http_reason=reason)
    message = _raised(error).message
    assert message.startswith(f"Swift answered {status} {reason} (Container GET failed: "), message
    assert fix in message and message.endswith("."), message


def _refused(url: str) -> requests.exceptions.ConnectionError:
    request = requests.Request("GET", url).prepare()
    return requests.exceptions.ConnectionError("[Errno 111] Connection refused", request=request)


def test_an_unreachable_storage_url_is_named_not_the_auth_url():
    storage = "https://snet-storage101.example:443/v1/MossoCloudFS_x"
    message = _raised(_refused(f"{storage}/box?format=json&limit=10000")).message
    assert message.startswith(
        f"cannot reach Swift at {storage} (connection failed: connection refused): Swift's "
        f"auth at {AUTH} answered and returned this storage URL, which this machine cannot reach"
    ), message
    assert "swift.auth_url" not in message and "internal" not in message
    internal = _raised(_refused(f"{storage}/box"), _profile("internal")).message
    assert 'swift.interface = "internal"' in internal, internal
    # the auth URL itself unreachable: as before
    assert "check swift.auth_url" in _raised(_refused(AUTH)).message
