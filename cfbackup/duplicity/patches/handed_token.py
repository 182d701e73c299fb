"""duplicity's Swift connections start with the token cfbackup's checks obtained (a core patch).

Before a backup cfbackup authenticates once for its checks (``swift.TargetView``); duplicity
then authenticated three times more, once per swiftclient Connection it makes: its backend's,
and one in each of the two SwiftService thread pools it uses (the container's stat at start,
each volume's size after its upload). Each is 1-2 round trips (Keystone: more), 0.5 s of a run
at 80 ms. The backup action hands the checks' storage URL and token to the backup's duplicity
(``SWIFT_HANDOVER_STORAGE_URL``/``SWIFT_HANDOVER_TOKEN`` in the run's environment for it, only
for a token of that run that is minutes old at most, ``environment.handover_environment``);
restore, verify, list, prune and cleanup hand over the login their checks share the same way,
asked for at each duplicity command's start (``actions/common.duplicity``). ``run.run_duplicity``
never puts them in a process's environment: they go on the launcher's argument pipe (below).

Every Connection created without a token of its own then starts with that one, and keeps the
credentials duplicity gave it: when Swift rejects the token (expired, revoked) the request is
retried once after authenticating as it would have without the patch. swiftclient does so
itself when it holds a user and key (v1, a Keystone password); a Connection on a keystoneauth1
session (the application-credential patch) gives up, since its session never issued the
refused token, and duplicity retried the whole operation after its retry delay, spending one of
its attempts (seen in the Keystone expiry test): ``_retry`` authenticates and retries it.
duplicity's own ``SWIFT_PREAUTHTOKEN`` is not used: with it, its backend passes no credentials
at all and an expired token ends the run (DESIGN.md section 5).

The variables leave duplicity's environment when the patch is applied: gpg, a restarted
duplicity and upload-pool workers authenticate as before.

A backup's warm duplicity (``run.WarmDuplicity``) starts before the checks have authenticated,
so that its imports overlap them: it gets ``SWIFT_HANDOVER_LATE=1`` instead, the patch is
applied with no token yet, and the URL and token come with its arguments (:func:`hand`, from
the launcher), before duplicity makes its first Connection. A restore's warm duplicity and every
duplicity started cold with a token to hand over are started the same way. Given none (the token
grew too old), every Connection authenticates as without the patch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

URL = "SWIFT_HANDOVER_STORAGE_URL"
TOKEN = "SWIFT_HANDOVER_TOKEN"
LATE = "SWIFT_HANDOVER_LATE"  # =1: the URL and token come with a warm duplicity's arguments
_handed: dict[str, str] = {}  # the URL and token Connections start with, once known


def applies(env: Mapping[str, str]) -> bool:
    return bool(env.get(URL) and env.get(TOKEN)) or env.get(LATE) == "1"


def apply(env: Mapping[str, str]) -> None:
    handed = (env.get(URL), env.get(TOKEN))
    late = env.get(LATE) == "1"
    for variable in (URL, TOKEN, LATE):
        os.environ.pop(variable, None)
    if all(handed):  # a pool worker (spawned after the pop) finds none: nothing to do
        install(*handed)
    elif late:
        install(None, None)


def hand(url: str, token: str) -> None:
    """The URL and token a patch applied with ``LATE`` waited for; Connections made from now on
    start with them."""
    _handed.update(url=url, token=token)


def install(url: str | None, token: str | None) -> None:
    """Make every swiftclient Connection created from now on without a URL and token start
    with ``url`` and ``token`` (or with those :func:`hand` gives later, once it has)."""
    if url and token:
        hand(url, token)
    import swiftclient
    import swiftclient.client
    import swiftclient.service
    from swiftclient.exceptions import ClientException

    base = swiftclient.client.Connection  # servicenet's or the application credential's

    class HandedTokenConnection(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.handed = not self.url and not self.token and bool(_handed)
            if self.handed:
                self.url, self.token = _handed["url"], _handed["token"]

        def get_auth(self):
            self.handed = False  # its own token from now on
            return super().get_auth()

        def _retry(self, reset_func, func, *args, **kwargs):
            try:
                return super()._retry(reset_func, func, *args, **kwargs)
            except ClientException as error:
                # swiftclient gave up on the handed token without authenticating (a
                # keystoneauth1 session that never issued it has nothing to invalidate)
                if error.http_status != 401 or not self.handed:
                    raise
                self.handed = False
                self.url = self.token = None
                if reset_func:
                    reset_func(func, *args, **kwargs)
                return super()._retry(reset_func, func, *args, **kwargs)

    swiftclient.Connection = HandedTokenConnection
    swiftclient.client.Connection = HandedTokenConnection
    swiftclient.service.Connection = HandedTokenConnection
