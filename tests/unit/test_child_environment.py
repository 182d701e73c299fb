"""What of cfbackup's environment reaches the programs it starts (cfbackup/execute.py): the
minimal set, and how the host reaches the cloud. A Swift behind a proxy answered cfbackup's
own checks (requests follows https_proxy) while duplicity, without the variable, could not
reach it: the backup failed after the checks passed."""

from __future__ import annotations

import os
import types

import pytest

from cfbackup import execute


def test_the_way_to_the_cloud_reaches_duplicity_and_nothing_else_does(monkeypatch):
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/internal-ca.pem")
    monkeypatch.setenv("OS_PASSWORD", "not-for-children")
    monkeypatch.setenv("MY_DB_PASSWORD", "not-for-children")
    env = execute.child_environment({"PASSPHRASE": "given-explicitly"})
    assert env["https_proxy"] == "http://proxy.example:3128"
    assert env["NO_PROXY"] == "localhost,127.0.0.1"
    assert env["REQUESTS_CA_BUNDLE"] == "/etc/ssl/internal-ca.pem"
    assert env["PASSPHRASE"] == "given-explicitly"
    assert "OS_PASSWORD" not in env and "MY_DB_PASSWORD" not in env


def test_an_unreachable_proxy_is_named_without_its_credentials(monkeypatch):
    """requests and duplicity say "ProxyError ... Unable to connect to proxy": the message
    names the proxy and the variable that chose it, not Swift, and never the proxy's
    user and password."""
    from cfbackup.swift import unreachable

    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://backup:s3cret-proxy-pw@proxy.example:3128")
    text = (
        "HTTPSConnectionPool(host='swift.example', port=443): Max retries exceeded (Caused by "
        "ProxyError('Unable to connect to proxy', NewConnectionError('Connection refused')))"
    )
    message = unreachable("https://swift.example/v1/AUTH_a", text).message
    assert message.startswith(
        "cannot reach the HTTP proxy http://proxy.example:3128 on the way to Swift at "
        "https://swift.example/v1/AUTH_a (connection failed: connection refused): check that "
        "the proxy is up, or HTTPS_PROXY, which names it"
    ), message
    assert "s3cret" not in message and "backup:" not in message
    # the same failure without a proxy in the way is Swift's
    plain = unreachable("https://swift.example/v1/AUTH_a", "Connection refused").message
    assert plain.startswith("cannot reach Swift at https://swift.example/v1/AUTH_a"), plain


def test_a_proxy_password_in_the_config_is_a_secret(tmp_path, monkeypatch):
    """[environment] https_proxy = "http://user:pass@proxy:3128" holds a password: the file
    must be private as for any inline secret, and the password is masked in every output."""
    from cfbackup import redact
    from cfbackup.cli.context import CliContext
    from cfbackup.config.load import load_config
    from cfbackup.errors import ConfigError

    config = tmp_path / "config.toml"
    config.write_text(
        '[environment]\nhttps_proxy = "http://backup:pr0xy-pw-77@proxy.example:3128"\n'
        '[profiles.a]\nsource = "/srv"\ntarget = "file:///t"\n'
    )
    config.chmod(0o644)
    with pytest.raises(ConfigError, match="holds a secret inline but is readable by others"):
        load_config(config)
    config.chmod(0o600)
    monkeypatch.setenv("https_proxy", "")  # monkeypatch restores it: the CLI sets it for the run
    context = CliContext()
    context.args = types.SimpleNamespace(config=str(config))
    assert context.config.environment["https_proxy"].startswith("http://backup:")
    assert os.environ["https_proxy"] == context.config.environment["https_proxy"]
    assert "pr0xy-pw-77" not in redact.redact("proxy said: backup:pr0xy-pw-77@proxy.example")


def test_only_cfbackups_own_variables_and_never_a_named_secret(monkeypatch):
    """``config migrate`` suggests CFBACKUP_ENCRYPTION_PASSPHRASE: a CFBACKUP_* variable
    cfbackup does not define never reaches a child, nor a variable a ``*_env`` setting names
    (whatever its name); what a child is given explicitly still does."""
    from cfbackup import redact
    from cfbackup.config.load import build_config
    from cfbackup.duplicity import launcher
    from cfbackup.duplicity.patches import gpg_environment

    monkeypatch.setattr(redact, "_variables", set())
    monkeypatch.setenv("CFBACKUP_ENCRYPTION_PASSPHRASE", "FAKE-secret-1")
    monkeypatch.setenv("CFBACKUP_NO_SIZED_UPLOADS", "1")
    monkeypatch.setenv("TZ", "FAKE-secret-2")
    build_config(
        {"profiles": {"p": {"source": "/src", "target": "file:///t",
                            "encryption": {"mode": "symmetric", "passphrase_env": "TZ"}}}},
        path=None,
    )  # fmt: skip
    env = execute.child_environment({"PASSPHRASE": "given-explicitly"})
    assert env["CFBACKUP_NO_SIZED_UPLOADS"] == "1"
    assert env["PASSPHRASE"] == "given-explicitly"
    assert "CFBACKUP_ENCRYPTION_PASSPHRASE" not in env and "TZ" not in env
    # duplicity's gpg_environment patch is told the names, and removes them before gpg starts
    dup_env, _ = launcher.environment(env)
    assert "TZ" in gpg_environment.secret_variables(dup_env)
    assert "PASSPHRASE" in gpg_environment.secret_variables(dup_env)
