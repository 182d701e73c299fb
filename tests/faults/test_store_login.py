"""A store's connections share one login (``stores.SwiftStore``): the thread that downloads a
restore's volume starts with the token the listing got instead of logging in again, and a token
Swift no longer takes makes it log in with the profile's credentials, as swiftclient does.
Against the real Swift (tempauth), with its auth requests counted;
with Keystone: tests/keystone/test_store_login_keystone.py."""

from __future__ import annotations

import pytest
from faultkit import write_tree
from support.stores import download_in_another_thread

from cfbackup import stores
from cfbackup.config.load import load_config

pytestmark = [pytest.mark.faults, pytest.mark.swift]


@pytest.fixture
def store(make_setup, monkeypatch):
    setup = make_setup()
    write_tree(setup.source, mb=1)
    assert setup.run("backup").returncode == 0
    monkeypatch.setenv("T_SWIFT_KEY", setup.env["T_SWIFT_KEY"])
    profile = load_config(setup.config).profiles[setup.profile]
    return setup, stores.open_store(profile)


@pytest.fixture
def logins(monkeypatch):
    """The logins made (each v1 auth request, whether swiftclient's get_auth_1_0 sends it or
    cfbackup's login that keeps its connection, ``swift_keepalive.py``)."""
    import swiftclient.client

    seen = []
    original = swiftclient.client.HTTPConnection.request

    def counted(self, method, full_path, *args, **kwargs):
        if full_path.startswith("/auth/"):
            seen.append(self)
        return original(self, method, full_path, *args, **kwargs)

    monkeypatch.setattr(swiftclient.client.HTTPConnection, "request", counted)
    return seen


def _a_volume(store) -> str:
    names = [n for n in store.list() if ".difftar." in n]
    assert names, "the backup made no volume"
    return names[0]


def test_a_download_thread_starts_with_the_listing_s_login(store, logins):
    setup, swift_store = store
    name = _a_volume(swift_store)
    assert len(logins) == 1  # the listing's
    data = download_in_another_thread(swift_store, name)
    assert len(logins) == 1, "the download thread logged in again"
    assert data == setup.connection().get_object(setup.container, name)[1]


def test_a_token_swift_refuses_is_replaced_by_a_new_login(store, logins):
    setup, swift_store = store
    name = _a_volume(swift_store)
    url, _ = swift_store._login
    swift_store._login = (url, "AUTH_tk" + "0" * 32)  # a token this Swift never issued
    data = download_in_another_thread(swift_store, name)
    assert len(logins) == 2  # the listing's, then the download's after Swift's 401
    # the renewed token is the one the next thread starts with: no second 401
    again = download_in_another_thread(swift_store, name)
    assert len(logins) == 2
    assert data == again == setup.connection().get_object(setup.container, name)[1]


@pytest.fixture
def slow_logins(monkeypatch):
    """The logins as (connection, thread) pairs, each taking 0.5 s (a far auth service): long
    enough for another thread to come while one is in progress. Recorded in the connection
    class cfbackup makes (``swift_keepalive.kept_login``'s, whose v1 login is its own)."""
    import threading
    import time

    from cfbackup import swift_keepalive

    seen: list[tuple[int, int]] = []
    kept_login = swift_keepalive.kept_login

    def slowed(base):
        class Slow(kept_login(base)):
            def get_auth(self):
                seen.append((id(self), threading.get_ident()))
                time.sleep(0.5)
                return super().get_auth()

        return Slow

    monkeypatch.setattr(swift_keepalive, "kept_login", slowed)
    return seen


def _one_thread_each(logins: list[tuple[int, int]]) -> None:
    """No connection logged in on two threads: a swiftclient Connection is not thread-safe,
    and one thread logging in another thread's connection changes its token under it."""
    threads: dict[int, set[int]] = {}
    for conn, thread in logins:
        threads.setdefault(conn, set()).add(thread)
    shared = {conn: seen for conn, seen in threads.items() if len(seen) > 1}
    assert not shared, f"a connection logged in on {len(next(iter(shared.values())))} threads"


def test_download_threads_that_start_together_share_one_login(store, slow_logins, monkeypatch):
    """A store without a view (drill, status, prefetch on its own) whose threads start at once:
    the second thread's sibling logged the first thread's connection in again, on the second
    thread, while the first thread's own login of it was in progress (two logins)."""
    import threading

    setup, listed = store
    name = _a_volume(listed)
    expected = setup.connection().get_object(setup.container, name)[1]
    swift_store = stores.open_store(listed.profile)  # never logged in
    slow_logins.clear()
    got: dict[int, bytes] = {}

    def download(index: int) -> None:
        parts: list[bytes] = []
        swift_store.download(name, parts.append, threading.Event())
        got[index] = b"".join(parts)

    threads = [threading.Thread(target=download, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert got == dict.fromkeys(range(3), expected)
    _one_thread_each(slow_logins)
    assert len(slow_logins) == 1, f"{len(slow_logins)} logins for one store"


def test_a_sibling_made_while_its_origin_renews_its_token_does_not_log_the_origin_in(
    store, slow_logins, monkeypatch
):
    """The view's connection gets a 401 (its token expired) and swiftclient forgets the token,
    waits 1 s and logs in again; a thread that asks the view for a connection meanwhile logged
    that connection in from its own thread, under the thread using it. swiftclient's back-off
    is held open until the twin is made, so the twin is made during it however loaded the
    machine is (a fixed sleep could miss the 401, or the back-off)."""
    import threading

    import swiftclient.client

    from cfbackup import swift

    setup, listed = store
    view = swift.TargetView(listed.profile, retries=1)
    origin = view.connection()
    origin.token = "AUTH_tk" + "0" * 32  # a token this Swift never issued: a 401, then a login
    slow_logins.clear()
    backing_off, twin_made = threading.Event(), threading.Event()
    sleep = swiftclient.client.sleep

    def held_back_off(seconds):  # the renewing thread's, after the 401: until the twin is made
        if threading.current_thread() is renewing:
            backing_off.set()
            twin_made.wait(30)
        sleep(seconds)

    monkeypatch.setattr(swiftclient.client, "sleep", held_back_off)
    renewing = threading.Thread(target=lambda: origin.head_container(setup.container))
    renewing.start()
    assert backing_off.wait(30), "the 401 did not come"
    assert origin.token is None, "swiftclient kept the token Swift refused"
    twin: list = []
    other = threading.Thread(target=lambda: twin.append(view.connection()))
    other.start()
    other.join(30)
    twin_made.set()
    renewing.join(30)
    assert twin and twin[0] is not origin
    twin[0].head_container(setup.container)  # a token of its own, from a login on its own thread
    _one_thread_each(slow_logins)
    by_origin = {thread for conn, thread in slow_logins if conn == id(origin)}
    assert by_origin == {renewing.ident}, "another thread logged in the view's connection"
