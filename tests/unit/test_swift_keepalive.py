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
        _counting[-1].sockets.append(args[0])


sys.addaudithook(_audit)


class Connects:
    """Counts the TCP connections the process makes inside ``watching`` (whichever thread:
    the tests wait for their background connects before they count), and keeps their sockets."""

    def __init__(self):
        self.count = 0
        self.sockets: list = []

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


def test_a_restore_download_goes_on_a_connection_opened_ahead(local_swift, monkeypatch):
    """``TargetView.connect_ahead`` (a restore's, while its checks list the target): the
    prefetch's first download sends its request on a connection already open, and the store's
    abort() (Ctrl-C mid-download) shuts that connection as it shuts those it opens itself."""
    import threading
    import uuid

    from cfbackup import stores, swift

    profile = _profile(local_swift, monkeypatch)
    profile.data["target"] = target = f"swift://keepalive-{uuid.uuid4().hex[:8]}"
    setup = swift_connect.connect(profile)
    setup.put_container(target.removeprefix("swift://"))
    setup.put_object(target.removeprefix("swift://"), "volume", b"x" * 70000)
    setup.close()

    for ahead in (False, True):
        view = swift.TargetView(profile)
        if ahead:
            view.connect_ahead(1)
        assert view.exists()  # the login and the listing, on this thread
        for _ in range(100):
            if not ahead or view._spares:
                break
            threading.Event().wait(0.05)
        store = stores.SwiftStore(profile, view)
        connects, got = Connects(), []
        with connects.watching():
            store.download("volume", got.append, threading.Event())
        assert b"".join(got) == b"x" * 70000
        assert connects.count == (0 if ahead else 1), ahead
        if ahead:
            adopted = list(store._sockets._sockets)
            assert len(adopted) == 1
            store.abort()
            assert adopted[0].recv(1) == b""  # shut: what a stalled read would see
        view.close()


def _volume_target(local_swift, monkeypatch):
    """A profile whose new container holds one 70000-byte object, ``volume``."""
    import uuid

    profile = _profile(local_swift, monkeypatch)
    profile.data["target"] = target = f"swift://keepalive-{uuid.uuid4().hex[:8]}"
    setup = swift_connect.connect(profile)
    setup.put_container(target.removeprefix("swift://"))
    setup.put_object(target.removeprefix("swift://"), "volume", b"x" * 70000)
    setup.close()
    return profile


def test_a_spare_starts_with_the_store_s_newest_login(local_swift, monkeypatch):
    """A connection opened ahead carries the token of the run's login; a store that logged in
    again since (Swift refused that token) hands its thread the new one, as it does a sibling
    it makes: not a 401 and a login more on that thread."""
    import threading

    from cfbackup import stores

    class View:
        def __init__(self, spares):
            self.spares = spares

        def spare(self):
            return self.spares.pop(0) if self.spares else None

    profile = _profile(local_swift, monkeypatch)
    spares = [swift_connect.connect(profile) for _ in range(2)]
    for conn in spares:
        conn.url, conn.token = "http://127.0.0.1:1/v1/AUTH_x", "AUTH_tk-old"
    store = stores.SwiftStore(profile, View(list(spares)))
    assert store._conn().token == "AUTH_tk-old"  # no newer login yet: the run's
    store._login = ("http://127.0.0.1:1/v1/AUTH_x", "AUTH_tk-new")
    taken = []
    thread = threading.Thread(target=lambda: taken.append(store._conn()))
    thread.start()
    thread.join()
    assert taken[0] is spares[1] and taken[0].token == "AUTH_tk-new"


def test_no_connection_is_left_open_once_a_restore_s_store_and_view_are_closed(
    local_swift, monkeypatch
):
    """A restore's prefetch downloads on connections its store takes from the view (opened
    ahead) or makes (a thread more than the spares): its end (``Prefetch.close``, then the
    run's view) closes every one; those a store took or made were left open."""
    import gc
    import threading

    from cfbackup import stores, swift

    profile = _volume_target(local_swift, monkeypatch)
    connects = Connects()
    with connects.watching():
        view = swift.TargetView(profile)
        view.connect_ahead(2)
        assert view.exists()
        for _ in range(100):
            if len(view._spares) == 2:
                break
            threading.Event().wait(0.05)
        store = stores.SwiftStore(profile, view)
        got: list[bytes] = []
        start = threading.Barrier(3)

        def download() -> None:
            start.wait()  # three threads at once: the two spares and one sibling
            chunks: list[bytes] = []
            store.download("volume", chunks.append, threading.Event())
            got.append(b"".join(chunks))

        threads = [threading.Thread(target=download) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert got == [b"x" * 70000] * 3
        store.close()
        view.close()
    assert connects.sockets
    # urllib3 2 closes a session's pooled sockets when the pool is freed, not at its close()
    gc.collect()
    left = [sock for sock in connects.sockets if not sock._closed]
    assert left == [], f"{len(left)} of {len(connects.sockets)} connections left open"


def test_a_restore_s_prefetch_closes_its_store_when_it_ends(local_swift, monkeypatch, tmp_path):
    """``prefetch.restore_source`` closes the store it reads (the chain's, whose connections it
    made or took from the view), also when it finds nothing to prefetch (duplicity reads)."""
    from cfbackup import prefetch

    class Store:
        label = "memory"
        closed = 0

        def list(self):
            return {}  # no backup: nothing to prefetch

        def abort(self):
            pass

        def close(self):
            self.closed += 1

    store = Store()
    profile = _profile(local_swift, monkeypatch)
    folder = tmp_path / "prefetch"
    with prefetch.restore_source(
        profile, {}, folder, path=None, when=None, user_folder=tmp_path, store=store
    ) as plan:
        assert plan is None
        assert store.closed == 0  # not while the restore runs
    assert store.closed >= 1
