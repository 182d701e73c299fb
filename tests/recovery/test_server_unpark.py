"""``cfbackup server unpark`` through real openstacksdk against the Nova/Glance emulator:
booting a parked server again, and every injected failure after the park
(test_server_park.py parks them)."""

from __future__ import annotations

import shlex

import pytest
from recovery_support import (
    SDK_DEPRECATIONS,
    alive,
    config_path,
    ip_fixup_section,
    park_record,
    server_image_section,
)

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.recovery, *SDK_DEPRECATIONS]


def _unparked_record_not_saved(monkeypatch, message: str):
    """The park record's update to "unparked" fails with ``message`` (Swift down after the
    boot); every other save goes through. The genuine save, to put back."""
    from cfbackup_server_image import records

    from cfbackup.errors import BackendError

    real_save = records.save

    def swift_down(config_, profile, record):
        if record.get("state") == "unparked":
            raise BackendError(message)
        real_save(config_, profile, record)

    monkeypatch.setattr(records, "save", swift_down)
    return real_save


def test_unpark_error_state_reports_the_fault_then_retry_works(cli, config, emulator, tmp_path):
    """The fix is to run the same unpark again: the message prints it as the user ran it
    (their -c FILE and --flavor), and it runs as printed."""
    emulator.add_server("web1")
    cfg = config()
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    emulator.boot_fate = "error"
    failed = cli("-c", cfg, "server", "unpark", "web1", "--flavor", "m1.large")
    assert failed.returncode == ExitCode.BACKEND, failed
    assert "went to ERROR" in failed.stderr and "No valid host was found" in failed.stderr
    assert "failed server was deleted" in failed.stderr
    assert park_record(tmp_path)["state"] == "parked"
    rerun = f"cfbackup -c {cfg} server unpark web1 --profile web1 --flavor m1.large"
    assert f"and run {rerun}." in failed.stderr, failed.stderr
    emulator.boot_fate = "active"
    again = cli(*shlex.split(rerun)[1:])  # as printed
    assert again.returncode == 0, again
    assert emulator.server_named("web1")["status"] == "ACTIVE"
    assert emulator.server_named("web1")["flavor_id"] == "3"  # m1.large, as asked


def test_unpark_build_timeout_and_boot_conflict(cli, config, emulator):
    emulator.add_server("web1")
    assert cli("-c", config(), "server", "park", "web1").returncode == 0
    emulator.conflicts.add("boot")
    conflict = cli("-c", config(), "server", "unpark", "web1")
    assert conflict.returncode == ExitCode.BACKEND and "409" in conflict.stderr, conflict
    emulator.conflicts.clear()
    emulator.build_polls = 10_000
    slow = cli("-c", config(server_timeout=1), "server", "unpark", "web1")
    assert slow.returncode == ExitCode.BACKEND, slow
    assert "was still BUILD after" in slow.stderr and "server_timeout" in slow.stderr
    booted = emulator.server_named("web1")["id"]
    assert booted in slow.stderr and f"cfbackup -c {config_path(slow)} server unpark" in (
        slow.stderr
    )
    # a rerun goes on with the server the first run booted: no second boot, no refusal
    emulator.build_polls = 1
    again = cli("-c", config(server_timeout=1), "server", "unpark", "web1")
    assert again.returncode == 0, again
    assert "was booted by an earlier unpark of this record: going on with it" in again.stdout
    assert [s["id"] for s in emulator.servers.values() if s["name"] == "web1"] == [booted]


def test_unpark_refusals_and_flavor_choice(cli, config, emulator):
    emulator.add_server("web1")
    cfg = config()
    missing = cli("-c", cfg, "server", "unpark", "web1")
    assert missing.returncode == ExitCode.REFUSED and "no park record" in missing.stderr
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    again = cli("-c", cfg, "server", "park", "web1")
    assert again.returncode == ExitCode.REFUSED and "already parked" in again.stderr

    emulator.add_server("web1")  # someone re-created it by hand
    taken = cli("-c", cfg, "server", "unpark", "web1")
    assert taken.returncode == ExitCode.REFUSED and "already exists" in taken.stderr
    emulator.servers.pop(emulator.server_named("web1")["id"])

    del emulator.flavors["2"]  # the recorded flavor is gone
    gone = cli("-c", cfg, "server", "unpark", "web1")
    assert gone.returncode == ExitCode.REFUSED and "--flavor" in gone.stderr, gone
    bad = cli("-c", cfg, "server", "unpark", "web1", "--flavor", "m9.huge")
    assert bad.returncode == ExitCode.USAGE and "no flavor named m9.huge" in bad.stderr
    ok = cli("-c", cfg, "server", "unpark", "web1", "--flavor", "m1.large")
    assert ok.returncode == 0, ok
    assert emulator.server_named("web1")["flavor_id"] == "3"
    twice = cli("-c", cfg, "server", "unpark", "web1")
    assert twice.returncode == ExitCode.REFUSED and "--force" in twice.stderr


