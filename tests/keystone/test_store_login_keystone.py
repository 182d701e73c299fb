"""With Keystone, a store's download thread shares the listing's login and its keystoneauth
session (``stores.SwiftStore`` through ``swift.sibling``): a token Swift refuses is renewed
from Keystone in that thread. A connection that only copied the token, with a session of its
own that never logged in, would give up on the 401 (swiftclient asks the session whether a
new login can help, and a session that never logged in says no)."""

from __future__ import annotations

import threading

import pytest
from keystone_helpers import password_swift

from cfbackup import stores
from cfbackup.config.load import load_config

pytestmark = pytest.mark.keystone


def test_a_refused_token_is_renewed_in_the_download_thread(
    tier, write_config, source, cfbackup, cli_env, monkeypatch
):
    config = write_config(password_swift(tier))
    assert cfbackup("-c", config, "backup").returncode == 0
    for name in ("T_KS_PASSWORD", "T_PASSPHRASE"):
        monkeypatch.setenv(name, cli_env[name])
    store = stores.open_store(load_config(config).profile("main"))
    sizes = store.list()
    volume = next(name for name in sizes if ".difftar." in name)
    store._first.token = "gAAAAAB" + "x" * 120  # no token Keystone issued: Swift answers 401

    got, errors = [], []

    def download():
        try:
            store.download(volume, got.append, threading.Event())
        except Exception as error:  # noqa: BLE001 - re-raised below, in the test's thread
            errors.append(error)

    thread = threading.Thread(target=download)
    thread.start()
    thread.join(120)
    assert not errors, errors
    assert len(b"".join(got)) == sizes[volume]
