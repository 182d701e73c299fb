"""The old addresses unpark's IP fix-up is given: never one the new server has, kept in the park
record (``fixup_old``) while a fix-up failed, and dropped from it once one succeeds."""

from __future__ import annotations

import pytest
from recovery_support import (
    SDK_DEPRECATIONS,
    ip_fixup_section,
    park_record,
    server_image_section,
)

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.recovery, *SDK_DEPRECATIONS]


def _refuse_fixups(monkeypatch):
    """Every IP fix-up fails (the DNS server refuses it); returns the genuine one."""
    import cfbackup_ip_fixup

    from cfbackup.errors import BackendError

    real = cfbackup_ip_fixup.fix_all

    def refused(*args, **kwargs):
        raise BackendError("the DNS server refused the update (BADSIG)")

    monkeypatch.setattr(cfbackup_ip_fixup, "fix_all", refused)
    return real


def test_an_address_the_new_server_got_back_is_not_an_old_one(
    cli, write_config, clouds, emulator, bind, host_name, tmp_path, monkeypatch
):
    """The cloud hands the parked server's floating address back to the server unpark went on
    with: it is not among the old addresses the fix-up is given, prints or keeps (fixup_old),
    and DNS (dns_check_old on) moves from the parked addresses to the new ones with it kept."""
    import cfbackup_ip_fixup

    parked = emulator.add_server("web1", floating=True)
    a = parked["addresses"]["private"][0]["addr"]
    floating = parked["addresses"]["public"][0]
    f = floating["addr"]
    bind.set_records(host_name, [a, f])
    monkeypatch.setenv("T_TSIG_SECRET", bind.secret)
    hosts = tmp_path / "hosts"
    hosts.write_text(f"{a} web1\n{f} web1\n")
    section = ip_fixup_section(bind, hosts, [bind.fqdn(host_name)], dns_check_old="true")
    cfg = write_config({"web1": {"server_image": server_image_section(), "ip_fixup": section}})
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0

    real = _refuse_fixups(monkeypatch)
    first = cli("-c", cfg, "server", "unpark", "web1")
    assert first.returncode == ExitCode.BACKEND and "IP fix-up failed" in first.stderr, first
    booted = emulator.server_named("web1")
    x = booted["addresses"]["private"][0]["addr"]
    booted["addresses"]["public"] = [dict(floating)]  # the cloud hands it back
    failed = cli("-c", cfg, "server", "unpark", "web1", "--force")
    assert failed.returncode == ExitCode.BACKEND and "IP fix-up failed" in failed.stderr, failed
    assert failed.stderr.count("\n") == 1, failed  # one sentence
    assert f"run cfbackup -c {cfg} ip-fixup --name web1 --old {a} --new {x},{f}\n" in (
        failed.stderr
    )
    assert park_record(tmp_path)["fixup_old"] == [a]

    monkeypatch.setattr(cfbackup_ip_fixup, "fix_all", real)
    done = cli("-c", cfg, "server", "unpark", "web1", "--force")
    assert done.returncode == 0, done
    assert f"web1 is ACTIVE: addresses {a} -> {x}, {f}\n" in done.stdout
    assert sorted(bind.query(host_name)) == sorted([x, f])
    assert hosts.read_text() == f"{x} web1\n{f} web1\n"
    assert "fixup_old" not in park_record(tmp_path)
