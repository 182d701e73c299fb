"""The notify plugin against a real SMTP server (aiosmtpd) and an HTTP receiver on loopback,
through real backups with the installed CLI."""

from __future__ import annotations

import json
import uuid

import pytest
from smtp_server import SmtpServer


def _fail(setup, name="demo"):
    """Make the profile's backup fail in duplicity, quickly (a file where the target dir goes)."""
    blocker = setup.root / f"blocker-{name}"
    blocker.write_text("not a directory")
    profile = setup.profile(name)
    profile["target"] = f"file://{blocker}/sub"
    profile["extra_options"] = ["--num-retries=1"]


def _fail_fast(setup, name="demo"):
    """Make the profile's runs fail before duplicity starts (a missing source)."""
    setup.profile(name)["source"] = str(setup.root / "no-such-source")


def _notify(setup, name="demo", **section):
    setup.profile(name)["notify"] = section
    setup.write()


def test_failure_sends_mail_webhook_and_pings(setup, smtp_server, http_receiver):
    _fail(setup)
    _notify(
        setup,
        email={"to": ["ops@example.com"], "host": "127.0.0.1", "port": smtp_server.port,
               "security": "none", "from": "backup@example.com"},
        webhook={"url": http_receiver.url + "/hook"},
        healthchecks={"url": http_receiver.url + "/ping/abc"},
    )  # fmt: skip
    result = setup.cli("backup", check=7)
    assert "notify" not in result.stderr  # no delivery warning

    [mail] = smtp_server.wait(1)
    assert mail.rcpt_tos == ["ops@example.com"] and mail.mail_from == "backup@example.com"
    text = SmtpServer.text(mail)
    assert "Subject: [cfbackup] backup of demo on " in text and ": FAILED (duplicity)" in text
    assert "Result:    duplicity (exit code 7)" in text
    assert "duplicity backup failed with exit code 50" in text
    assert "Last lines of the output:" in text and "Not a directory" in text
    assert "Run log on " in text

    assert http_receiver.paths() == ["/ping/abc/start", "/hook", "/ping/abc/fail"] or sorted(
        http_receiver.paths()
    ) == sorted(["/ping/abc/start", "/hook", "/ping/abc/fail"])
    start = next(r for r in http_receiver.requests if r.path.endswith("/start"))
    assert http_receiver.requests.index(start) == 0  # the start ping comes first
    hook = next(r for r in http_receiver.requests if r.path == "/hook")
    assert hook.method == "POST" and hook.headers["Content-Type"] == "application/json"
    body = hook.json()
    assert body["profile"] == "demo" and body["action"] == "backup"
    assert body["ok"] is False and body["exit_code"] == 7 and body["result"] == "duplicity"
    assert any("Not a directory" in line for line in body["log_tail"])
    assert body["duration"] > 0 and body["started"] and body["finished"]
    fail = next(r for r in http_receiver.requests if r.path.endswith("/fail"))
    assert b"FAILED" in fail.body


def test_success_notifies_only_when_always_but_always_pings(setup, smtp_server, http_receiver):
    _notify(
        setup,
        email={"to": ["ops@example.com"], "host": "127.0.0.1", "port": smtp_server.port,
               "security": "none"},
        webhook={"url": http_receiver.url + "/hook"},
        healthchecks={"url": http_receiver.url + "/ping/abc"},
    )  # fmt: skip
    setup.cli("backup", check=0)
    assert http_receiver.paths() == ["/ping/abc/start", "/ping/abc"]
    assert smtp_server.messages == []

    setup.profile("demo")["notify"]["email"]["when"] = "always"
    setup.profile("demo")["notify"]["webhook"]["when"] = "always"
    setup.write()
    setup.cli("backup", check=0)
    [mail] = smtp_server.wait(1)
    text = SmtpServer.text(mail)
    assert ": OK" in text and "succeeded" in text
    assert "Statistics:" in text and "uploaded:" in text and "source size:" in text
    assert "Last lines" not in text
    hook = [r for r in http_receiver.requests if r.path == "/hook"][-1].json()
    assert hook["ok"] is True and hook["stats"]["SourceFiles"] >= 3
    assert "TotalDestinationSizeChange" in hook["stats"] and hook["log_tail"] == []


