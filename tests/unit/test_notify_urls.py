"""Notify URLs are credentials (a webhook's path, a check's UUID, user:pass@): never shown,
masked wherever they might appear, and kept like other secrets."""

from __future__ import annotations

import pytest

from cfbackup import redact
from cfbackup.errors import ConfigError

SLACK = "https://hooks.slack.example/services/T0/B0/FAKEslackJ10"


@pytest.mark.parametrize(
    ("url", "shown", "hidden"),
    [
        ("https://user:FAKEpwI9@127.0.0.1:1/hook", "https://127.0.0.1:1", ["FAKEpwI9", "user"]),
        ("http://127.0.0.1:1/services/T0/B0/FAKEslackJ10?x=FAKEq", "http://127.0.0.1:1",
         ["FAKEslackJ10", "services", "FAKEq"]),
        ("http://[::1]:1/ping/FAKEuuid-1234", "http://[::1]:1", ["FAKEuuid"]),
    ],
)  # fmt: skip
def test_a_failed_request_names_only_scheme_host_and_port(url, shown, hidden):
    from cfbackup_notify.senders import NotifyError, http_request

    with pytest.raises(NotifyError) as caught:
        http_request(url, body=b"", timeout=2, attempts=1)
    message = str(caught.value)
    assert message.startswith(f"request to {shown} failed: "), message
    assert not any(word in message for word in hidden), message


def test_an_unopenable_url_is_a_notify_error_without_the_url():
    from cfbackup_notify.senders import NotifyError, http_request

    with pytest.raises(NotifyError) as caught:
        http_request("htps://user:FAKEpwI9@example.com/FAKEpath", attempts=1)
    assert "FAKEpwI9" not in str(caught.value) and "FAKEpath" not in str(caught.value)


def _config(tmp_path, notify: str, mode: int = 0o600):
    (tmp_path / "src").mkdir(exist_ok=True)
    path = tmp_path / "config.toml"
    path.write_text(
        f'state_dir = "{tmp_path}/state"\n\n[profiles.main]\nsource = "{tmp_path}/src"\n'
        f'target = "file://{tmp_path}/target"\n\n[profiles.main.encryption]\nmode = "none"\n\n'
        + notify
    )
    path.chmod(mode)
    return path


def _load(path):
    import cfbackup_notify

    from cfbackup.config.load import load_config

    return load_config(path, plugin_sections={"notify": cfbackup_notify.OPTIONS})


def test_an_inline_webhook_url_needs_a_private_config(tmp_path):
    path = _config(tmp_path, f'[profiles.main.notify.webhook]\nurl = "{SLACK}"\n', mode=0o644)
    with pytest.raises(ConfigError, match="holds a secret inline but is readable by others"):
        _load(path)
    path.chmod(0o600)
    _load(path)
    # registered when the config loads: masked wherever it would appear, before any request
    assert "FAKEslackJ10" not in redact.redact("POST /services/T0/B0/FAKEslackJ10 HTTP/1.1")


def test_a_url_without_credentials_or_path_is_not_a_secret(tmp_path):
    path = _config(tmp_path, '[profiles.main.notify.webhook]\nurl = "https://chat.example"\n',
                   mode=0o644)  # fmt: skip
    _load(path)


def test_the_password_in_a_url_is_registered(tmp_path):
    url = "https://ops:FAKEpwZ8k@hc.example/ping"
    path = _config(tmp_path, f'[profiles.main.notify.healthchecks]\nurl = "{url}"\n')
    _load(path)
    assert redact.redact("login ops:FAKEpwZ8k") == "login ops:***"


@pytest.mark.parametrize("source", ["url_env", "url_file", "url_command"])
def test_ping_urls_come_from_the_secret_sources(tmp_path, monkeypatch, source):
    import cfbackup_notify

    secret_file = tmp_path / "hc-url"
    secret_file.write_text("https://hc.example/FAKEcheck-uuid-77\n")
    secret_file.chmod(0o600)
    value = {
        "url_env": "T_HC_URL",
        "url_file": str(secret_file),
        "url_command": f"cat {secret_file}",
    }[source]
    monkeypatch.setenv("T_HC_URL", "https://hc.example/FAKEcheck-uuid-77")
    path = _config(tmp_path, f'[profiles.main.notify.healthchecks]\n{source} = "{value}"\n',
                   mode=0o644)  # fmt: skip
    profile = _load(path).profile("main")
    urls = cfbackup_notify._ping_urls(profile.plugin_config("notify")["healthchecks"], "w")
    assert urls == {
        "start": "https://hc.example/FAKEcheck-uuid-77/start",
        "success": "https://hc.example/FAKEcheck-uuid-77",
        "fail": "https://hc.example/FAKEcheck-uuid-77/fail",
    }
    assert "FAKEcheck" not in redact.redact(urls["fail"])
