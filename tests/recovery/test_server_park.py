"""``cfbackup server park|unpark|list-parked`` and ``images prune`` through real openstacksdk
against the Nova/Glance emulator: the happy path and every injected failure."""

from __future__ import annotations

import json
import shlex

import openstack
import pytest
from recovery_support import (
    SDK_DEPRECATIONS,
    park_record,
)

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.recovery, *SDK_DEPRECATIONS]


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
    record = park_record(tmp_path)
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
    after = park_record(tmp_path)
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
    record = park_record(tmp_path)
    assert record["state"] == "parked" and record["server_deleted"] is False
    listed = cli("-c", config(), "server", "list-parked")
    assert "(server not deleted)" in listed.stdout


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
    parked_image = park_record(tmp_path)["image"]["id"]
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
    flavor = park_record(tmp_path)["flavor"]
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
    assert park_record(tmp_path)["server_deleted"] is True


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
    assert park_record(tmp_path)["status_before_park"] == "ACTIVE"
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
    assert park_record(tmp_path)["state"] == "parked" and emulator.server_named("web1") is None
