"""A v1 login whose HTTP connection serves the connection's first Swift request too.

swiftclient's v1 login (``get_auth_1_0``) opens an HTTP connection of its own and closes it
once it has the token; the first request after it (a restore's listing of the target) then
opens another one to the same host. Across a network a new connection costs one round trip
more before its request goes (TCP's handshake; TLS's on top), measured on the bench's 80 ms
link: the listing 0.17 s on a new connection, 0.09 s on the login's (docs/performance.md,
twelfth stop). Here the login's connection is kept, and the connection's first request takes
it when the storage URL is on the same scheme, host and port as the auth URL (tempauth, a
v1 proxy); else it is closed as swiftclient closes it. Keystone logins are keystoneauth1's
and are left alone.
"""

from __future__ import annotations

from urllib.parse import urlparse

V1 = ("1.0", "1", 1)


def kept_login(base: type) -> type:
    """``base`` (a swiftclient Connection class) whose v1 login keeps its HTTP connection for
    the first request that follows on the same origin."""

    class KeptLogin(base):  # type: ignore[misc, valid-type]
        _kept = None  # (origin, swiftclient HTTPConnection) of the last login, not used yet

        def get_auth(self):
            if self.session is not None or self.auth_version not in V1:
                return super().get_auth()
            from swiftclient import client

            self._drop_kept()
            parsed, conn = client.http_connection(
                self.authurl,
                cacert=self.cacert,
                insecure=self.insecure,
                cert=self.cert,
                cert_key=self.cert_key,
                timeout=self.timeout,
            )
            kept = False
            try:  # as swiftclient's get_auth_1_0, the connection kept when it went well
                headers = {"X-Auth-User": self.user, "X-Auth-Key": self.key}
                conn.request("GET", parsed.path, "", headers)
                resp = conn.getresponse()
                body = resp.read()
                resp.close()
                client.http_log((self.authurl, "GET"), headers, resp, body)
                url = resp.getheader("x-storage-url")
                if resp.status < 200 or resp.status >= 300 or (body and not url):
                    raise client.ClientException.from_response(resp, "Auth GET failed", body)
                token = resp.getheader("x-storage-token", resp.getheader("x-auth-token"))
                url = (self.os_options or {}).get("object_storage_url") or url
                if _origin(url) == _origin(self.authurl):
                    self._kept, kept = (_origin(url), conn), True
            finally:
                if not kept:
                    conn.close()
            self.url, self.token = url, token
            return self.url, self.token

        def http_connection(self, url=None):
            kept, self._kept = self._kept, None
            target = url or self.url
            if kept is not None and target and kept[0] == _origin(target):
                return urlparse(target), kept[1]
            if kept is not None:
                kept[1].close()
            return super().http_connection(url)

        def close(self):
            self._drop_kept()
            super().close()

        def _drop_kept(self) -> None:
            kept, self._kept = self._kept, None
            if kept is not None:
                kept[1].close()

    return KeptLogin


def forget_kept(conn) -> None:
    """A copy of ``conn`` (``swift_connect.sibling``) does not share its kept connection: a
    swiftclient HTTP connection is not for two threads."""
    if getattr(conn, "_kept", None) is not None:
        conn._kept = None


def _origin(url: str | None) -> tuple[str, str]:
    parsed = urlparse(url or "")
    return parsed.scheme.lower(), parsed.netloc.lower()


def preconnect(conn, timeout: float) -> list:
    """Open ``conn``'s HTTP connection to its storage URL now, with no request on it, so that
    its first request (a restore's first volume) does not wait for the handshake: one round
    trip (TCP; TLS's too) paid while the run still lists the target. Returns the sockets it
    connected (for the caller's ``sockwatch.Sockets.adopt``; the calling thread's own watcher,
    if any, records it as any connect); none when it could not, which is no failure (the first
    request connects as it always did)."""
    try:
        parsed, http = conn.http_conn = conn.http_connection()
        url = f"{parsed.scheme}://{parsed.netloc}/"
        session = http.request_session
        args = http.requests_args
        settings = session.merge_environment_settings(
            url, args.get("proxies", {}), True, args.get("verify"), args.get("cert")
        )
        if settings.get("proxies"):
            return []  # through a proxy: the pool is the proxy's, left as it is
        import requests

        prepared = requests.Request("GET", url).prepare()
        adapter = session.get_adapter(url)
        pool = adapter.get_connection_with_tls_context(
            prepared, settings["verify"], proxies=None, cert=settings.get("cert")
        )
        connection = pool._get_conn()
        connection.timeout = timeout
        try:
            connection.connect()
        except BaseException:
            connection.close()
            raise
        sock = connection.sock
        pool._put_conn(connection)
        return [sock] if sock is not None else []
    except Exception:  # noqa: BLE001 - only a head start: the request connects itself
        return []
