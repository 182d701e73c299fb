"""The old addresses unpark's IP fix-up is given: never one the new server has, kept in the park
record (``fixup_old``) while a fix-up failed, and dropped from it once one succeeds, whether
unpark ran it or the user ran the printed ``cfbackup ip-fixup`` command by hand."""

from __future__ import annotations

import shlex

import pytest
from recovery_support import (
    SDK_DEPRECATIONS,
    ip_fixup_section,
    park_record,
    server_image_section,
)

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.recovery, *SDK_DEPRECATIONS]
WRONG_SECRET = "c2VjcmV0LWJ1dC1ub3QtdGhlLXJpZ2h0LW9uZQ=="


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


def test_the_printed_ip_fixup_run_by_hand_clears_the_pending_old_addresses_once_it_succeeds(
    cli, write_config, clouds, emulator, bind, host_name, tmp_path, monkeypatch
):
    """unpark's fix-up fails (wrong TSIG key): the record keeps its old addresses. The printed
    ip-fixup command, run as printed, keeps them while it fails too, and drops them from the
    record once it succeeds, so a later unpark --force or fix-up does not act on them."""
    old = emulator.add_server("web1")["addresses"]["private"][0]["addr"]
    bind.set_records(host_name, [old])
    monkeypatch.setenv("T_TSIG_SECRET", WRONG_SECRET)
    hosts = tmp_path / "hosts"
    hosts.write_text(f"{old} web1\n")
    section = ip_fixup_section(bind, hosts, [bind.fqdn(host_name)])
    cfg = write_config({"web1": {"server_image": server_image_section(), "ip_fixup": section}})
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    failed = cli("-c", cfg, "server", "unpark", "web1")
    assert failed.returncode == ExitCode.BACKEND and "(BADSIG)" in failed.stderr, failed
    new = emulator.server_named("web1")["addresses"]["private"][0]["addr"]
    rerun = f"cfbackup -c {cfg} ip-fixup --name web1 --old {old} --new {new}"
    assert f"run {rerun}" in failed.stderr, failed
    assert park_record(tmp_path)["fixup_old"] == [old]

    still = cli(*shlex.split(rerun)[1:])  # the cause not fixed yet
    assert still.returncode == ExitCode.BACKEND and "(BADSIG)" in still.stderr, still
    assert park_record(tmp_path)["fixup_old"] == [old]

    monkeypatch.setenv("T_TSIG_SECRET", bind.secret)  # the cause fixed
    from cfbackup_server_image import records

    from cfbackup.errors import BackendError

    real_save = records.save

    def swift_down(*args, **kwargs):
        raise BackendError("Swift is unreachable: check the network.")

    monkeypatch.setattr(records, "save", swift_down)
    unsaved = cli(*shlex.split(rerun)[1:])
    assert unsaved.returncode == 0, unsaved  # the fix-up itself is done
    assert unsaved.stderr.count("\n") == 1, unsaved  # one sentence
    assert (
        "the park record of web1 could not be updated after the IP fix-up (Swift is "
        f"unreachable: check the network); it still lists {old} as pending, which is harmless: "
        "a later unpark --force moves DNS and hosts away from them again, and finds nothing to "
        "change"
    ) in unsaved.stderr
    assert park_record(tmp_path)["fixup_old"] == [old]

    monkeypatch.setattr(records, "save", real_save)
    fixed = cli(*shlex.split(rerun)[1:])
    assert fixed.returncode == 0, fixed
    assert fixed.stderr == "", fixed
    assert bind.query(host_name) == [new] and hosts.read_text() == f"{new} web1\n"
    record = park_record(tmp_path)
    assert "fixup_old" not in record and record["state"] == "unparked"