def test_unpark_reports_a_failed_ip_fixup_with_the_command_to_rerun(
    cli, write_config, clouds, emulator, bind, host_name, tmp_path, monkeypatch
):
    old = emulator.add_server("web1")["addresses"]["private"][0]["addr"]
    bind.set_records(host_name, [old])
    monkeypatch.setenv("T_TSIG_SECRET", "c2VjcmV0LWJ1dC1ub3QtdGhlLXJpZ2h0LW9uZQ==")
    hosts = tmp_path / "hosts"
    hosts.write_text(f"{old} web1\n")
    section = ip_fixup_section(bind, hosts, [bind.fqdn(host_name)])
    cfg = write_config({"web1": {"server_image": server_image_section(), "ip_fixup": section}})
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    result = cli("-c", cfg, "server", "unpark", "web1")
    assert result.returncode == ExitCode.BACKEND, result
    new = emulator.server_named("web1")["addresses"]["private"][0]["addr"]
    assert f"web1 is ACTIVE at {new}, but the IP fix-up failed" in result.stderr
    assert "(BADSIG)" in result.stderr
    rerun = f"cfbackup -c {cfg} ip-fixup --name web1 --old {old} --new {new}"
    assert rerun in result.stderr  # the user's -c FILE kept: it runs as printed
    assert bind.query(host_name) == [old] and hosts.read_text() == f"{old} web1\n"
    assert park_record(tmp_path)["state"] == "unparked"
    monkeypatch.setenv("T_TSIG_SECRET", bind.secret)  # the cause fixed
    fixed = cli(*shlex.split(rerun)[1:])
    assert fixed.returncode == 0, fixed
    assert bind.query(host_name) == [new] and hosts.read_text() == f"{new} web1\n"


def test_unpark_whose_record_cannot_be_updated_names_the_server_and_a_rerun_adopts_it(
    cli, config, emulator, tmp_path, monkeypatch
):
    """The server is ACTIVE but the record cannot be marked unparked (Swift down): the
    message names the new server and its state and gives the commands (with -c FILE); the
    record still says parked, and a rerun goes on with that server instead of refusing
    because "a server named web1 already exists"."""
    from cfbackup_server_image import records

    emulator.add_server("web1", metadata={"role": "web"})
    cfg = config()
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    real_save = _unparked_record_not_saved(
        monkeypatch, "Swift at http://127.0.0.1:1 is unreachable: check the network."
    )
    failed = cli("-c", cfg, "server", "unpark", "web1")
    assert failed.returncode == ExitCode.BACKEND, failed
    assert failed.stderr.count("\n") == 1, failed  # one sentence
    new = emulator.server_named("web1")
    ip = new["addresses"]["private"][0]["addr"]
    assert f"server web1 was booted ({new['id']}, ACTIVE at {ip}), but Swift" in failed.stderr
    assert f"run cfbackup -c {cfg} server unpark web1 --profile web1 again" in failed.stderr
    assert f"cfbackup -c {cfg} ip-fixup --name web1" in failed.stderr
    assert f"openstack server delete {new['id']}" in failed.stderr
    assert park_record(tmp_path)["state"] == "parked"

    monkeypatch.setattr(records, "save", real_save)  # Swift is back
    again = cli("-c", cfg, "server", "unpark", "web1")
    assert again.returncode == 0, again
    assert [s["id"] for s in emulator.servers.values() if s["name"] == "web1"] == [new["id"]]
    after = park_record(tmp_path)
    assert after["state"] == "unparked" and after["new_server"]["id"] == new["id"]
    # parked again: the marker is not taken for the user's metadata
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    assert park_record(tmp_path)["metadata"] == {"role": "web"}


