"""``cfbackup server park|unpark|list-parked`` and ``images prune`` through real openstacksdk
against the Nova/Glance emulator: the happy path and every injected failure."""

from __future__ import annotations

import json
import shlex

import openstack
import pytest
from recovery_support import SDK_DEPRECATIONS, ip_fixup_section, server_image_section

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.recovery, *SDK_DEPRECATIONS]


@pytest.fixture
def config(write_config, clouds, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")

    def make(**overrides):
        return write_config(
            {
                "web1": {
                    "server_image": server_image_section(**overrides),
                    "ip_fixup": f'update_hosts = true\nhosts_file = "{hosts}"\n',
                }
            }
        )

    return make


def config_path(result) -> str:
    """The -c FILE a message must repeat (the fixture writes config.toml)."""
    import re

    found = re.search(r"cfbackup -c (\S+config\.toml)", result.output)
    assert found, result
    return found.group(1)


def _record(tmp_path, name="web1"):
    return json.loads((tmp_path / "state" / "parked" / f"{name}.json").read_text())


def test_emulator_is_driven_by_real_openstacksdk_with_microversions(emulator, clouds):
    emulator.add_server("probe")
    conn = openstack.connect(cloud="emulator")
    server = conn.compute.find_server("probe", ignore_missing=False)
    # microversion negotiated from the compute version document: >= 2.47, flavor by name
    assert ("GET", "/compute/v2.1", "") in emulator.requests
    assert server.flavor.original_name == "m1.medium" and server.flavor.vcpus == 2
    assert all(
        tuple(map(int, mv.split("."))) >= (2, 47) for mv in emulator.microversions("/servers/")
    )
    # as real Nova >= 2.37: the proxy's create_server without networks is a 400 (DESIGN 5)
    with pytest.raises(openstack.exceptions.BadRequestException, match="networks"):
        conn.compute.create_server(name="x", image_id="i", flavor_id="1")


def test_park_then_unpark_happy_path(cli, config, emulator, tmp_path):
    old = emulator.add_server(
        "web1",
        floating=True,
        ipv6=True,
        metadata={"role": "web"},
        security_groups=("default", "web"),
    )
    old_ips = [a["addr"] for entries in old["addresses"].values() for a in entries]
    cfg = config()

    parked = cli("-c", cfg, "server", "park", "web1")
    assert parked.returncode == 0, parked
    out = parked.stdout
    assert "the image of web1 is active after" in out and "server deleted" in out
    # each wait says what it waits for (the server is listed a moment after the delete)
    assert "waiting for server web1 to be deleted: it is DELETED (0 s of at most 5 s)" in out
    assert "server web1 is deleted after" in out
    assert emulator.server_named("web1") is None
    record = _record(tmp_path)
    image = emulator.images[record["image"]["id"]]
    assert image["status"] == "active" and image["cfbackup_parked_server"] == "web1"
    assert record["state"] == "parked" and record["server_deleted"] is True
    assert record["flavor"]["name"] == "m1.medium" and record["flavor"]["ram"] == 4096
    assert record["networks"][0]["id"] == emulator.networks["private"]
    assert record["security_groups"] == ["default", "web"]
    assert record["key_name"] == "ops" and record["metadata"] == {"role": "web"}
    assert record["availability_zone"] == "nova" and sorted(record["ips"]) == sorted(old_ips)
    assert any(p.endswith("/action") and mv == "2.45" for _m, p, mv in emulator.requests)

    listed = cli("-c", cfg, "server", "list-parked", "--json")
    assert listed.returncode == 0, listed
    assert [r["server"]["name"] for r in json.loads(listed.stdout)] == ["web1"]

    unparked = cli("-c", cfg, "server", "unpark", "web1")
    assert unparked.returncode == 0, unparked
    new = emulator.server_named("web1")
    assert new["status"] == "ACTIVE" and new["id"] != old["id"]
    assert new["image"]["id"] == record["image"]["id"] and new["flavor_id"] == "2"
    assert new["net_ids"] == [emulator.networks["private"]] and new["key_name"] == "ops"
    # the recorded metadata, and the marker that lets a rerun go on with this server
    assert new["metadata"] == {"role": "web", "cfbackup_unparked_from": record["image"]["id"]}
    assert [g["name"] for g in new["security_groups"]] == ["default", "web"]
    after = _record(tmp_path)
    assert after["state"] == "unparked" and after["new_server"]["id"] == new["id"]
    assert "is ACTIVE: addresses" in unparked.stdout
    assert cli("-c", cfg, "server", "list-parked").stdout.strip() == "no parked servers"


def test_killed_image_refuses_to_delete_the_server(cli, config, emulator, tmp_path):
    emulator.add_server("web1")
    emulator.image_fate = "killed"
    result = cli("-c", config(), "server", "park", "web1")
    assert result.returncode == ExitCode.BACKEND, result
    assert result.stderr.count("\n") == 1, result  # one sentence
    assert "ended killed" in result.stderr and "was NOT deleted" in result.stderr
    # stopped for the snapshot: the message says so and how to get it back
    assert "is stopped (SHUTOFF): start it again with openstack server start web1" in (
        result.stderr
    )
    assert emulator.server_named("web1")["status"] == "SHUTOFF"
    assert not (tmp_path / "state" / "parked" / "web1.json").exists()
    assert not any(m == "DELETE" for m, _p, _v in emulator.requests)


def test_image_never_active_times_out_and_keeps_the_server(cli, config, emulator, tmp_path):
    emulator.add_server("web1")
    emulator.image_fate = "stuck"
    result = cli("-c", config(image_timeout=1), "server", "park", "web1")
    assert result.returncode == ExitCode.BACKEND, result
    assert "still saving after" in result.stderr and "image_timeout" in result.stderr
    assert emulator.server_named("web1") is not None
    assert not (tmp_path / "state" / "parked" / "web1.json").exists()


def test_snapshot_conflict_409_is_one_sentence(cli, config, emulator):
    emulator.add_server("web1")
    emulator.conflicts.add("createImage")
    result = cli("-c", config(), "server", "park", "web1")
    assert result.returncode == ExitCode.BACKEND, result
    assert "409 Conflict" in result.stderr and "task_state" in result.stderr
    assert "was NOT deleted" in result.stderr and emulator.server_named("web1")


def test_api_that_hangs_is_a_timeout_not_a_hang(cli, config, emulator):
    emulator.add_server("web1")
    emulator.hang("POST", r"/action$", 4)
    result = cli("-c", config(api_timeout=1), "server", "park", "web1")
    assert result.returncode == ExitCode.BACKEND, result
    assert "did not answer in time" in result.stderr and "api_timeout" in result.stderr
    assert emulator.server_named("web1") is not None


def test_delete_conflict_keeps_image_and_record(cli, config, emulator, tmp_path):
    emulator.add_server("web1")
    emulator.conflicts.add("delete")
    result = cli("-c", config(), "server", "park", "web1")
    assert result.returncode == ExitCode.BACKEND, result
    assert (
        "409" in result.stderr and "image" in result.stderr and "record is stored" in result.stderr
    )
    record = _record(tmp_path)
    assert record["state"] == "parked" and record["server_deleted"] is False
    listed = cli("-c", config(), "server", "list-parked")
    assert "(server not deleted)" in listed.stdout


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
    assert _record(tmp_path)["state"] == "parked"
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


def test_images_prune_keeps_newest_and_the_parked_image(cli, config, emulator, tmp_path):
    emulator.add_server("web1")
    cfg = config()
    for _ in range(3):
        assert cli("-c", cfg, "server", "park", "web1").returncode == 0
        assert cli("-c", cfg, "server", "unpark", "web1").returncode == 0
    emulator.image_fate = "killed"
    assert cli("-c", cfg, "server", "park", "web1").returncode == ExitCode.BACKEND
    emulator.image_fate = "active"
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    parked_image = _record(tmp_path)["image"]["id"]
    ordered = sorted(emulator.images.values(), key=lambda i: i["created_at"])
    for index, image in enumerate(ordered):  # distinct times: creation within one second
        image["created_at"] = f"2026-01-0{index + 1}T00:00:00Z"
    oldest_first = [i["id"] for i in ordered]
    killed = [i["id"] for i in ordered if i["status"] == "killed"]
    assert len(oldest_first) == 5 and len(killed) == 1

    dry = cli("-c", cfg, "images", "prune", "--keep", "1", "--dry-run")
    assert dry.returncode == 0 and "would delete 4 image(s)" in dry.stdout, dry
    assert len(emulator.images) == 5
    # make the parked image look old: prune must keep it anyway
    emulator.images[parked_image]["created_at"] = "2025-01-01T00:00:00Z"
    pruned = cli("-c", cfg, "images", "prune", "--keep", "1")
    assert pruned.returncode == 0, pruned
    newest_other = [i for i in oldest_first if i not in killed and i != parked_image][-1]
    assert set(emulator.images) == {parked_image, newest_other}


def test_credentials_missing_or_rejected(cli, write_config, emulator, clouds, monkeypatch):
    emulator.add_server("web1")
    none = write_config({"web1": {"server_image": "image_timeout = 5\n"}})
    result = cli("-c", none, "server", "park", "web1")
    assert result.returncode == ExitCode.CONFIG and "Keystone v3" in result.stderr, result
    unknown = write_config({"web1": {"server_image": 'cloud = "no-such-cloud"\n'}}, "u.toml")
    result = cli("-c", unknown, "server", "park", "web1")
    assert result.returncode == ExitCode.CONFIG and "no-such-cloud" in result.stderr, result
    assert ".:" not in result.stderr and ".." not in result.stderr  # a sentence, not "found.:"

    v3 = write_config(
        {
            "web1": {
                "swift": f"""
        auth_version = "3"
        auth_url = "{emulator.auth_url}"
        username = "admin"
        password_env = "T_OS_PASSWORD"
        project_name = "demo"
        user_domain_name = "Default"
        project_domain_name = "Default"
        """,
                "server_image": "poll_interval = 1\n",
            }
        },
        name="v3.toml",
    )
    monkeypatch.setenv("T_OS_PASSWORD", "wrong-password")
    rejected = cli("-c", v3, "server", "park", "web1")
    assert rejected.returncode == ExitCode.BACKEND, rejected
    assert "rejected the credentials" in rejected.stderr
    assert "wrong-password" not in rejected.output
    monkeypatch.setenv("T_OS_PASSWORD", emulator.password)
    parked = cli("-c", v3, "server", "park", "web1")  # the [swift] v3 keys work too
    assert parked.returncode == 0, parked


def test_check_row_for_the_cloud(cli, config, emulator):
    result = cli("-c", config(), "check", "web1")
    assert "[ok] compute and image API: credentials accepted, 3 flavors visible" in result.stdout, (
        result
    )


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
    assert _record(tmp_path)["state"] == "unparked"
    monkeypatch.setenv("T_TSIG_SECRET", bind.secret)  # the cause fixed
    fixed = cli(*shlex.split(rerun)[1:])
    assert fixed.returncode == 0, fixed
    assert bind.query(host_name) == [new] and hosts.read_text() == f"{new} web1\n"


def test_server_with_volumes_is_refused(cli, config, emulator):
    emulator.add_server("web1", volumes=("vol-1",))
    result = cli("-c", config(), "server", "park", "web1")
    assert result.returncode == ExitCode.REFUSED, result
    assert "volumes attached (vol-1)" in result.stderr and "nothing was done" in result.stderr
    assert not emulator.images and emulator.server_named("web1")["status"] == "ACTIVE"


def test_older_compute_microversion_flavor_by_id_and_image_id_from_location(
    cli, config, emulator, clouds, tmp_path
):
    """Before 2.45 the image id comes in a Location header, before 2.47 the flavor by id."""
    clouds.write_text(emulator.clouds_yaml("emulator") + "    compute_api_version: '2.44'\n")
    emulator.add_server("web1")
    cfg = config()
    parked = cli("-c", cfg, "server", "park", "web1")
    assert parked.returncode == 0, parked
    assert set(emulator.microversions("/action")) == {"2.44"}  # os-stop, createImage
    flavor = _record(tmp_path)["flavor"]
    assert (flavor["id"], flavor["name"], flavor["vcpus"]) == ("2", "m1.medium", 2)
    assert cli("-c", cfg, "server", "unpark", "web1").returncode == 0
    assert emulator.server_named("web1")["flavor_id"] == "2"


def test_a_failing_final_backup_parks_nothing(cli, config, emulator, tmp_path):
    """--final-backup: the backup fails (its source is gone): park exits with that backup's
    code, no snapshot is taken and the server keeps running."""
    emulator.add_server("web1")
    cfg = config()
    (tmp_path / "src-web1").rmdir()
    result = cli("-c", cfg, "server", "park", "web1", "--final-backup", "web1")
    assert result.returncode == ExitCode.CONFIG, result  # the backup's own code
    assert "the final backup of profile web1 failed" in result.stderr
    assert "nothing was parked" in result.stderr and "Traceback" not in result.output
    assert emulator.server_named("web1")["status"] == "ACTIVE"
    assert not emulator.images
    assert not (tmp_path / "state" / "parked" / "web1.json").exists()


def test_a_record_that_cannot_be_stored_stops_the_park_before_the_delete(
    cli, config, emulator, tmp_path
):
    """The local record's folder cannot be created (a file is in its way): the park stops
    with the image taken and the server still there, and says so."""
    emulator.add_server("web1")
    cfg = config()
    (tmp_path / "state").mkdir(exist_ok=True)
    (tmp_path / "state" / "parked").write_text("not a folder\n")
    result = cli("-c", cfg, "server", "park", "web1")
    assert result.returncode == ExitCode.BACKEND, result
    assert result.stderr.count("\n") == 1, result  # one sentence
    assert "cannot write the park record" in result.stderr
    assert "check state_dir and its permissions; server web1 was NOT deleted but is stopped" in (
        result.stderr
    )
    # the rerun it suggests is the command as it was run, -c FILE included
    assert f"or run park again (cfbackup -c {cfg} server park web1 --profile " in result.stderr
    assert emulator.server_named("web1")["status"] == "SHUTOFF"


@pytest.mark.parametrize("case", ["killed", "stuck stop", "busy", "final backup"])
def test_every_run_park_again_names_the_command_as_it_was_run(
    cli, config, emulator, tmp_path, case
):
    """Each message whose fix is to run park again gives the command with the user's -c FILE,
    --profile and the options of the failed run (--live, --final-backup), in every place it
    says so: the image's fix and the stopped server's."""
    emulator.add_server("web1")
    cfg = config(server_timeout=1)
    options = {"busy": ["--live"], "final backup": ["--final-backup", "web1"]}.get(case, [])
    words = ["cfbackup", "-c", str(cfg), "server", "park", "web1", "--profile", "web1", *options]
    again = f"run park again ({shlex.join(words)})"
    if case == "killed":
        emulator.image_fate = "killed"
    elif case == "stuck stop":
        emulator.stop_fate = "stuck"
    elif case == "busy":
        emulator.conflicts.add("createImage")
    else:
        (tmp_path / "src-web1").rmdir()
    result = cli("-c", cfg, "server", "park", "web1", *options)
    assert result.returncode != 0, result
    assert result.stderr.count("\n") == 1, result
    expected = {
        "killed": f"(openstack image delete {{}}) and {again}; server web1 was NOT deleted but "
        f"is stopped (SHUTOFF): start it again with openstack server start web1, or {again}.",
        "stuck stop": f") and {again}, or raise server_image.server_timeout.",
        "busy": f"wait until it is idle and {again}; server web1 was NOT deleted.",
        "final backup": f"nothing was parked; fix the backup and {again}.",
    }[case]
    if case == "killed":
        expected = expected.format(next(iter(emulator.images)))
    assert result.stderr.rstrip().endswith(expected), result


def test_park_message_builders_take_the_rerun_command():
    """The command is part of each message as it is built, not patched into its text later
    (a message built outside park's own call, or in new code, had no command)."""
    from types import SimpleNamespace

    from cfbackup_server_image import park

    again = "run park again (cfbackup -c /etc/cfbackup/a.toml server park web1 --profile web1)"
    kept = park._kept(SimpleNamespace(name="web1"), True, again)
    assert kept.endswith(f"start it again with openstack server start web1, or {again}")
    assert park._kept(SimpleNamespace(name="web1"), False, again) == ("server web1 was NOT deleted")


def test_a_short_api_outage_does_not_end_the_image_wait(cli, config, emulator, tmp_path):
    """Glance answers 502 for 2 s (a load balancer restarting; openstacksdk retries only a
    503 of the image API itself) while park waits for the image: the wait backs off and goes
    on; three quick failures must not end an hour's wait."""
    emulator.add_server("web1")
    emulator.unavailable("GET", r"^/image/v2/images/[^/]+$", 2, status=502)
    result = cli("-c", config(), "server", "park", "web1")
    assert result.returncode == 0, result
    assert emulator.outage_answers() >= 3
    assert "answered 502" in result.stdout and "(retrying for up to" in result.stdout
    assert _record(tmp_path)["server_deleted"] is True


def test_an_api_outage_longer_than_the_error_window_keeps_the_server(
    cli, config, emulator, tmp_path, monkeypatch
):
    from cfbackup_server_image import cloud as plugin_cloud

    monkeypatch.setattr(plugin_cloud, "ERROR_WINDOW", 1.5)
    emulator.add_server("web1")
    emulator.unavailable("GET", r"^/image/v2/images/[^/]+$", 60, status=504)
    result = cli("-c", config(image_timeout=30), "server", "park", "web1")
    assert result.returncode == ExitCode.BACKEND, result
    assert result.stderr.count("\n") == 1, result
    assert "every check of the last 2 s failed" in result.stderr
    assert "answered 504" in result.stderr and "was NOT deleted" in result.stderr
    assert emulator.server_named("web1") is not None
    assert not (tmp_path / "state" / "parked" / "web1.json").exists()


def test_an_error_asking_again_will_not_cure_ends_the_wait_at_once(cli, config, emulator):
    """The image is deleted by someone while park waits (404): no point in polling on for
    the error window; the server stays."""
    import threading
    import time

    emulator.add_server("web1")
    emulator.image_fate = "stuck"

    def delete_the_image_once_made():  # park stops the server first: that takes its time
        deadline = time.monotonic() + 60
        while not emulator.images and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # park is polling it by now
        made_at.append(time.monotonic())
        emulator.images.clear()

    made_at: list[float] = []
    deleter = threading.Thread(target=delete_the_image_once_made)
    deleter.start()
    result = cli("-c", config(image_timeout=30), "server", "park", "web1")
    ended = time.monotonic()
    deleter.join()
    assert result.returncode == ExitCode.BACKEND, result
    assert made_at and ended - made_at[0] < 10  # not the 30 s image timeout
    assert "answered 404" in result.stderr and "was NOT deleted" in result.stderr, result
    assert emulator.server_named("web1") is not None


def test_park_stops_an_active_server_before_the_snapshot(cli, config, emulator, tmp_path):
    """What a running server writes while it is imaged is not in the image and is lost with
    the server: park stops it first (SHUTOFF), as Nova's own shelve does."""
    emulator.add_server("web1")
    emulator.stop_polls = 2
    result = cli("-c", config(), "server", "park", "web1")
    assert result.returncode == 0, result
    assert "stopping web1" in result.stdout and "server web1 is SHUTOFF after" in result.stdout
    (image,) = emulator.images.values()
    assert image["_server_status"] == "SHUTOFF"  # imaged stopped, not running
    assert _record(tmp_path)["status_before_park"] == "ACTIVE"
    assert emulator.server_named("web1") is None


def test_park_live_images_a_running_server_with_a_warning(cli, config, emulator):
    emulator.add_server("web1")
    result = cli("-c", config(), "server", "park", "web1", "--live")
    assert result.returncode == 0, result
    assert "warning: --live: web1 keeps running while it is imaged" in result.stdout
    (image,) = emulator.images.values()
    assert image["_server_status"] == "ACTIVE"


def test_a_shutoff_server_is_imaged_as_is(cli, config, emulator):
    emulator.add_server("web1", status="SHUTOFF")  # Nova refuses to stop it again (409)
    result = cli("-c", config(), "server", "park", "web1")
    assert result.returncode == 0, result
    assert "stopping" not in result.stdout
    (image,) = emulator.images.values()
    assert image["_server_status"] == "SHUTOFF"


def test_a_server_that_does_not_stop_is_neither_imaged_nor_deleted(cli, config, emulator):
    emulator.add_server("web1")
    emulator.stop_fate = "stuck"
    result = cli("-c", config(server_timeout=1), "server", "park", "web1")
    assert result.returncode == ExitCode.BACKEND, result
    assert result.stderr.count("\n") == 1, result
    assert "server web1 did not stop within" in result.stderr
    assert "it was NOT deleted and nothing was imaged" in result.stderr
    assert "server_image.server_timeout" in result.stderr
    assert not emulator.images and emulator.server_named("web1") is not None


def test_a_refused_stop_is_one_sentence(cli, config, emulator):
    emulator.add_server("web1")
    emulator.conflicts.add("stop")
    result = cli("-c", config(), "server", "park", "web1")
    assert result.returncode == ExitCode.BACKEND, result
    assert "stopping server web1: the cloud refused with 409 Conflict" in result.stderr
    assert "server web1 was NOT deleted" in result.stderr and not emulator.images


def test_park_refuses_to_stop_the_machine_it_runs_on(cli, config, emulator, monkeypatch):
    """Stopping the server cfbackup runs on would end the park before its snapshot."""
    import socket

    emulator.add_server("web1")
    monkeypatch.setattr(socket, "gethostname", lambda: "web1.example.org")
    result = cli("-c", config(), "server", "park", "web1")
    assert result.returncode == ExitCode.REFUSED, result
    assert "looks like the machine this cfbackup runs on" in result.stderr
    assert "nothing was done" in result.stderr
    assert emulator.server_named("web1")["status"] == "ACTIVE" and not emulator.images


def test_unpark_whose_record_cannot_be_updated_names_the_server_and_a_rerun_adopts_it(
    cli, config, emulator, tmp_path, monkeypatch
):
    """The server is ACTIVE but the record cannot be marked unparked (Swift down): the
    message names the new server and its state and gives the commands (with -c FILE); the
    record still says parked, and a rerun goes on with that server instead of refusing
    because "a server named web1 already exists"."""
    from cfbackup_server_image import records

    from cfbackup.errors import BackendError

    emulator.add_server("web1", metadata={"role": "web"})
    cfg = config()
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    real_save = records.save

    def swift_down(config_, profile, record):
        if record.get("state") == "unparked":
            raise BackendError("Swift at http://127.0.0.1:1 is unreachable: check the network.")
        real_save(config_, profile, record)

    monkeypatch.setattr(records, "save", swift_down)
    failed = cli("-c", cfg, "server", "unpark", "web1")
    assert failed.returncode == ExitCode.BACKEND, failed
    assert failed.stderr.count("\n") == 1, failed  # one sentence
    new = emulator.server_named("web1")
    ip = new["addresses"]["private"][0]["addr"]
    assert f"server web1 was booted ({new['id']}, ACTIVE at {ip}), but Swift" in failed.stderr
    assert f"run cfbackup -c {cfg} server unpark web1 --profile web1 again" in failed.stderr
    assert f"cfbackup -c {cfg} ip-fixup --name web1" in failed.stderr
    assert f"openstack server delete {new['id']}" in failed.stderr
    assert _record(tmp_path)["state"] == "parked"

    monkeypatch.setattr(records, "save", real_save)  # Swift is back
    again = cli("-c", cfg, "server", "unpark", "web1")
    assert again.returncode == 0, again
    assert [s["id"] for s in emulator.servers.values() if s["name"] == "web1"] == [new["id"]]
    after = _record(tmp_path)
    assert after["state"] == "unparked" and after["new_server"]["id"] == new["id"]
    # parked again: the marker is not taken for the user's metadata
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    assert _record(tmp_path)["metadata"] == {"role": "web"}


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


def test_an_interrupted_park_says_the_server_is_stopped_not_deleted(
    cli, config, emulator, monkeypatch
):
    """Ctrl-C (or SIGTERM) in the image wait, after park stopped the server."""
    from cfbackup_server_image import park

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(park, "_wait_image", interrupted)
    emulator.add_server("web1")
    result = cli("-c", config(), "server", "park", "web1")
    assert result.returncode == ExitCode.INTERRUPTED, result
    assert "interrupted; server web1 was NOT deleted but is stopped (SHUTOFF)" in result.stderr
    assert "openstack server start web1" in result.stderr
    assert emulator.server_named("web1")["status"] == "SHUTOFF"


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


def test_a_record_update_failing_after_the_delete_is_a_warning(
    cli, config, emulator, tmp_path, monkeypatch
):
    """The park is done (image active, record stored, server deleted); only marking the
    record server_deleted failed: a warning, not a failed park."""
    from cfbackup_server_image import records

    from cfbackup.errors import BackendError

    real_save = records.save

    def flaky(config_, profile, record):
        if record.get("server_deleted"):
            raise BackendError("Swift is unreachable.")
        real_save(config_, profile, record)

    monkeypatch.setattr(records, "save", flaky)
    emulator.add_server("web1")
    result = cli("-c", config(), "server", "park", "web1")
    assert result.returncode == 0, result
    assert "warning: the record could not be marked server_deleted" in result.stdout
    assert _record(tmp_path)["state"] == "parked" and emulator.server_named("web1") is None
