"""Built-in plugin ``notify``: tell people how runs went, without their reading logs.

Per profile (``[profiles.NAME.notify]``): a mail through SMTP (STARTTLS, SSL or plain, with
login) or the local ``sendmail -t``, healthchecks.io-style pings (start, then success or fail)
and a generic JSON webhook, for the actions listed in ``actions``; mail and webhook on failure
only, also on a success with warnings of its own, or always (:func:`should_send`). Nothing is
sent for ``--dry-run``. Every text is redacted (``summary.py``); a delivery problem is logged
as a warning and never changes the run's result.

It also keeps a Prometheus textfile (``--metrics-file`` or ``notify.metrics_file``) up to date
after each run (``metrics.py``). Documented in docs/plugins/notify.md and docs/operations.md.
"""

from __future__ import annotations

import contextlib
import logging
import socket

from cfbackup.config.schema import Option
from cfbackup.config.secrets import resolve_secret
from cfbackup.errors import CfbackupError
from cfbackup.hookspecs import hookimpl
from cfbackup.redact import redact, redact_output

SECTION = "notify"
log = logging.getLogger("cfbackup.notify")

WHEN = ("failure", "warnings", "always")

EMAIL = (
    Option(
        "to",
        "list",
        "Recipients; no mail is sent when empty.",
        default=[],
        example=["ops@example.com"],
    ),
    Option(
        "from",
        "string",
        "Sender address; cfbackup@HOSTNAME when unset.",
        example="backup@example.com",
    ),
    Option(
        "transport",
        "choice",
        "smtp: talk to an SMTP server (host, port, security, login); sendmail: hand the mail "
        "to the local mail system with sendmail_command, as the old scripts did.",
        default="smtp",
        choices=("smtp", "sendmail"),
    ),
    Option(
        "sendmail_command",
        "string",
        "With transport sendmail: the command that reads the mail (headers name the "
        "recipients) on standard input; run without a shell.",
        default="/usr/sbin/sendmail -t",
        example="msmtp -t",
    ),
    Option("host", "string", "SMTP server.", default="localhost"),
    Option(
        "port",
        "integer",
        "SMTP port; 587 for starttls, 465 for ssl, 25 for none when unset.",
        minimum=1,
    ),
    Option(
        "security",
        "choice",
        "starttls (refuses a server without STARTTLS), ssl (TLS from the start, port 465) or "
        "none (a local mail server; never with a password over the network).",
        default="starttls",
        choices=("starttls", "ssl", "none"),
    ),
    Option("ca_file", "path", "CA certificates to verify the server with (system store if unset)."),
    Option("username", "string", "SMTP login name; no login when unset."),
    Option("password", "secret", "SMTP password (use password_env, _file or _command)."),
    Option(
        "when",
        "choice",
        "failure: mail when a run fails; warnings: also when a run succeeds with warnings of "
        "its own (retention deletes Swift could not confirm), not the config warnings every "
        "run repeats; always: after every run.",
        default="failure",
        choices=WHEN,
    ),
    Option("subject_prefix", "string", "Start of the subject line.", default="[cfbackup]"),
)

HEALTHCHECKS = (
    Option(
        "url",
        "secret",
        "A healthchecks.io-style check URL: start pings go to URL/start, success to URL, "
        "failure to URL/fail (each with the summary as its body). Pings are sent after every "
        "run of the listed actions: the check's schedule detects runs that never happen. "
        "Anyone holding it can ping the check: a secret (url_env, _file, _command), inline "
        "only in a mode 0600 config.",
        example="https://hc-ping.com/your-check-uuid",
    ),
    Option("start_url", "secret", "Ping when a run starts (overrides URL/start)."),
    Option("success_url", "secret", "Ping when a run succeeds (overrides URL)."),
    Option("fail_url", "secret", "Ping when a run fails (overrides URL/fail)."),
)

WEBHOOK = (
    Option(
        "url",
        "secret",
        "POST a JSON summary of the run here. A webhook URL (Slack, Discord) is its own "
        "password: a secret (url_env, _file, _command), inline only in a mode 0600 config; "
        "user:password@ in it is sent as HTTP Basic authentication.",
        example="https://chat.example.com/hooks/backup",
    ),
    Option(
        "when",
        "choice",
        "failure: post when a run fails; warnings: also when a run succeeds with warnings "
        "of its own; always: after every run (as email.when).",
        default="failure",
        choices=WHEN,
    ),
    Option("bearer_token", "secret", "Sent as Authorization: Bearer TOKEN."),
)

OPTIONS = (
    Option(
        "actions",
        "list",
        "Which actions notify (backup, verify, drill, restore, prune, cleanup); add drill "
        "and verify to hear of a failed check.",
        default=["backup"],
        example=["backup", "verify"],
    ),
    Option(
        "timeout",
        "integer",
        "Seconds each SMTP conversation or HTTP request may take.",
        default=10,
        minimum=1,
    ),
    Option(
        "metrics_file",
        "path",
        "Prometheus textfile updated after every backup, verify, drill, restore, prune and "
        "cleanup (last success time, duration, bytes, exit code, what a drill or "
        "verify --read-data checked); --metrics-file overrides it.",
        example="/var/lib/prometheus/node-exporter/cfbackup.prom",
    ),
    Option("email", "table", "Mail through SMTP.", children=EMAIL),
    Option("healthchecks", "table", "healthchecks.io-style pings.", children=HEALTHCHECKS),
    Option("webhook", "table", "A generic JSON webhook.", children=WEBHOOK),
)

METRICS_COMMANDS = ("backup", "verify", "drill", "restore", "prune", "cleanup")


@hookimpl
def cfbackup_config_schema(register):
    register(SECTION, OPTIONS)


