"""duplicity's swiftclient connections retry a request as often as ``swift.retries`` says.

swiftclient retries a request that failed on the network or with a 5xx itself, ``retries``
times with a back-off of 1, 2, 4... s (not one that timed out: patches/swift_timeout.py),
before duplicity sees one failed attempt (which ``--num-retries`` then repeats). duplicity's
backend and its SwiftService leave swiftclient's default, 5 (about 31 s per attempt), and have
no option for it. A profile that sets ``swift.retries`` puts it in duplicity's environment
(:data:`ENVIRONMENT`); every Connection created from then on (the backend's, each
SwiftService pool's, an upload worker's) gets it.
"""

ENVIRONMENT = "CFBACKUP_SWIFT_RETRIES"


def applies(env):
    return env.get(ENVIRONMENT, "").isdigit()


def apply(env):
    install(int(env[ENVIRONMENT]))


def install(retries: int) -> None:
    import swiftclient
    import swiftclient.client
    import swiftclient.service

    base = swiftclient.client.Connection  # servicenet's, the application credential's...

    class RetriesConnection(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.retries = retries

    swiftclient.Connection = swiftclient.client.Connection = RetriesConnection
    swiftclient.service.Connection = RetriesConnection
