"""With Swift v1 auth, duplicity's swiftclient never needs python-keystoneclient: refuse it.

With v1 auth (tempauth, Rackspace: ``SWIFT_AUTHVERSION=1``) swiftclient never uses
python-keystoneclient, yet importing swiftclient imports it and oslo.utils when installed:
0.2 s of every duplicity run (``python -X importtime``), a tenth of a one-file restore. The
import is refused (swiftclient catches the ImportError and keeps its v1 path); Keystone runs are
untouched. cfbackup's own process does the same (``cfbackup.swift.load_client``).
"""

import sys


def applies(env):
    return env.get("SWIFT_AUTHVERSION") in ("1", "1.0")


def apply(env):
    if "keystoneclient" not in sys.modules:
        sys.modules["keystoneclient"] = None
