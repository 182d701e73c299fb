"""A v1 login's HTTP connection serves the first request after it (``swift_keepalive.py``):
across a network each new connection is a round trip more before the request (a restore's
listing: 0.17 s on a new connection at 80 ms, 0.09 s on the login's). Counted as the sockets a
thread connects, against the real local Swift."""

from __future__ import annotations

import contextlib
import sys

import pytest

from cfbackup import swift_connect
from cfbackup.config import build_config

pytestmark = pytest.mark.swift


def _profile(local_swift, monkeypatch, auth_url=None):
    user, key = local_swift.users["admin"]
    monkeypatch.setenv("T_KEEP_KEY", key)
    raw = {
        "profiles": {
            "p": {
                "source": "/",
                "target": "swift://keepalive",
                "swift": {
                    "auth_url": auth_url or local_swift.auth_url,
                    "username": user,
                    "password_env": "T_KEEP_KEY",
                },
            }
        }
    }
    return build_config(raw, path=None).profiles["p"]


_counting: list = []  # the Connects counting now (an audit hook stays for the process's life)


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect" and _counting and args[0].family.name.startswith("AF_INET"):
        _counting[-1].count += 1


sys.addaudithook(_audit)


class Connects:
    """Counts the TCP connections the process makes inside ``watching`` (whichever thread:
    the tests wait for their background connects before they count)."""

    def __init__(self):
        self.count = 0

    @contextlib.contextmanager
    def watching(self):
        _counting.append(self)
        try:
            yield
        finally:
            _counting.remove(self)


def _login_and_list(conn) -> int:
    connects = Connects()
    with connects.watching():
        swift_connect.log_in(conn)
        conn.get_account()
        conn.get_account()  # and on: the same connection
    conn.close()
    return connects.count


def test_the_login_and_the_requests_after_it_share_one_connection(local_swift, monkeypatch):
    conn = swift_connect.connect(_profile(local_swift, monkeypatch))
    assert _login_and_list(conn) == 1  # was 2: the login's own, then one for the requests


def test_a_storage_url_elsewhere_gets_its_own_connection(local_swift, monkeypatch):
    """localhost and 127.0.0.1 are one server but two origins: the login's connection is
    closed as swiftclient closes it, and the requests open one for the storage URL."""
    profile = _profile(local_swift, monkeypatch)
    first = swift_connect.connect(profile)
    swift_connect.log_in(first)
    first.close()
    if "//127.0.0.1:" not in first.url:
        pytest.skip("the local Swift is not on 127.0.0.1")
    elsewhere = first.url.replace("//127.0.0.1:", "//localhost:")
    conn = swift_connect.connect(profile, storage_url=elsewhere)
    assert _login_and_list(conn) == 2
    assert conn.url == elsewhere


def test_a_sibling_opens_its_own_connection_and_the_origin_keeps_the_login(
    local_swift, monkeypatch
):
    """A sibling (another thread's connection) never shares the login's HTTP connection."""
    conn = swift_connect.connect(_profile(local_swift, monkeypatch))
    swift_connect.log_in(conn)
    twin = swift_connect.sibling(conn)
    connects = Connects()
    with connects.watching():
        twin.get_account()
    assert connects.count == 1
    with connects.watching():
        conn.get_account()
    assert connects.count == 1  # the origin's request went on the login's connection
    twin.close()
    conn.close()


def test_a_rejected_login_keeps_nothing(local_swift, monkeypatch):
    from swiftclient.exceptions import ClientException

    profile = _profile(local_swift, monkeypatch)
    monkeypatch.setenv("T_KEEP_KEY", "not-the-key")
    conn = swift_connect.connect(profile)
    with pytest.raises(ClientException) as raised:
        swift_connect.log_in(conn)
    assert raised.value.http_status == 401
    assert conn._kept is None

