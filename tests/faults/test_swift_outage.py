"""Swift failing under a running backup, on the fault suite's 3-replica ring with 3 object
servers (conftest.local_swift): a storage server lost, the proxy stopped, then back."""

from __future__ import annotations

import time

import pytest
from faultkit import write_tree
from support.resume import assert_resumed, volume_stamps
from support.trees import assert_same_tree

from cfbackup.duplicity.commands import RETRY_FLAGS
from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.faults, pytest.mark.swift]


def test_storage_server_lost_mid_backup(local_swift, make_setup, tmp_path):
    setup = make_setup()
    write_tree(setup.source, mb=3)
    run = setup.spawn_until_uploading()
    local_swift.kill_object_server(1)
    try:
        assert run.wait() == 0, run.output()
        out = tmp_path / "restored"
        result = setup.run("restore", out)  # with the server still down
        assert result.returncode == 0, result
        assert_same_tree(setup.source, out)
    finally:
        local_swift.start_object_server(1)


def test_proxy_down_for_seconds_mid_upload(local_swift, make_setup, tmp_path):
    """A short outage is ridden out (swiftclient retries each request for about 30 s, then
    duplicity retries it: RETRY_FLAGS)."""
    setup = make_setup()
    write_tree(setup.source, mb=3)
    run = setup.spawn_until_uploading()
    local_swift.stop_proxy()
    try:
        time.sleep(3)  # the outage itself
    finally:
        local_swift.start_proxy()
    assert run.wait() == 0, run.output()
    out = tmp_path / "restored"
    assert setup.run("restore", out).returncode == 0
    assert_same_tree(setup.source, out)


@pytest.mark.parametrize("workers", [0, 1], ids=["duplicity-uploads", "upload-process"])
def test_proxy_down_for_good_fails_in_bounded_time_then_resumes(
    local_swift, make_setup, tmp_path, workers
):
    """An outage longer than the retries fails the run with BACKEND, in bounded time, each
    failed attempt announced on stderr as it happens (real duplicity, real stopped proxy); the
    next run, with Swift back, resumes the set (the volumes already there stay) and completes.
    Two duplicity attempts 1 s apart, each of them swiftclient's request and one retry 1 s
    later (``swift.retries = 1``), keep the test short: with the defaults (three attempts 10 s
    apart, swiftclient's five retries, about 31 s each) it takes about 2 minutes, and it is
    the profile's settings, not the defaults, that the bound below holds the run to. With an
    upload process (``upload_workers``, what "auto" picks for a far Swift) the same holds: its
    attempts reach the run's log as they happen, and the volume after the failed one is not
    uploaded (it ran its attempts too, announced, and doubled the time to give up)."""
    setup = make_setup(
        extra=f"upload_workers = {workers}\n"
        'extra_options = ["--num-retries=2", "--backend-retry-delay=1"]\n',
        swift_options="retries = 1\n",
    )
    write_tree(setup.source, mb=6)
    run = setup.spawn_until_uploading(volumes=3)
    local_swift.stop_proxy()
    stopped = time.monotonic()
    try:
        code = run.wait(timeout=240)
        elapsed = time.monotonic() - stopped
    finally:
        local_swift.start_proxy()
    output = run.output()
    assert code == ExitCode.BACKEND, output
    assert "cannot reach Swift" in output
    # two attempts of about 1 s each (swiftclient's back-off), 1 s apart; with swiftclient's
    # default of five retries each attempt alone takes about 31 s
    assert elapsed < 25, f"the run took {elapsed:.0f} s to give up"
    announced = [ln for ln in output.splitlines() if "duplicity retries it: Attempt of" in ln]
    # one request's first attempt, and no other request's: nothing is sent after the failure
    assert len(announced) == 1 and "Nr. 1 failed" in announced[0], output
    logs = setup.last_log()
    assert " ".join(RETRY_FLAGS) in logs and "--num-retries=2" in logs  # the profile's wins

    before = volume_stamps(setup.listing(), "full")
    result = setup.run("backup")
    assert result.returncode == 0, result
    assert_resumed(before, volume_stamps(setup.listing(), "full"), setup.last_log())
    out = tmp_path / "restored"
    assert setup.run("restore", out).returncode == 0
    assert_same_tree(setup.source, out)
    setup.assert_history(ExitCode.BACKEND, ExitCode.OK)