def test_dry_run_and_other_actions_send_nothing(setup, smtp_server, http_receiver):
    _notify(
        setup,
        email={"to": ["ops@example.com"], "host": "127.0.0.1", "port": smtp_server.port,
               "security": "none", "when": "always"},
        webhook={"url": http_receiver.url + "/hook", "when": "always"},
        healthchecks={"url": http_receiver.url + "/ping/abc"},
    )  # fmt: skip
    setup.cli("backup", "--dry-run", check=0)
    _fail_fast(setup)
    setup.write()
    setup.cli("backup", "--dry-run", check=3)  # a failing dry run is quiet too
    setup.cli("status")  # not in notify.actions
    assert http_receiver.requests == [] and smtp_server.messages == []


def test_starttls_with_login_and_ssl(setup, certificate, http_receiver, monkeypatch):
    cert, key = certificate
    password = "smtp-" + uuid.uuid4().hex
    _fail_fast(setup)
    with SmtpServer(tls=(cert, key), users={"mailer": password}) as starttls:
        _notify(
            setup,
            email={"to": ["ops@example.com"], "host": "127.0.0.1", "port": starttls.port,
                   "security": "starttls", "ca_file": str(cert), "username": "mailer",
                   "password_env": "CFBACKUP_TEST_SMTP_PASSWORD"},
        )  # fmt: skip
        result = setup.cli("backup", env={"CFBACKUP_TEST_SMTP_PASSWORD": password}, check=3)
        assert "notify" not in result.stderr, result.stderr
        starttls.wait(1)
        assert starttls.logins == ["mailer"] and len(starttls.messages) == 1
        assert password not in SmtpServer.text(starttls.messages[0])

        # a wrong password is a warning naming the fix; the run's own result is unchanged
        result = setup.cli("backup", env={"CFBACKUP_TEST_SMTP_PASSWORD": "wrong"}, check=3)
        assert "rejected the login of mailer" in result.stderr

    with SmtpServer(ssl=(cert, key)) as ssl_server:
        setup.profile("demo")["notify"]["email"].update(
            port=ssl_server.port, security="ssl", username=None
        )
        del setup.profile("demo")["notify"]["email"]["username"]
        del setup.profile("demo")["notify"]["email"]["password_env"]
        setup.write()
        setup.cli("backup", check=3)
        assert len(ssl_server.wait(1)) == 1


def test_starttls_refused_by_a_plain_server_is_a_warning(setup, smtp_server):
    _fail_fast(setup)
    _notify(
        setup,
        email={"to": ["ops@example.com"], "host": "127.0.0.1", "port": smtp_server.port},
    )  # fmt: skip
    result = setup.cli("backup", check=3)
    assert "does not offer STARTTLS" in result.stderr and 'to "none"' in result.stderr
    assert smtp_server.messages == []


def test_http_errors_are_retried_then_reported(setup, http_receiver):
    _fail_fast(setup)
    _notify(
        setup,
        webhook={"url": http_receiver.url + "/status/503"},
        healthchecks={"fail_url": http_receiver.url + "/status/404"},
    )
    result = setup.cli("backup", check=3)
    assert http_receiver.paths().count("/status/503") == 3  # retried
    assert http_receiver.paths().count("/status/404") == 1  # a 4xx is not retried
    assert "webhook failed: request to " in result.stderr and "HTTP 503" in result.stderr
    assert "healthchecks ping failed" in result.stderr and "HTTP 404" in result.stderr


def test_webhook_bearer_token(setup, http_receiver):
    token = "tok-" + uuid.uuid4().hex
    _fail_fast(setup)
    _notify(
        setup,
        webhook={"url": http_receiver.url + "/hook", "bearer_token_env": "CFBACKUP_TEST_TOKEN"},
    )  # fmt: skip
    setup.cli("backup", env={"CFBACKUP_TEST_TOKEN": token}, check=3)
    [hook] = http_receiver.requests
    assert hook.headers["Authorization"] == f"Bearer {token}"
    assert token not in hook.body.decode()


