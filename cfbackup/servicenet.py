"""Rackspace ServiceNet with Swift v1 auth: the storage URL's host prefixed with ``snet-``.

What ``RACKSPACE_SERVICENET=True`` did for dt-cf-backup.sh (python-cloudfiles read it), and
swiftclient's ``snet=True`` did until swiftclient 4 dropped the option; duplicity's swift backend
never had a way to ask for it. cfbackup applies the same rewrite to its own Swift connection
(``swift.connect``) and, when a v1 profile says ``interface = "internal"``, to duplicity's: the
environment carries :data:`ENVIRONMENT` and duplicity's start-up file calls :func:`install`.
Standard library only at import time: it runs inside duplicity's interpreter.
"""

from __future__ import annotations

import urllib.parse

ENVIRONMENT = "CFBACKUP_SWIFT_SERVICENET"
PREFIX = "snet-"


def servicenet_url(url: str) -> str:
    """``https://storage101.dfw1.clouddrive.com/v1/A`` -> ``https://snet-storage101...``."""
    parts = urllib.parse.urlsplit(url)
    if not parts.netloc or parts.netloc.startswith(PREFIX):
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=PREFIX + parts.netloc))


def connection_class(base: type) -> type:
    """A swiftclient ``Connection`` class whose storage URL is the ServiceNet one."""

    class ServiceNetConnection(base):  # type: ignore[misc, valid-type]
        def get_auth(self):
            url, token = super().get_auth()
            self.url = servicenet_url(url)
            return self.url, token

    return ServiceNetConnection


def install() -> None:
    """Inside duplicity: every swiftclient Connection (its backend's and its SwiftService's)
    talks to the ServiceNet storage host."""
    import swiftclient
    import swiftclient.client
    import swiftclient.service

    cls = connection_class(swiftclient.client.Connection)
    swiftclient.Connection = swiftclient.client.Connection = cls
    swiftclient.service.Connection = cls
