"""Deliver a notification: mail (SMTP, or the local sendmail) and HTTP requests (pings, the
JSON webhook).

Each function raises :class:`NotifyError` with a sentence naming the server and what to fix;
the plugin logs it as a warning. A notification never changes a run's result.
"""

from __future__ import annotations

import base64
import http.client
import json
import shlex
import smtplib
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from cfbackup import __version__
from cfbackup.redact import redact_output

HTTP_ATTEMPTS = 3  # a ping lost to a blip would page someone: retry 5xx and network errors
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class NotifyError(Exception):
    pass


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()


def make_message(*, sender: str, recipients: list[str], subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["X-Mailer"] = f"cfbackup {__version__}"
    message.set_content(body)
    return message


def pipe_to_sendmail(command: str, message: EmailMessage, *, timeout: float = 30) -> None:
    """Hand ``message`` to the local mail system, as the old scripts did: ``sendmail -t``
    reads the recipients from the headers, the message from stdin (nothing on argv but the
    command itself; a password, if the mail system needs one, stays in its own config)."""
    from cfbackup import execute
    from cfbackup.errors import CfbackupError

    try:
        argv = shlex.split(command)
    except ValueError as error:
        raise NotifyError(f"notify.email.sendmail_command cannot be split: {error}") from None
    if not argv:
        raise NotifyError("notify.email.sendmail_command is empty")
    try:
        result = execute.capture(
            argv, input_text=message.as_string(), timeout=timeout, own_group=True
        )
    except CfbackupError as error:  # not found, or it hung
        raise NotifyError(
            f"{error.message.rstrip('.')}: check notify.email.sendmail_command"
        ) from None
    if result.returncode != 0:
        said = redact_output(" ".join(result.tail[-3:])) or "no message"
        raise NotifyError(
            f"{argv[0]} exited with code {result.returncode} ({said}): check the mail system "
            "and notify.email.sendmail_command"
        )


def send_mail(
    *,
    host: str,
    port: int | None,
    security: str,
    sender: str,
    recipients: list[str],
    subject: str,
    body: str,
    username: str | None = None,
    password: str | None = None,
    ca_file: str | None = None,
    timeout: float = 30,
) -> None:
    message = make_message(sender=sender, recipients=recipients, subject=subject, body=body)
    port = port or DEFAULT_PORTS[security]
    where = f"SMTP server {host}:{port}"
    try:
        if security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=_tls_context(ca_file)
            )
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            smtp.ehlo()
            if security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise NotifyError(
                        f"{where} does not offer STARTTLS: set notify.email.security to "
                        '"ssl", or to "none" for a local mail server without TLS'
                    )
                smtp.starttls(context=_tls_context(ca_file))
                smtp.ehlo()
            if username:
                smtp.login(username, password or "")
            smtp.send_message(message)
    except NotifyError:
        raise
    except smtplib.SMTPAuthenticationError as error:
        raise NotifyError(
            f"{where} rejected the login of {username} ({error.smtp_code}): check "
            "notify.email.username and password"
        ) from None
    except smtplib.SMTPNotSupportedError:
        raise NotifyError(
            f"{where} does not offer AUTH on this connection: use security starttls or ssl"
        ) from None
    except ssl.SSLError as error:
        raise NotifyError(
            f"TLS with {where} failed ({error.reason or error}): check notify.email.ca_file"
        ) from None
    except (smtplib.SMTPException, OSError) as error:
        raise NotifyError(
            f"sending mail through {where} failed: {redact_output(str(error))}"
        ) from None


def http_request(
    url: str,
    *,
    body: bytes | None = None,
    content_type: str = "text/plain; charset=utf-8",
    headers: dict[str, str] | None = None,
    timeout: float = 10,
    attempts: int = HTTP_ATTEMPTS,
    backoff: float = 0.5,
) -> int:
    """POST ``body`` (GET when None) to ``url``; the status code. Retries 5xx and network
    errors, not 4xx (a wrong URL stays wrong)."""
    request_headers = {"User-Agent": f"cfbackup/{__version__}", **(headers or {})}
    if body is not None:
        request_headers["Content-Type"] = content_type
    shown = origin(url)  # the path (a webhook's token, a check's UUID) and a login are secrets
    url, login = _without_login(url)
    if login and "Authorization" not in request_headers:
        request_headers["Authorization"] = "Basic " + base64.b64encode(login).decode("ascii")
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            request = urllib.request.Request(
                url,
                data=body,
                headers=request_headers,
                method="POST" if body is not None else "GET",
            )
        except ValueError:  # its message quotes the whole URL
            raise NotifyError(
                f"request to {shown} failed: not a URL (http:// or https://)"
            ) from None
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read(65536)
                return response.status
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code} {error.reason}"
            if error.code < 500:
                break
        except (TimeoutError, urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            last = redact_output(str(reason))
        except (ValueError, http.client.HTTPException) as error:  # InvalidURL quotes the URL
            last = type(error).__name__
            break
        if attempt < attempts:
            time.sleep(backoff * attempt)
    raise NotifyError(f"request to {shown} failed: {last}")


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what a message may show of a notify URL (its
    path and query are often the credential: a Slack or Discord webhook, a healthchecks UUID;
    its userinfo holds a password)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:  # a port that is not a number
        return "an invalid URL"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def _without_login(url: str) -> tuple[str, bytes | None]:
    """``url`` without ``user:password@`` (urllib takes it for part of the host name), and
    that login for HTTP Basic authentication."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    login = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}".encode()
    return urllib.parse.urlunsplit(parts._replace(netloc=hostport)), login


def post_json(url: str, data: Any, *, token: str | None = None, timeout: float = 10) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = json.dumps(data, sort_keys=True, default=str).encode("utf-8")
    return http_request(
        url, body=body, content_type="application/json", headers=headers, timeout=timeout
    )