@hookimpl
def cfbackup_add_arguments(command, parser):
    if command in METRICS_COMMANDS:
        parser.add_argument(
            "--metrics-file",
            metavar="PATH",
            help="update this Prometheus textfile after the run (node_exporter textfile dir)",
        )


def _wanted(run) -> bool:
    return not run.dry_run and run.action in run.plugin_config(SECTION).get("actions", ())


def should_send(when: str, summary: dict) -> bool:
    """Whether a mail or webhook whose ``when`` is ``when`` goes out for the run ``summary``
    describes: "failure" after a failed run; "warnings" also after a success that carried
    warnings of its own (``run_warnings``; not the config warnings every run repeats, which
    would send every time); "always" after every run."""
    if not summary["ok"] or when == "always":
        return True
    return when == "warnings" and summary["run_warnings"] > 0


def _ping_urls(config: dict, where: str) -> dict[str, str | None]:
    """The ping URLs, each from its secret source (inline, _env, _file or _command)."""
    base = (resolve_secret(config, "url", where) or "").rstrip("/")
    return {
        "start": resolve_secret(config, "start_url", where) or (base + "/start" if base else None),
        "success": resolve_secret(config, "success_url", where) or base or None,
        "fail": resolve_secret(config, "fail_url", where) or (base + "/fail" if base else None),
    }


def _where(run, table: str) -> str:
    return f"profiles.{run.profile.name}.{SECTION}.{table}"


@hookimpl
def cfbackup_run_context(run):
    """Send the start ping when the run begins (after the lock, before the pre hooks)."""
    if not _wanted(run):
        return None
    config = run.plugin_config(SECTION)
    try:
        url = _ping_urls(config.get("healthchecks") or {}, _where(run, "healthchecks"))["start"]
    except CfbackupError as error:  # e.g. a url_env naming an unset variable: never stops a run
        log.warning("notify: %s", redact(error.message))
        return None
    if not url:
        return None
    return _start_ping(url, config["timeout"])


@contextlib.contextmanager
def _start_ping(url: str, timeout: float):
    from cfbackup_notify.senders import NotifyError, http_request

    try:
        http_request(url, body=b"", timeout=timeout, attempts=1)
    except NotifyError as error:
        log.warning("notify: start ping failed: %s", error)
    yield


@hookimpl
def cfbackup_run_finished(run, result):
    _record_metrics(run, result)
    if not _wanted(run):
        return
    from cfbackup_notify import summary as summaries

    config = run.plugin_config(SECTION)
    summary = summaries.build(run, result)
    for channel in (_ping, _mail, _webhook):
        try:
            channel(run, config, summary)
        except CfbackupError as error:  # e.g. a password_env naming an unset variable
            log.warning("notify: %s", redact(error.message))
        except Exception as error:  # one broken channel must not silence the others
            log.warning("notify: %s", redact_output(str(error)))


def _ping(run, config: dict, summary: dict) -> None:
    from cfbackup_notify import summary as summaries
    from cfbackup_notify.senders import NotifyError, http_request

    urls = _ping_urls(config.get("healthchecks") or {}, _where(run, "healthchecks"))
    url = urls["success" if summary["ok"] else "fail"]
    if not url:
        return
    try:
        http_request(url, body=summaries.text(summary).encode(), timeout=config["timeout"])
        log.info("notify: %s ping sent", "success" if summary["ok"] else "failure")
    except NotifyError as error:
        log.warning("notify: healthchecks ping failed: %s", error)


def _mail(run, config: dict, summary: dict) -> None:
    from cfbackup_notify import summary as summaries
    from cfbackup_notify.senders import NotifyError, make_message, pipe_to_sendmail, send_mail

    email = config.get("email") or {}
    if not email.get("to") or not should_send(email.get("when", "failure"), summary):
        return
    where = f"profiles.{run.profile.name}.{SECTION}.email"
    mail = {
        "sender": email.get("from") or f"cfbackup@{socket.gethostname()}",
        "recipients": email["to"],
        "subject": summaries.subject(summary, email["subject_prefix"]),
        "body": summaries.text(summary),
    }
    try:
        if email["transport"] == "sendmail":
            command = email["sendmail_command"]
            pipe_to_sendmail(command, make_message(**mail), timeout=config["timeout"])
        else:
            send_mail(
                host=email["host"],
                port=email.get("port"),
                security=email["security"],
                username=email.get("username"),
                password=resolve_secret(email, "password", where),
                ca_file=email.get("ca_file"),
                timeout=config["timeout"],
                **mail,
            )
        log.info("notify: mail sent to %s", ", ".join(email["to"]))
    except NotifyError as error:
        log.warning("notify: %s", error)


def _webhook(run, config: dict, summary: dict) -> None:
    from cfbackup_notify.senders import NotifyError, post_json

    hook = config.get("webhook") or {}
    if not should_send(hook.get("when", "failure"), summary):
        return
    where = _where(run, "webhook")
    url = resolve_secret(hook, "url", where)
    if not url:
        return
    token = resolve_secret(hook, "bearer_token", where)
    try:
        post_json(url, summary, token=token, timeout=config["timeout"])
        log.info("notify: webhook posted")
    except NotifyError as error:
        log.warning("notify: webhook failed: %s", error)


def _record_metrics(run, result) -> None:
    path = run.options.get("metrics_file") or run.plugin_config(SECTION).get("metrics_file")
    if not path or run.dry_run or run.action not in METRICS_COMMANDS:
        return
    from cfbackup_notify import metrics

    try:
        metrics.record_run(
            path,
            run.profile.name,
            metrics.action_label(run.action, run.options),
            int(result.exit_code),
            result.duration,
            result.stats or {},
        )
    except OSError as error:
        log.warning("metrics: cannot write %s: %s", path, error.strerror or error)
