"""With Keystone, a store's download thread shares the listing's keystoneauth session
(``stores.SwiftStore`` through ``swift.sibling``) and takes its token from it, not the token
another connection holds: the session renews its token before it expires, so a thread started
after the token expired meets no 401 (the token-expiry runs: tests/keystone/test_token_expiry.py).
Here the first connection holds a token Swift refuses: the download thread does not use it and
makes no request Swift refuses. A connection with a session of its own that never logged in
would not even log in again on a 401 (swiftclient asks the session, which says no)."""

from __future__ import annotations

import pytest
from keystone_helpers import password_swift
from support.stores import download_in_another_thread

from cfbackup import stores
from cfbackup.config.load import load_config

pytestmark = pytest.mark.keystone


def test_a_download_thread_takes_its_token_from_the_shared_session(
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
    skip = len(tier.proxy_log())
    assert len(download_in_another_thread(store, volume)) == sizes[volume]
    refused = [line for line in tier.proxy_log()[skip:] if " 401 " in line]
    assert not refused, refused