@pytest.mark.swift
def test_secrets_never_reach_mail_or_webhook(setup, local_swift, smtp_server, http_receiver):
    """The Swift password and the passphrase, echoed by a hook, and logged by duplicity at debug
    level (its swift backend logs its connection arguments), never leave the machine."""
    user, key = local_swift.users["admin"]
    passphrase = "pass-" + uuid.uuid4().hex
    leak = setup.root / "leak.txt"
    leak.write_text(f"auth failed for {key} with {passphrase}\n")
    profile = setup.profile("demo")
    profile.update(
        target="swift://" + "x" * 300,  # Swift refuses the container after a good login
        verbosity="debug",
        extra_options=["--num-retries=1"],
        disable_plugins=["quota_guard"],  # the run must reach duplicity
        encryption={"mode": "symmetric", "passphrase_env": "CFBACKUP_TEST_PASSPHRASE"},
        swift={"auth_url": local_swift.auth_url, "username": user,
               "password_env": "CFBACKUP_TEST_SWIFT_KEY"},
        # a hook never gets the variables *_env settings name: it prints the secrets from a file
        command_hooks={"before_backup": [f"cat {leak} >&2; exit 1"]},
    )  # fmt: skip
    _notify(
        setup,
        email={"to": ["ops@example.com"], "host": "127.0.0.1", "port": smtp_server.port,
               "security": "none"},
        webhook={"url": http_receiver.url + "/hook"},
        healthchecks={"url": http_receiver.url + "/ping"},
    )  # fmt: skip
    env = {"CFBACKUP_TEST_SWIFT_KEY": key, "CFBACKUP_TEST_PASSPHRASE": passphrase}

    vetoed = setup.cli("backup", env=env, check=5)  # the hook vetoes, echoing both secrets
    assert "auth failed for *** with ***" in vetoed.stderr
    del profile["command_hooks"]
    setup.write()
    setup.cli("backup", env=env, check=7)  # duplicity fails after logging in

    mails = [SmtpServer.text(m) for m in smtp_server.wait(2)]
    assert len(mails) == 2
    assert "auth failed for *** with ***" in mails[0]
    assert "Container creation failed" in mails[1]
    assert "'key': '***'" in mails[1]  # duplicity's debug line, with the password masked
    bodies = [r.body.decode() for r in http_receiver.requests]
    assert len(bodies) == 6  # per run: start ping, webhook, fail ping
    hooks = [json.loads(b) for b in bodies if b.startswith("{")]
    assert [h["exit_code"] for h in hooks] == [5, 7]
    assert any("'key': '***'" in line for line in hooks[1]["log_tail"])
    logs = [p.read_text() for p in (setup.root / "state" / "logs").iterdir()]
    for text in mails + bodies + logs:
        assert key not in text and passphrase not in text


def test_sendmail_transport_hands_the_mail_to_msmtp(setup, smtp_server, tmp_path):
    """transport sendmail: the message on stdin of a real sendmail-compatible client (Debian's
    msmtp, reading its own config file), which relays it to the SMTP server; a mail system that
    refuses is a warning and never changes the run's result."""
    import shutil

    assert shutil.which("msmtp"), "msmtp is missing: run scripts/setup.sh --dev"
    rc = tmp_path / "msmtprc"
    rc.write_text(
        f"account default\nhost 127.0.0.1\nport {smtp_server.port}\nauth off\ntls off\n"
        "from backup@example.com\n"
    )
    rc.chmod(0o600)
    _notify(
        setup,
        email={"to": ["ops@example.com", "oncall@example.com"], "when": "always",
               "transport": "sendmail", "sendmail_command": f"msmtp -C {rc} -t",
               "from": "backup@example.com", "subject_prefix": "[nightly]"},
    )  # fmt: skip
    result = setup.cli("backup", check=0)
    assert "notify" not in result.stderr, result.stderr
    [mail] = smtp_server.wait(1)
    assert sorted(mail.rcpt_tos) == ["oncall@example.com", "ops@example.com"]  # read by -t
    text = SmtpServer.text(mail)
    assert "Subject: [nightly] backup of demo on " in text and ": OK" in text
    assert "cfbackup backup of profile demo on " in text and "succeeded." in text

    setup.profile("demo")["notify"]["email"]["sendmail_command"] = f"msmtp -C {rc} -t --port=1"
    setup.write()
    result = setup.cli("backup", check=0)  # the mail fails; the backup does not
    warning = next(line for line in result.stderr.splitlines() if "notify:" in line)
    assert "msmtp exited with code" in warning and "sendmail_command" in warning, warning
    missing = setup.profile("demo")["notify"]["email"]
    missing["sendmail_command"] = "/nonexistent/sendmail -t"
    setup.write()
    result = setup.cli("backup", check=0)
    assert "/nonexistent/sendmail was not found" in result.stderr, result.stderr
    assert len(smtp_server.messages) == 1
