"""Rackspace ServiceNet with Swift v1 auth: duplicity's swiftclient talks to the internal host.

A v1 profile with ``interface = "internal"`` (``RACKSPACE_SERVICENET=True`` in a legacy file)
sets ``CFBACKUP_SWIFT_SERVICENET=1`` in duplicity's environment; the rewrite itself lives in
``cfbackup/servicenet.py`` (standard library only), shared with cfbackup's own connection.
"""


def applies(env):
    return env.get("CFBACKUP_SWIFT_SERVICENET") == "1"


def apply(env):
    from cfbackup import servicenet

    servicenet.install()
