"""A Swift download stalled on the network ends at once when the run stops (Ctrl-C, SIGTERM):
``SwiftStore.abort()`` in every phase of the request (still connecting, waiting for the
response headers, reading the body), and ``volume_fetch.fetch`` when its caller is interrupted
(``verify --read-data``, drills). Before, only a download already in its body was cut: one
waiting for its headers sat until swiftclient's 30 s timeout, and held up the restore's exit
(and the firewall lock-down around it) that long.

A stand-in Swift on loopback: v1 auth answers, then the storage endpoint stalls in the chosen
phase (a listener whose accept queue is full never completes a connection)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import threading
import time

import pytest

from cfbackup import retention, volume_fetch
from cfbackup.config import build_config
from cfbackup.stores import Stopped, SwiftStore
from cfbackup.volumes import VolumeRef

BOUND = 2.0  # seconds from abort (or Ctrl-C) to the download's end


class StalledSwift:
    """v1 auth on one port; object GETs on another, stalled in ``phase`` ("head": the
    container listing answers ``names``, every other request, a HEAD, stalls)."""

    names = ("a", "b", "c")

    def __init__(self, phase: str):
        self.phase = phase
        self.asked = threading.Event()  # a GET arrived (headers), or its first MB left (body)
        self.requests = 0  # requests the storage endpoint received (a listing's included)
        self._open: list[socket.socket] = []
        self.auth = self._listen(8)
        self.storage = self._listen(0)
        if phase == "connect":  # fill the accept queue: further connects wait for ever
            for _ in range(3):
                filler = socket.socket()
                filler.setblocking(False)
                try:
                    filler.connect(self.storage.getsockname())
                except BlockingIOError:
                    pass
                self._open.append(filler)
            time.sleep(0.2)
        else:
            threading.Thread(target=self._serve_storage, daemon=True).start()
        threading.Thread(target=self._serve_auth, daemon=True).start()

    def _listen(self, backlog: int) -> socket.socket:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(backlog)
        self._open.append(server)
        return server

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.auth.getsockname()[1]}/auth/v1.0"

    def _serve_auth(self) -> None:
        url = f"http://127.0.0.1:{self.storage.getsockname()[1]}/v1/AUTH_test"
        while True:
            try:
                conn, _ = self.auth.accept()
            except OSError:
                return
            self._open.append(conn)
            _read_request(conn)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nX-Storage-Url: " + url.encode() + b"\r\n"
                b"X-Auth-Token: AUTH_tk0\r\nContent-Length: 0\r\n\r\n"
            )

    def _serve_storage(self) -> None:
        while True:
            try:
                conn, _ = self.storage.accept()
            except OSError:
                return
            self._open.append(conn)
            threading.Thread(
                target=self._answer, args=(conn,), name="stand-in", daemon=True
            ).start()

    def _answer(self, conn: socket.socket) -> None:
        request = _read_request(conn)
        self.requests += 1
        while self.phase == "head" and request.startswith(b"GET "):  # the listing answers
            more = b"marker=" not in request.split(b"\r\n", 1)[0]
            names = self.names if more else ()
            listing = json.dumps([{"name": n, "bytes": 1} for n in names]).encode()
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(listing)).encode() + b"\r\n\r\n" + listing
            )
            request = _read_request(conn)  # the next one on this connection
            self.requests += 1
        if self.phase == "body":
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n"
                b"Content-Type: application/octet-stream\r\n\r\n" + b"x" * (1 << 20)
            )
        self.asked.set()  # then nothing more, as a stalled link

    def close(self) -> None:
        for sock in self._open:
            sock.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture
def swift(request, monkeypatch):
    monkeypatch.setenv("T_KEY", "a-test-key")
    # the tests' SIGINT is Python's Ctrl-C, whatever handler an earlier test in this process
    # left (in the whole unit suite one swallowed it: the Ctrl-C tests then waited 30 s)
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    server = StalledSwift(request.param)
    yield server
    server.close()
    signal.signal(signal.SIGINT, handler)


def _profile(server: StalledSwift, **more):
    raw = {
        "profiles": {
            "p": {
                "source": "/",
                "target": "swift://box",
                "swift": {"auth_url": server.auth_url, "username": "u:v", "password_env": "T_KEY"},
                **more,
            }
        }
    }
    return build_config(raw, path=None).profiles["p"]


def _store(server: StalledSwift) -> SwiftStore:
    return SwiftStore(_profile(server))


def _stalled(server: StalledSwift, store: SwiftStore) -> bool:
    if server.phase == "connect":  # logged in and asking: the connect is under way
        return bool(store._reading) and (time.sleep(0.5) or True)
    return server.asked.wait(0)


def _ours(threads) -> set[threading.Thread]:
    """The threads but the stand-in Swift's."""
    return {thread for thread in threads if thread.name != "stand-in"}


