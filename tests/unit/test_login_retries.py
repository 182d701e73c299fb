"""The run's one login (``swift.TargetView``, shared by every check of restore, verify, list,
prune and cleanup) is tried again as swiftclient tries the login of a request it makes: a
single 503 or reset connection of the auth service no longer fails the whole run (a second read
found restore, list and prune failing with exit 10 where each check's own login used to ride it
out). A 401 and a timeout are final at once."""

from __future__ import annotations

import pytest
from swiftclient.exceptions import ClientException

from cfbackup import swift, swift_connect
from cfbackup.config import build_config


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
    ],
    ids=["503", "408", "reset", "refused"],
)
def test_a_passing_failure_is_tried_again_after_a_backoff(error):
    slept = []
    conn = FlakyAuth([error, error])
    swift_connect.log_in(conn, sleep=slept.append)
    assert conn.calls == 3 and conn.token
    assert slept == [1, 2]


@pytest.mark.parametrize(
    "error",
    [
        ClientException("Auth GET failed", http_status=401),
        ClientException("Auth GET failed", http_status=403),
        TimeoutError("timed out"),
    ],
    ids=["401", "403", "timeout"],
)
def test_credentials_refused_or_no_answer_are_final_at_once(error):
    conn = FlakyAuth([error])
    with pytest.raises(type(error)):
        swift_connect.log_in(conn, sleep=lambda s: pytest.fail("slept"))
    assert conn.calls == 1


def test_retries_bound_the_tries():
    conn = FlakyAuth([ConnectionResetError()] * 5, retries=2)
    with pytest.raises(ConnectionResetError):
        swift_connect.log_in(conn, sleep=lambda s: None)
    assert conn.calls == 3


def test_the_run_s_shared_login_rides_out_one_503(monkeypatch):
    monkeypatch.setenv("T_KEY", "FAKE-key")
    raw = {
        "profiles": {
            "p": {
                "source": "/",
                "target": "swift://box",
                "swift": {
                    "auth_url": "http://127.0.0.1:9/auth/v1.0",
                    "username": "u:v",
                    "password_env": "T_KEY",
                },
            }
        }
    }
    profile = build_config(raw, path=None).profiles["p"]
    flaky = FlakyAuth([ClientException("Auth GET failed", http_status=503)])
    monkeypatch.setattr(swift, "connect", lambda profile, retries=1: flaky)
    monkeypatch.setattr(swift_connect.time, "sleep", lambda seconds: None)
    view = swift.TargetView(profile, retries=3)
    assert view.connection() is flaky and flaky.calls == 2
