"""A SwiftStore without the run's view (status, a drill, retention's ``remaining()``,
prefetch on its own) logs its first connection in as it is made (``swift.log_in``, a701675),
before any request: what that login does when the store was stopped, or when the auth service
fails."""

from __future__ import annotations

import socket
import threading

import pytest

from cfbackup import stores
from cfbackup.config import build_config


def _profile(monkeypatch, auth_url: str, **swift_more):
    monkeypatch.setenv("T_KEY", "FAKE-key")
    swift_table = {"auth_url": auth_url, "username": "u:v", "password_env": "T_KEY"}
    body = {"source": "/", "target": "swift://box", "swift": {**swift_table, **swift_more}}
    return build_config({"profiles": {"p": body}}, path=None).profiles["p"]


def test_an_aborted_store_makes_no_login(monkeypatch):
    """A drill's store opened after its time is up, prefetch after close(): Stopped at once,
    with no DNS look-up or connection for a login (a resolver that does not answer held up
    the stop for its timeout)."""
    looked_up = []
    real = socket.getaddrinfo

    def recorded(host, *args, **kwargs):
        looked_up.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recorded)
    store = stores.open_store(
        _profile(monkeypatch, "http://auth.example.invalid:8080/auth/v1.0", retries=3)
    )
    store.abort()
    calls = {
        "list": store.list,
        "download": lambda: store.download("v", lambda chunk: None, threading.Event()),
        "remaining": lambda: store.remaining(["v"]),
    }
    for name, call in calls.items():
        with pytest.raises(stores.Stopped):
            call()
        assert looked_up == [], f"{name}() looked up the auth host after abort()"