def _wait(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the download never reached the stalled phase"
        time.sleep(0.05)


def _ctrl_c_once_stalled(swift: StalledSwift, call) -> float:
    """Run ``call``; 0.3 s after the stand-in Swift saw its request (every request in flight
    waiting for its answer by then), a real SIGINT as Ctrl-C (a real signal wakes the main
    thread). ``call`` must end in KeyboardInterrupt; the seconds it took after the signal."""
    interrupted: list[float] = []
    reached: list[bool] = []

    def interrupt() -> None:
        reached.append(swift.asked.wait(20))  # else Ctrl-C all the same, and say so below
        time.sleep(0.3)
        interrupted.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=interrupt, daemon=True)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        call()
    took = time.monotonic() - interrupted[0]
    timer.join()
    assert reached == [True], "no request reached the stalled Swift in 20 s"
    return took


@pytest.mark.parametrize("swift", ["connect", "headers", "body"], indirect=True)
def test_abort_ends_a_stalled_download_at_once(swift):
    store = _store(swift)
    errors: list[BaseException] = []

    def download():
        try:
            store.download("volume", lambda chunk: None, threading.Event())
        except BaseException as error:  # noqa: BLE001 - looked at below
            errors.append(error)

    thread = threading.Thread(target=download, daemon=True)
    thread.start()
    _wait(lambda: _stalled(swift, store))
    started = time.monotonic()
    store.abort()
    thread.join(BOUND)
    took = time.monotonic() - started
    assert not thread.is_alive(), f"the {swift.phase} phase held the download past abort()"
    assert took < BOUND
    assert len(errors) == 1 and isinstance(errors[0], Stopped), errors
    # and nothing starts on it afterwards
    with pytest.raises(Stopped):
        store.download("other", lambda chunk: None, threading.Event())


@pytest.mark.parametrize("swift", ["headers"], indirect=True)
def test_ctrl_c_ends_a_fetch_stalled_for_its_headers(swift, tmp_path):
    """``verify --read-data`` and drills fetch from the main thread: a Ctrl-C (SIGTERM becomes
    the same KeyboardInterrupt) ends the batch within the bound, its threads gone and no
    partial volume left."""
    store = _store(swift)
    refs = [
        VolumeRef(
            f"duplicity-full.20260101T000000Z.vol{n}.difftar.gz",
            n,
            "full",
            1 << 20,
            ("sha1", hashlib.sha1(b"").hexdigest()),
        )
        for n in (1, 2)
    ]
    before = set(threading.enumerate())
    took = _ctrl_c_once_stalled(
        swift, lambda: volume_fetch.fetch(store, refs, tmp_path / "fetched", keep=False, workers=2)
    )
    assert took < BOUND, f"the fetch took {took:.1f} s to stop"
    assert _ours(threading.enumerate()) <= before
    assert list((tmp_path / "fetched").iterdir()) == []


def _refs(count: int) -> list[VolumeRef]:
    return [
        VolumeRef(
            f"duplicity-full.20260101T000000Z.vol{n}.difftar.gz",
            n,
            "full",
            1 << 20,
            ("sha1", hashlib.sha1(b"").hexdigest()),
        )
        for n in range(1, count + 1)
    ]


@pytest.mark.parametrize("swift", ["headers", "body"], indirect=True)
def test_a_stop_set_by_the_caller_ends_a_fetch_stalled_on_the_network(swift, tmp_path):
    """A drill's --max-duration sets the fetch's ``stop`` from a timer: the downloads only
    polled it between chunks, so one stalled for its headers or in its body held the drill
    past its max duration (swiftclient's 30 s a try, retries and all). The fetch now ends
    within the bound, with no outcome for what it did not finish, no thread and no part
    file left."""
    store = _store(swift)
    stop = threading.Event()
    before = set(threading.enumerate())
    set_at: list[float] = []

    def time_up() -> None:
        _wait(swift.asked.is_set)
        time.sleep(0.3)  # both downloads stalled
        set_at.append(time.monotonic())
        stop.set()  # as drill._time_up

    timer = threading.Thread(target=time_up, daemon=True)
    timer.start()
    outcomes = volume_fetch.fetch(
        store, _refs(2), tmp_path / "fetched", keep=True, workers=2, stop=stop
    )
    took = time.monotonic() - set_at[0]
    timer.join()
    assert outcomes == []
    assert took < BOUND, f"the fetch took {took:.1f} s to stop after its stop was set"
    assert _ours(threading.enumerate()) <= before
    assert list((tmp_path / "fetched").iterdir()) == []


@pytest.mark.parametrize("swift", ["head"], indirect=True)
def test_ctrl_c_ends_retention_s_check_stalled_on_its_heads(swift):
    """Retention's check of duplicity's deletes asks Swift with a HEAD per object, on threads
    nothing stopped: a Ctrl-C or SIGTERM while Swift did not answer them waited for
    swiftclient's timeout (30 s a try, swift.retries more) before the run could end. Now the
    HEADs end within the bound, no thread left."""
    profile = _profile(swift)
    before = set(threading.enumerate())
    took = _ctrl_c_once_stalled(swift, lambda: retention.left_at_target(profile, list(swift.names)))
    assert took < BOUND, f"the check took {took:.1f} s to stop"
    assert _ours(threading.enumerate()) <= before


