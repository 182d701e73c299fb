"""Swift failing under a running backup, on the fault suite's 3-replica ring with 3 object
servers (conftest.local_swift): a storage server lost, the proxy stopped, then back."""

from __future__ import annotations

import time

import pytest
from faultkit import write_tree
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


def test_proxy_down_for_good_fails_in_bounded_time_then_resumes(local_swift, make_setup, tmp_path):
    """An outage longer than the retries fails the run with BACKEND, in bounded time; the next
    run, with Swift back, resumes and completes. One duplicity attempt here (the default is
    three, 10 s apart, about 2 minutes in all) keeps the test short."""
    setup = make_setup(extra='extra_options = ["--num-retries=1"]\n')
    write_tree(setup.source, mb=3)
    run = setup.spawn_until_uploading()
    local_swift.stop_proxy()
    stopped = time.monotonic()
    try:
        code = run.wait(timeout=180)
        elapsed = time.monotonic() - stopped
    finally:
        local_swift.start_proxy()
    output = run.output()
    assert code == ExitCode.BACKEND, output
    assert "cannot reach Swift" in output
    assert elapsed < 120, f"the run took {elapsed:.0f} s to give up"
    logs = "\n".join(p.read_text() for p in (setup.state_dir / "logs").glob("*-backup-*.log"))
    assert " ".join(RETRY_FLAGS) in logs and "--num-retries=1" in logs  # the profile's wins

    result = setup.run("backup")
    assert result.returncode == 0, result
    out = tmp_path / "restored"
    assert setup.run("restore", out).returncode == 0
    assert_same_tree(setup.source, out)
    setup.assert_history(ExitCode.BACKEND, ExitCode.OK)


def test_each_failed_attempt_is_announced(tmp_path, caplog):
    """While duplicity retries, the user hears of each failed attempt (not minutes of
    silence): a stand-in duplicity reports one, as duplicity's machine log does."""
    from cfbackup.duplicity.run import run_duplicity

    fake = tmp_path / "duplicity"
    fake.write_text(
        "#!/bin/bash\n"
        'for a in "$@"; do case $a in --log-fd=*) fd=${a#--log-fd=};; esac; done\n'
        "printf 'WARNING 0\\n. Attempt of put Nr. 1 failed. ConnectionError: refused\\n\\n' >&$fd\n"
    )
    fake.chmod(0o755)
    caplog.set_level("WARNING", logger="cfbackup")
    run_duplicity(lambda fd: (str(fake), "backup", f"--log-fd={fd}"), {})
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("duplicity retries it: Attempt of put Nr. 1 failed" in w for w in warnings)