def test_unpark_whose_checks_fail_after_the_boot_names_the_server(
    cli, config, emulator, monkeypatch
):
    """Nova fails every check of the new server for longer than a wait rides out: the
    message names the booted server; a rerun once Nova answers goes on with it."""
    from cfbackup_server_image import cloud as plugin_cloud

    monkeypatch.setattr(plugin_cloud, "ERROR_WINDOW", 1.0)
    emulator.add_server("web1")
    cfg = config(server_timeout=30)
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    emulator.unavailable("GET", r"^/compute/v2\.1/servers/[0-9a-f-]{36}$", 60, status=502)
    failed = cli("-c", cfg, "server", "unpark", "web1")
    assert failed.returncode == ExitCode.BACKEND, failed
    new = emulator.server_named("web1")
    assert f"server web1 was booted ({new['id']}, last seen BUILD), but" in failed.stderr
    assert "answered 502" in failed.stderr and "server unpark web1 --profile web1 again" in (
        failed.stderr
    )
    emulator.clear_faults()
    again = cli("-c", cfg, "server", "unpark", "web1")
    assert again.returncode == 0, again
    assert [s["id"] for s in emulator.servers.values() if s["name"] == "web1"] == [new["id"]]


def test_a_short_nova_outage_does_not_end_the_unpark_wait(cli, config, emulator):
    """openstacksdk does not retry the compute API at all: a 503 for 2 s while unpark waits
    for ACTIVE is ridden out by cfbackup's own wait."""
    emulator.add_server("web1")
    cfg = config()
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    emulator.unavailable("GET", r"^/compute/v2\.1/servers/[0-9a-f-]{36}$", 2)
    result = cli("-c", cfg, "server", "unpark", "web1")
    assert result.returncode == 0, result
    assert emulator.outage_answers() >= 3 and "answered 503" in result.stdout


def test_a_server_booted_by_an_earlier_unpark_but_stopped_is_not_adopted(cli, config, emulator):
    emulator.add_server("web1")
    cfg = config()
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    image_id = next(iter(emulator.images))
    stray = emulator.add_server(
        "web1", status="SHUTOFF", metadata={"cfbackup_unparked_from": image_id}
    )
    result = cli("-c", cfg, "server", "unpark", "web1")
    assert result.returncode == ExitCode.REFUSED, result
    assert f"server web1 ({stray['id']}) was booted by an earlier unpark and is SHUTOFF" in (
        result.stderr
    )
    assert "nothing was booted" in result.stderr
    rerun = f"cfbackup -c {cfg} server unpark web1 --profile web1"
    assert f"(openstack server delete {stray['id']}), then run {rerun};" in result.stderr


def test_an_interrupted_unpark_names_the_booted_server(cli, config, emulator, monkeypatch):
    from cfbackup_server_image import unpark

    emulator.add_server("web1")
    cfg = config()
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(unpark, "_wait_active", interrupted)
    result = cli("-c", cfg, "server", "unpark", "web1")
    assert result.returncode == ExitCode.INTERRUPTED, result
    new = emulator.server_named("web1")
    assert f"server web1 was booted ({new['id']}, not yet ACTIVE), but this run was " in (
        result.stderr
    )
    assert f"run cfbackup -c {cfg} server unpark web1 --profile web1 again" in result.stderr


def _printed_unpark(result) -> list[str]:
    """The unpark command a failure message tells the user to run, as argv for ``cli``: from
    "run cfbackup" to " again", a comma, semicolon or full stop, or an opening parenthesis."""
    import re

    found = re.search(r"run (cfbackup .*?)(?= again\b|[,;.](?:\s|$)| \()", result.stderr)
    assert found, result
    return shlex.split(found.group(1))[1:]


def test_a_forced_unpark_that_fails_after_the_boot_is_finished_by_the_printed_rerun(
    cli, config, emulator, tmp_path
):
    """--force over a record already unparked boots a server, then its wait fails: the record
    still says unparked (with the earlier server), and the printed rerun (with --force) goes on
    with the server that run booted instead of booting a second one."""
    emulator.add_server("web1")
    cfg = config()
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    assert cli("-c", cfg, "server", "unpark", "web1").returncode == 0
    first = emulator.server_named("web1")["id"]
    emulator.servers.pop(first)  # that server is lost: boot it again from the image
    emulator.build_polls = 10_000
    failed = cli("-c", config(server_timeout=1), "server", "unpark", "web1", "--force")
    assert failed.returncode == ExitCode.BACKEND, failed
    booted = emulator.server_named("web1")["id"]
    record = park_record(tmp_path)
    assert record["state"] == "unparked" and record["new_server"]["id"] == first
    rerun = _printed_unpark(failed)
    assert rerun == ["-c", str(cfg), "server", "unpark", "web1", "--profile", "web1", "--force"]

    emulator.build_polls = 1
    again = cli(*rerun)
    assert again.returncode == 0, again
    assert f"server web1 ({booted}, BUILD) was booted by an earlier unpark of this record: " in (
        again.stdout
    )
    assert [s["id"] for s in emulator.servers.values() if s["name"] == "web1"] == [booted]
    after = park_record(tmp_path)
    assert after["state"] == "unparked" and after["new_server"]["id"] == booted


