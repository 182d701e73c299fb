"""The profile lock: refused at once by default; with ``$CFBACKUP_LOCK_WAIT`` (set by the
scheduled runs) a run waits for the holder, within a bound."""

from __future__ import annotations

import threading
import time

import pytest

from cfbackup import lock
from cfbackup.errors import ConfigError, ExitCode, LockHeld


def test_a_held_lock_is_refused_at_once_without_a_wait(tmp_path, monkeypatch):
    monkeypatch.delenv(lock.WAIT_VARIABLE, raising=False)
    with lock.profile_lock(tmp_path, "web", "backup"):
        started = time.monotonic()
        with pytest.raises(LockHeld) as refused, lock.profile_lock(tmp_path, "web", "drill"):
            pass
    assert time.monotonic() - started < 0.5
    assert refused.value.exit_code == ExitCode.LOCKED
    assert "wait for it to finish (the lock is released" in refused.value.message


def test_with_a_wait_the_run_goes_once_the_holder_ends(tmp_path, monkeypatch):
    """A backup and a drill of one profile due together: the second waits, then runs."""
    monkeypatch.setenv(lock.WAIT_VARIABLE, "10s")
    held = threading.Event()

    def holder():
        with lock.profile_lock(tmp_path, "web", "backup", wait=0):
            held.set()
            time.sleep(1.0)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    started = time.monotonic()
    with lock.profile_lock(tmp_path, "web", "drill") as path:
        waited = time.monotonic() - started
        assert '"action": "drill"' in path.read_text()
    thread.join()
    assert 0.5 < waited < 5


def test_a_wait_is_bounded_and_the_error_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv(lock.WAIT_VARIABLE, "1s")
    with lock.profile_lock(tmp_path, "web", "backup", wait=0):
        started = time.monotonic()
        with pytest.raises(LockHeld) as refused, lock.profile_lock(tmp_path, "web", "drill"):
            pass
        waited = time.monotonic() - started
    assert 1.0 <= waited < 2.5
    message = refused.value.message
    assert message.startswith("profile web is locked by another cfbackup run, PID ")
    assert "(backup, since " in message
    assert message.endswith(
        ": waited 1s ($CFBACKUP_LOCK_WAIT) for it to finish: check whether that run hangs, or "
        "raise CFBACKUP_LOCK_WAIT."
    )


def test_a_wait_that_is_not_a_duration_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv(lock.WAIT_VARIABLE, "six hours")
    with pytest.raises(ConfigError) as refused, lock.profile_lock(tmp_path, "web", "backup"):
        pass
    assert refused.value.message.startswith("$CFBACKUP_LOCK_WAIT: 'six hours' is not a duration")
    assert refused.value.message.endswith("set it to a duration such as 6h.")
