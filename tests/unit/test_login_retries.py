"""The run's one login (``swift.TargetView``, shared by every check of restore, verify, list,
prune and cleanup) is tried again as swiftclient tries the login of a request it makes: a
single 503 or reset connection of the auth service no longer fails the whole run (a second read
found restore, list and prune failing with exit 10 where each check's own login used to ride it
out). A 401 and a timeout are final at once."""

from __future__ import annotations

import pytest
import requests.exceptions
from swiftclient.exceptions import ClientException

from cfbackup import swift, swift_connect
from cfbackup.config import build_config
from cfbackup.errors import BackendError
from cfbackup.keystone import KeystoneUnreachable


def _with_status(error, status):
    """What keystone.explain returns for a Keystone 5xx: the message, and its status."""
    error.http_status = status
    return error


class FlakyAuth:
    """A connection whose first logins fail with ``errors`` (in order), then succeed."""

    def __init__(self, errors, retries=3):
        self.errors = list(errors)
        self.retries = retries
        self.starting_backoff = 1
        self.calls = 0
        self.url = self.token = None

    def get_auth(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        self.url, self.token = "http://swift.example/v1/AUTH_t", "AUTH_tk_FAKE"
        return self.url, self.token

    def close(self):
        pass


@pytest.mark.parametrize(
    "error",
    [
        ClientException("Auth GET failed", http_status=503),
        ClientException("Auth GET failed", http_status=408),
        ConnectionResetError(104, "Connection reset by peer"),
        ConnectionRefusedError(111, "Connection refused"),
        requests.exceptions.ConnectionError("Connection aborted"),
        KeystoneUnreachable("cannot reach Keystone at http://k/v3 (reset): check the auth_url"),
        _with_status(BackendError("Keystone authentication failed for u: HTTP 503"), 503),
    ],
    ids=["503", "408", "reset", "refused", "requests", "keystone-reset", "keystone-503"],
)
def test_a_passing_failure_is_tried_again_after_a_backoff(error):
    slept = []
    conn = FlakyAuth([error, error])
    swift_connect.log_in(conn, wait=slept.append)
    assert conn.calls == 3 and conn.token
    assert slept == [1, 2]


@pytest.mark.parametrize(
    "error",
    [
        ClientException("Auth GET failed", http_status=401),
        ClientException("Auth GET failed", http_status=403),
        TimeoutError("timed out"),
        requests.exceptions.SSLError("certificate verify failed"),
        requests.exceptions.InvalidURL("no host"),
        OSError("Could not find a suitable TLS CA certificate bundle, invalid path: /x"),
        KeystoneUnreachable("cannot reach Keystone"),  # below: from a timeout
        BackendError("Keystone authentication failed for u: HTTP 401"),
    ],
    ids=["401", "403", "timeout", "tls", "url", "ca-path", "keystone-timeout", "keystone-401"],
)
def test_credentials_refused_or_no_answer_are_final_at_once(error):
    if isinstance(error, KeystoneUnreachable):
        try:
            raise error from requests.exceptions.ConnectTimeout("timed out")
        except KeystoneUnreachable as raised:
            error = raised
    conn = FlakyAuth([error])
    with pytest.raises(type(error)):
        swift_connect.log_in(conn, wait=lambda s: pytest.fail("waited"))
    assert conn.calls == 1


def test_retries_bound_the_tries():
    conn = FlakyAuth([ConnectionResetError()] * 5, retries=2)
    with pytest.raises(ConnectionResetError):
        swift_connect.log_in(conn, wait=lambda s: None)
    assert conn.calls == 3


def _profile(monkeypatch):
    monkeypatch.setenv("T_KEY", "FAKE-key")
    swift_table = {"auth_url": "http://127.0.0.1:9/auth/v1.0", "username": "u:v"}
    body = {
        "source": "/",
        "target": "swift://box",
        "swift": {**swift_table, "password_env": "T_KEY"},
    }
    return build_config({"profiles": {"p": body}}, path=None).profiles["p"]


def test_the_run_s_shared_login_rides_out_one_503(monkeypatch):
    profile = _profile(monkeypatch)
    flaky = FlakyAuth([ClientException("Auth GET failed", http_status=503)])
    monkeypatch.setattr(swift, "connect", lambda profile, retries=1: flaky)
    view = swift.TargetView(profile, retries=3)
    assert view.connection() is flaky and flaky.calls == 2


def test_closing_the_view_for_a_stop_ends_a_login_s_back_off_at_once(monkeypatch):
    """Ctrl-C while the run's login backs off (the auth service resetting every connection):
    close(abort=True) must not wait for the tries left (7 s with 3 retries, minutes with
    swift.retries 10); the login thread holds the view's lock meanwhile."""
    import threading
    import time

    profile = _profile(monkeypatch)
    flaky = FlakyAuth([ConnectionResetError()] * 20, retries=10)
    monkeypatch.setattr(swift, "connect", lambda profile, retries=1: flaky)
    view = swift.TargetView(profile, retries=10)
    errors = []

    def look_up():
        try:
            view.connection()
        except Exception as error:  # noqa: BLE001 - looked at below
            errors.append(error)

    thread = threading.Thread(target=look_up, daemon=True)
    thread.start()
    while flaky.calls < 2:  # backing off after the second reset
        time.sleep(0.05)
    started = time.monotonic()
    view.close(abort=True)
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 2
    assert len(errors) == 1 and isinstance(errors[0], ConnectionResetError)