@pytest.mark.parametrize("swift", ["headers", "body"], indirect=True)
def test_cfbackups_client_does_not_retry_a_request_that_timed_out(swift, monkeypatch, tmp_path):
    """cfbackup's own client (restore prefetch, verify --read-data, drills, checks) tried a
    timed-out request swift.retries times more (3 unset), each waiting the whole timeout (30 s)
    again: about 2 minutes per fetch try against a mute Swift, 6.5 with the default 3 tries.
    Now one request per try (``swift_timeouts.py``, the rule duplicity's patch follows): the
    fetch's own tries remain, each announced, and it fails as Swift not answering."""
    from cfbackup import swift_connect as swift_module
    from cfbackup.errors import BackendError

    monkeypatch.setattr(swift_module, "TIMEOUT", 0.5)
    store = _store(swift)
    assert store.retries == 3  # swiftclient's, unset: what a timeout no longer uses
    started = time.monotonic()
    with pytest.raises(BackendError) as raised:
        volume_fetch.fetch(store, _refs(1), tmp_path / "fetched", retry=(2, 0.1), workers=1)
    took = time.monotonic() - started
    assert swift.requests == 2, swift.requests  # one GET per fetch try, not 4 each
    assert took < 4, f"{took:.1f} s: swiftclient retried the timed-out request"
    message = raised.value.message
    assert "no answer within the timeout" in message or "timed out" in message, message


@pytest.mark.parametrize("swift", ["headers", "connect"], indirect=True)
def test_a_storage_url_that_connects_and_never_answers_is_not_called_unreachable(swift):
    """A storage URL whose host took the connection and then said nothing was "cannot be
    reached: check DNS and firewalls": wrong, and the wrong place to look. Now the sentence
    says it connected and got no answer within the timeout (the profile's --timeout, which
    cfbackup's client follows too), and where to look; a host that never completes the
    connection keeps the DNS-and-firewalls sentence."""
    from cfbackup.errors import BackendError

    profile = _profile(swift, extra_options=["--timeout=1"])
    started = time.monotonic()
    with pytest.raises(BackendError) as raised:
        SwiftStore(profile).list()
    took = time.monotonic() - started
    message = raised.value.message
    storage = f"http://127.0.0.1:{swift.storage.getsockname()[1]}/v1/AUTH_test"
    assert took < 5, f"{took:.1f} s: the profile's --timeout (1 s) was not used"
    if swift.phase == "headers":
        assert message == (
            f"Swift at {storage} accepted the connection but sent no answer within the timeout "
            "(1 s): its proxy, or a load balancer in front of it, holds the requests; check the "
            "proxy's health and the load balancer's, or ask Swift's operator (if Swift is only "
            "slow, raise --timeout in the profile's extra_options)."
        ), message
    else:
        assert message.startswith(f"cannot reach Swift at {storage} (connection failed: "), message
        assert "check DNS and firewalls" in message, message


@pytest.mark.parametrize("swift", ["head"], indirect=True)
def test_ctrl_c_ends_a_quota_check_stalled_on_its_container_heads(swift):
    """The account's current usage (the quota guard, ``status``, ``check``) HEADs each
    container on threads of ``swift.concurrently`` that nothing stopped: a Ctrl-C or SIGTERM
    while Swift did not answer them waited for the client's timeout (30 s). Now the HEADs
    end within the bound, no thread left."""
    from cfbackup import swift_usage

    profile = _profile(swift)
    before = set(threading.enumerate())
    took = _ctrl_c_once_stalled(swift, lambda: swift_usage.account_usage(profile))
    assert took < BOUND, f"the quota check took {took:.1f} s to stop"
    assert _ours(threading.enumerate()) <= before


@pytest.mark.parametrize("swift", ["headers"], indirect=True)
def test_ctrl_c_during_a_backup_s_checks_does_not_wait_for_their_look_ups(swift):
    """A backup's target view runs look-ups (login, listing, the link's round trip) on threads
    beside the passphrase check; closing it waited for them (``shutdown(wait=True)``): a
    Ctrl-C or SIGTERM while Swift did not answer held the run for the client's timeout (30 s).
    Now the look-ups end within the bound when the run is interrupted."""
    import types

    from cfbackup.actions import common

    run = types.SimpleNamespace(profile=_profile(swift), target_view=None)
    before = set(threading.enumerate())
    with pytest.raises(KeyboardInterrupt), common.target_view(run):
        run.target_view.start("probe", lambda view: view.connection().head_container("box"))
        _wait(swift.asked.is_set)
        time.sleep(0.3)  # the HEAD waiting for its answer
        interrupted = time.monotonic()
        raise KeyboardInterrupt  # as Ctrl-C in the main thread, mid-checks
    took = time.monotonic() - interrupted
    assert took < BOUND, f"closing the target view took {took:.1f} s"
    assert _ours(threading.enumerate()) <= before