def test_an_ip_fixup_that_leaves_out_an_old_address_or_a_profile_keeps_it_pending(
    cli, write_config, clouds, emulator, tmp_path, monkeypatch
):
    """Only the addresses a successful fix-up moved every following profile away from stop
    being pending: one it was not given, or a run --profile limited to one of two profiles
    following the server, leaves them in the record."""
    parked = emulator.add_server("web1", floating=True)
    a = parked["addresses"]["private"][0]["addr"]
    f = parked["addresses"]["public"][0]["addr"]
    hosts, other = tmp_path / "hosts", tmp_path / "hosts-other"
    hosts.write_text(f"{a} web1\n{f} web1\n")
    other.write_text(f"{a} web1\n")
    cfg = write_config(
        {
            "web1": {
                "server_image": server_image_section(),
                "ip_fixup": f'hosts_file = "{hosts}"\n',
            },
            "mirror": {"ip_fixup": f'servers = ["web1"]\nhosts_file = "{other}"\n'},
        }
    )
    assert cli("-c", cfg, "server", "park", "web1", "--profile", "web1").returncode == 0
    import cfbackup_ip_fixup

    real = _refuse_fixups(monkeypatch)
    failed = cli("-c", cfg, "server", "unpark", "web1", "--profile", "web1")
    assert failed.returncode == ExitCode.BACKEND, failed
    new = emulator.server_named("web1")["addresses"]["private"][0]["addr"]
    assert park_record(tmp_path)["fixup_old"] == [a, f]
    monkeypatch.setattr(cfbackup_ip_fixup, "fix_all", real)

    one = cli("-c", cfg, "ip-fixup", "--name", "web1", "--old", a, "--new", new)
    assert one.returncode == 0, one
    assert park_record(tmp_path)["fixup_old"] == [f]  # not given: still pending
    limited = cli(
        "-c", cfg, "ip-fixup", "--name", "web1", "--old", f, "--new", new, "--profile", "web1"
    )
    assert limited.returncode == 0, limited
    assert park_record(tmp_path)["fixup_old"] == [f]  # profile mirror was left out
    every = cli("-c", cfg, "ip-fixup", "--name", "web1", "--old", f, "--new", new)
    assert every.returncode == 0, every
    assert "fixup_old" not in park_record(tmp_path)
    assert hosts.read_text() == f"{new} web1\n{new} web1\n" and other.read_text() == f"{new} web1\n"


def test_a_hand_made_record_stays_when_the_server_kept_every_address_of_its_type(
    cli, write_config, clouds, emulator, bind, host_name, tmp_path, monkeypatch
):
    """DNS follows only the floating address, which the cloud hands back to the server a
    failed unpark booted; meanwhile the user pointed the name elsewhere by hand. No A address
    is old any more (the new server has it), and dns_check_old still refuses the record: it
    holds none of the server's addresses."""
    import cfbackup_ip_fixup

    floating = emulator.add_server("web1", floating=True)["addresses"]["public"][0]
    bind.set_records(host_name, [floating["addr"]])
    monkeypatch.setenv("T_TSIG_SECRET", bind.secret)
    section = ip_fixup_section(
        bind,
        tmp_path / "hosts",
        [bind.fqdn(host_name)],
        dns_check_old="true",
        dns_networks='["203.0.113.0/24"]',
        update_hosts="false",
    )
    cfg = write_config({"web1": {"server_image": server_image_section(), "ip_fixup": section}})
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    real = _refuse_fixups(monkeypatch)
    assert cli("-c", cfg, "server", "unpark", "web1").returncode == ExitCode.BACKEND
    emulator.server_named("web1")["addresses"]["public"] = [dict(floating)]
    monkeypatch.setattr(cfbackup_ip_fixup, "fix_all", real)
    bind.set_records(host_name, ["198.51.100.77"])  # by hand

    refused = cli("-c", cfg, "server", "unpark", "web1", "--force")
    assert refused.returncode == ExitCode.BACKEND, refused
    assert "holds 198.51.100.77, not the new " + floating["addr"] in refused.stderr, refused
    assert bind.query(host_name) == ["198.51.100.77"]


def test_unpark_force_over_a_lost_server_moves_dns_from_the_one_it_replaces(
    cli, write_config, clouds, emulator, bind, host_name, tmp_path, monkeypatch
):
    """With dns_check_old, DNS holds the unparked server's address (unpark wrote it) when that
    server is lost and unpark --force boots another: the record holds one of the old
    generations (not the parked server's and that one's at once) and is moved."""
    parked = emulator.add_server("web1")["addresses"]["private"][0]["addr"]
    bind.set_records(host_name, [parked])
    monkeypatch.setenv("T_TSIG_SECRET", bind.secret)
    hosts = tmp_path / "hosts"
    hosts.write_text(f"{parked} web1\n")
    section = ip_fixup_section(bind, hosts, [bind.fqdn(host_name)], dns_check_old="true")
    cfg = write_config({"web1": {"server_image": server_image_section(), "ip_fixup": section}})
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    assert cli("-c", cfg, "server", "unpark", "web1").returncode == 0
    lost = emulator.server_named("web1")
    assert bind.query(host_name) == [lost["addresses"]["private"][0]["addr"]]
    lost["status"] = "DELETED"

    again = cli("-c", cfg, "server", "unpark", "web1", "--force")
    assert again.returncode == 0, again
    (booted,) = [s for s in emulator.servers.values() if s["name"] == "web1" and s is not lost]
    now = booted["addresses"]["private"][0]["addr"]
    assert bind.query(host_name) == [now]
    assert hosts.read_text() == f"{now} web1\n"
