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