def test_a_forced_rerun_after_a_failed_ip_fixup_goes_on_with_the_booted_server(
    cli, write_config, clouds, emulator, bind, host_name, tmp_path, monkeypatch
):
    """The IP fix-up of an unpark failed (the record says unparked): running unpark again is
    refused with the --force command, and that command, as printed, boots nothing and moves DNS
    and hosts from the parked server's address to the booted one's."""
    old = emulator.add_server("web1")["addresses"]["private"][0]["addr"]
    bind.set_records(host_name, [old])
    monkeypatch.setenv("T_TSIG_SECRET", "c2VjcmV0LWJ1dC1ub3QtdGhlLXJpZ2h0LW9uZQ==")
    hosts = tmp_path / "hosts"
    hosts.write_text(f"{old} web1\n")
    section = ip_fixup_section(bind, hosts, [bind.fqdn(host_name)])
    cfg = write_config({"web1": {"server_image": server_image_section(), "ip_fixup": section}})
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    failed = cli("-c", cfg, "server", "unpark", "web1")
    assert failed.returncode == ExitCode.BACKEND and "IP fix-up failed" in failed.stderr, failed
    booted = emulator.server_named("web1")
    new = booted["addresses"]["private"][0]["addr"]
    monkeypatch.setenv("T_TSIG_SECRET", bind.secret)  # the cause fixed

    refused = cli("-c", cfg, "server", "unpark", "web1")
    assert refused.returncode == ExitCode.REFUSED, refused
    assert refused.stderr.count("\n") == 1, refused  # one sentence
    forced = _printed_unpark(refused)
    assert forced == ["-c", str(cfg), "server", "unpark", "web1", "--profile", "web1", "--force"]
    again = cli(*forced)
    assert again.returncode == 0, again
    assert "was booted by an earlier unpark of this record: going on with it" in again.stdout
    assert [s["id"] for s in emulator.servers.values() if s["name"] == "web1"] == [booted["id"]]
    assert f"web1 is ACTIVE: addresses {old} -> {new}" in again.stdout  # its own are not old
    assert bind.query(host_name) == [new] and hosts.read_text() == f"{new} web1\n"
    assert park_record(tmp_path)["new_server"]["id"] == booted["id"]


def test_several_servers_booted_from_the_park_image_stop_the_unpark(cli, config, emulator):
    emulator.add_server("web1")
    cfg = config()
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    image_id = next(iter(emulator.images))
    marker = {"cfbackup_unparked_from": image_id}
    one = emulator.add_server("web1", metadata=marker)["id"]
    two = emulator.add_server("web1", status="BUILD", metadata=marker)["id"]
    emulator.add_server("web10", metadata=marker)  # another name: not a match
    result = cli("-c", cfg, "server", "unpark", "web1", "--force")
    assert result.returncode == ExitCode.REFUSED, result
    assert result.stderr.count("\n") == 1, result  # one sentence
    assert f"{one} (ACTIVE)" in result.stderr and f"{two} (BUILD)" in result.stderr
    assert "nothing was booted" in result.stderr and "openstack server delete" in result.stderr
    assert f"cfbackup -c {cfg} server unpark web1 --profile web1 --force" in result.stderr
    assert sorted(s["id"] for s in emulator.servers.values() if s["name"] == "web1") == sorted(
        [one, two]
    )


def test_a_forced_unpark_does_not_take_over_the_unparked_server_in_error(
    cli, config, emulator, tmp_path
):
    """The server a completed unpark brought back went to ERROR: --force neither deletes it
    (its disk holds what it wrote since) nor boots a second one beside it."""
    emulator.add_server("web1")
    cfg = config()
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    assert cli("-c", cfg, "server", "unpark", "web1").returncode == 0
    server = emulator.server_named("web1")
    server["status"] = "ERROR"
    result = cli("-c", cfg, "server", "unpark", "web1", "--force")
    assert result.returncode == ExitCode.REFUSED, result
    assert f"server web1 ({server['id']}) was booted by an earlier unpark and is ERROR" in (
        result.stderr
    )
    assert "nothing was booted" in result.stderr
    assert [s["id"] for s in emulator.servers.values() if s["name"] == "web1"] == [server["id"]]


