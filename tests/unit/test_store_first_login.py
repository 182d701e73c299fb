"""A SwiftStore without the run's view (status, a drill, retention's ``remaining()``,
prefetch on its own) logs its first connection in as it is made (``swift.log_in``, a701675),
before any request: what that login does when the store was stopped, or when the auth service
fails."""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from support.cli import BIN, CliResult

from cfbackup import stores
from cfbackup.config import build_config
from cfbackup.errors import BackendError, ExitCode


@contextlib.contextmanager
def stand_in_auth(status: int) -> Iterator[tuple[str, list[float]]]:
    """An auth endpoint that answers every request with ``status``: its URL, and when each
    request came."""
    hits: list[float] = []

    class Auth(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            hits.append(time.monotonic())
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Auth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/auth/v1.0", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


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


def test_an_auth_url_answering_404_is_named_not_taken_for_an_empty_target(monkeypatch):
    """A wrong auth_url path: swiftclient's request-time login gave a 404 that list() took
    for no container ({}), exists() for False and download() for Missing, so status and a
    drill reported an empty target; the login now fails first, naming swift.auth_url."""
    with stand_in_auth(404) as (auth_url, _):
        profile = _profile(monkeypatch, auth_url)
        calls = {
            "list": lambda store: store.list(),
            "exists": lambda store: store.exists(),
            "download": lambda store: store.download("v", lambda chunk: None, threading.Event()),
        }
        for name, call in calls.items():
            with pytest.raises(BackendError) as caught:
                call(stores.open_store(profile))
            assert caught.value.exit_code == ExitCode.BACKEND, name
            assert "404" in caught.value.message and "swift.auth_url" in caught.value.message


def test_status_with_an_auth_url_answering_404_fails_naming_it(tmp_path):
    """``cfbackup status`` against it: exit 10 with the auth URL's fix, not "no backup"."""
    with stand_in_auth(404) as (auth_url, hits):
        config = tmp_path / "config.toml"
        config.write_text(
            f"""state_dir = "{tmp_path}/state"
[profiles.main]
source = "{tmp_path}"
target = "swift://box/host1"
archive_dir = "{tmp_path}/archive"
[profiles.main.swift]
auth_url = "{auth_url}"
username = "u:v"
password_env = "T_KEY"
[profiles.main.encryption]
mode = "none"
"""
        )
        config.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CFBACKUP_")}
        result = CliResult(
            subprocess.run(
                [str(BIN / "cfbackup"), "-c", str(config), "status", "main"],
                env={**env, "T_KEY": "FAKE-key"},
                capture_output=True,
                text=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
            )
        )
    assert hits, "status never asked the auth endpoint"
    assert result.returncode == ExitCode.BACKEND, result
    assert "404" in result.output and "swift.auth_url" in result.output, result
    assert "Traceback" not in result.output and "FAKE-key" not in result.output


def test_abort_ends_a_first_login_s_back_off_at_once(monkeypatch):
    """Ctrl-C or a drill's time up while a store's first login backs off (the auth service
    answering 503): abort() must not wait for the tries left (1, 2, 4 ... s, minutes with
    swift.retries 10). The first thread logs in holding the store's lock; the others wait on
    it, then must not log in again."""
    with stand_in_auth(503) as (auth_url, hits):
        store = stores.open_store(_profile(monkeypatch, auth_url, retries=10))
        outcomes: list[BaseException] = []

        def download():
            try:
                store.download("v", lambda chunk: None, threading.Event())
            except BaseException as error:  # noqa: BLE001 - looked at below
                outcomes.append(error)

        threads = [threading.Thread(target=download, daemon=True) for _ in range(3)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(hits) < 3:  # backing off (4 s) after the third 503
            assert time.monotonic() < deadline, "the login was not tried again"
            time.sleep(0.02)
        asked = len(hits)
        started = time.monotonic()
        store.abort()
        for thread in threads:
            thread.join(5)
        took = time.monotonic() - started
    assert not any(thread.is_alive() for thread in threads)
    assert took < 2, f"abort() took {took:.1f}s"
    assert len(outcomes) == 3 and all(isinstance(e, stores.Stopped) for e in outcomes), outcomes
    assert len(hits) == asked, "a login was tried after abort()"
