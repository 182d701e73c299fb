"""What of cfbackup's environment reaches the programs it starts (cfbackup/execute.py): the
minimal set, and how the host reaches the cloud. A Swift behind a proxy answered cfbackup's
own checks (requests follows https_proxy) while duplicity, without the variable, could not
reach it: the backup failed after the checks passed."""

from __future__ import annotations

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