def test_a_rerun_does_not_delete_the_server_an_earlier_unpark_booted_now_in_error(
    cli, config, emulator, tmp_path, monkeypatch
):
    """The record could not be marked unparked, the user followed the message and used the
    server, which later went to ERROR: the rerun that would adopt it refuses it (with -c FILE)
    and leaves it, its disk holding what it wrote since."""
    from cfbackup_server_image import records

    emulator.add_server("web1")
    cfg = config()
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    real_save = _unparked_record_not_saved(monkeypatch, "Swift is unreachable: check the network.")
    assert cli("-c", cfg, "server", "unpark", "web1").returncode == ExitCode.BACKEND
    used = emulator.server_named("web1")
    used["status"] = "ERROR"
    monkeypatch.setattr(records, "save", real_save)
    again = cli("-c", cfg, "server", "unpark", "web1")
    assert again.returncode == ExitCode.REFUSED, again
    assert again.stderr.count("\n") == 1, again  # one sentence
    rerun = f"cfbackup -c {cfg} server unpark web1 --profile web1"
    assert (
        f"server web1 ({used['id']}) was booted by an earlier unpark and is ERROR: look at it "
        f"(openstack server show {used['id']}) and, if it cannot be saved, delete it "
        f"(openstack server delete {used['id']}) and run {rerun}, which boots another"
    ) in again.stderr
    assert alive(emulator, "web1") == [used["id"]] and used["status"] == "ERROR"
    assert park_record(tmp_path)["state"] == "parked"


def test_an_adopted_server_that_goes_to_error_is_left_to_the_user(cli, config, emulator, tmp_path):
    """A rerun goes on waiting for the server an earlier run booted; when it goes to ERROR,
    this run did not boot it and does not delete it: the message says what to do."""
    emulator.add_server("web1")
    cfg = config()
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    emulator.build_polls = 10_000
    slow = cli("-c", config(server_timeout=1), "server", "unpark", "web1")
    assert slow.returncode == ExitCode.BACKEND, slow
    booted = emulator.server_named("web1")["id"]
    emulator.build_polls, emulator.boot_fate = 1, "error"
    again = cli("-c", cfg, "server", "unpark", "web1")
    assert again.returncode == ExitCode.BACKEND, again
    assert again.stderr.count("\n") == 1, again  # one sentence
    assert f"server web1 ({booted}), booted by an earlier unpark, went to ERROR: " in again.stderr
    assert "No valid host was found" in again.stderr and "it was left as it is" in again.stderr
    assert f"run cfbackup -c {cfg} server unpark web1 --profile web1, which boots" in (again.stderr)
    assert alive(emulator, "web1") == [booted]
    assert emulator.servers[booted]["status"] == "ERROR"
    assert park_record(tmp_path)["state"] == "parked"


def test_a_forced_rerun_after_a_failed_ip_fixup_over_a_new_server_keeps_the_pending_old_ips(
    cli, config, emulator, tmp_path, monkeypatch
):
    """park (A), unpark to X (B), X lost, unpark --force boots Y (C) but the fix-up fails: the
    record names Y, yet hosts still says B. The rerun moves hosts from A and B to C (the
    pending old addresses are kept in the record until a fix-up succeeds)."""
    import cfbackup_ip_fixup

    from cfbackup.errors import BackendError

    a = emulator.add_server("web1")["addresses"]["private"][0]["addr"]
    cfg = config()
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{a} web1\n")
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    assert cli("-c", cfg, "server", "unpark", "web1").returncode == 0
    x = emulator.server_named("web1")
    b = x["addresses"]["private"][0]["addr"]
    assert hosts.read_text().endswith(f"\n{b} web1\n"), hosts.read_text()
    assert "fixup_old" not in park_record(tmp_path)  # that fix-up succeeded
    emulator.servers.pop(x["id"])  # lost: boot it again

    real = cfbackup_ip_fixup.fix_all

    def refused(*args, **kwargs):
        raise BackendError("the DNS server refused the update (BADSIG)")

    monkeypatch.setattr(cfbackup_ip_fixup, "fix_all", refused)
    failed = cli("-c", cfg, "server", "unpark", "web1", "--force")
    assert failed.returncode == ExitCode.BACKEND and "IP fix-up failed" in failed.stderr, failed
    y = emulator.server_named("web1")
    c = y["addresses"]["private"][0]["addr"]
    assert f"ip-fixup --name web1 --old {a},{b} --new {c}" in failed.stderr
    assert park_record(tmp_path)["fixup_old"] == [a, b]

    monkeypatch.setattr(cfbackup_ip_fixup, "fix_all", real)
    again = cli("-c", cfg, "server", "unpark", "web1", "--force")
    assert again.returncode == 0, again
    assert f"web1 is ACTIVE: addresses {a}, {b} -> {c}" in again.stdout
    assert hosts.read_text() == f"127.0.0.1 localhost\n{c} web1\n"
    after = park_record(tmp_path)
    assert after["new_server"]["id"] == y["id"] and "fixup_old" not in after
