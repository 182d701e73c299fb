"""aiosmtpd on loopback for the notification tests (a real SMTP server, not a mock)."""

from __future__ import annotations

import socket
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    """aiosmtpd on loopback, keeping each message it accepts."""

    def __init__(self, *, tls=None, ssl=None, users=None):
        import ssl as ssl_module

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list = []
        self.logins: list[str] = []
        self.port = free_port()
        server = self

        class Handler:
            async def handle_DATA(self, smtp, session, envelope):
                server.messages.append(envelope)
                return "250 OK"

        def authenticator(smtp, session, envelope, mechanism, auth_data):
            login = auth_data.login.decode()
            ok = users is not None and users.get(login) == auth_data.password.decode()
            if ok:
                server.logins.append(login)
            return AuthResult(success=ok, handled=False)

        kwargs = {}
        if tls is not None:
            context = ssl_module.create_default_context(ssl_module.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            kwargs.update(tls_context=context, require_starttls=True)
        if ssl is not None:
            context = ssl_module.create_default_context(ssl_module.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*ssl)
            kwargs.update(ssl_context=context)
        if users is not None:
            kwargs.update(authenticator=authenticator, auth_require_tls=True)
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()

    def wait(self, count=1, timeout=10.0) -> list:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages

    @staticmethod
    def text(envelope) -> str:
        import email

        message = email.message_from_bytes(envelope.content)
        body = message.get_payload(decode=True) or b""
        return f"Subject: {message['Subject']}\n\n" + body.decode("utf-8")
