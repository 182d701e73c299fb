"""A BIND key file as tsig-keygen writes it: its base64 secret may hold "//", which is no
comment (the TSIG key-file test failed about one run in fifty: its random secret held one)."""

from __future__ import annotations

from cfbackup_ip_fixup.rfc2136 import tsig_key

SECRET = "ab//cd+ef/gh0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz/+//AA=="


def test_a_secret_with_slashes_is_read_whole_and_comments_still_go():
    text = (
        "// made by tsig-keygen\n"
        'key "web-fix-key" {\n'
        "\talgorithm hmac-sha512; # the algorithm\n"
        f'\tsecret "{SECRET}"; /* the secret */\n'
        "};\n"
    )
    assert tsig_key(text, None, "profiles.main.ip_fixup") == ("web-fix-key", "hmac-sha512", SECRET)
