"""A chain's duplicity that starts after the run's stop was decided (Ctrl-C or SIGTERM while
the split chains run, a drill's time up: ``execute.ProcessGroup.stop_all``) is stopped at once
and does not do its command: the stop does not reach a process the group does not know yet,
so ``ProcessGroup.started`` refuses it and its caller stops it. How depends on how it started:

- with the run's token (``handed_token``), duplicity starts before its arguments are known (a
  cold start in ``duplicity/run.py``) and waits for them on a pipe: refused, it never gets
  them (``WarmDuplicity.close``: SIGTERM). It was registered only once they were sent, so a
  stop between the two reached it only after it had been given its command;
- without one (a drill's restores, whose environment holds no token; a chain whose view's token
  is too old to hand over), ``execute.stream`` spawns it with its whole command line: refused,
  it is sent SIGINT at once, then SIGTERM and SIGKILL if it does not end
  (``execute.terminate``), where a late one used to get one SIGINT only. It is stopped during
  its start-up, before it does its command: the target folder a ``collection-status`` would
  create is not there.

Real duplicity, through the launcher."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from cfbackup import execute
from cfbackup.duplicity.patches import handed_token
from cfbackup.duplicity.run import WarmDuplicity, run_duplicity
from cfbackup.errors import Interrupted

TOKEN_ENV = {handed_token.URL: "http://127.0.0.1:9/v1/AUTH_test", handed_token.TOKEN: "tk"}


@pytest.fixture
def spawned(monkeypatch):
    """The processes started for duplicity, and the arguments sent to a warm/cold one."""
    seen: dict[str, list] = {"processes": [], "sent": []}
    spawn, start = execute.spawn, WarmDuplicity.start

    def recorded_spawn(*args, **kwargs):
        seen["processes"].append(spawn(*args, **kwargs))
        return seen["processes"][-1]

    def recorded_start(self, args, env=None):
        seen["sent"].append(list(args))
        return start(self, args, env)

    monkeypatch.setattr(execute, "spawn", recorded_spawn)
    monkeypatch.setattr(WarmDuplicity, "start", recorded_start)
    return seen


def _collection_status(tmp_path):
    target = f"file://{tmp_path}/target"
    return lambda fd: ("duplicity", "collection-status", f"--log-fd={fd}", target)


def test_a_cold_start_stopped_before_its_arguments_went_out_never_gets_them(tmp_path, spawned):
    group = execute.ProcessGroup()
    build = _collection_status(tmp_path)

    def stop_now(fd: int):  # duplicity is started (for the token), its arguments not yet sent
        assert len(spawned["processes"]) == 1 and spawned["processes"][0].poll() is None
        group.stop_all()  # the main thread's Ctrl-C, just then
        return build(fd)

    began = time.monotonic()
    with pytest.raises(Interrupted):
        run_duplicity(stop_now, TOKEN_ENV, on_start=group.started)
    assert spawned["sent"] == [], "duplicity was given its command after the stop"
    assert not (tmp_path / "target").exists()
    assert all(p.poll() is not None for p in spawned["processes"])
    assert time.monotonic() - began < 15


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="argv-at-spawn"),  # execute.stream: spawned with argv, then SIGINT
        pytest.param(TOKEN_ENV, id="token-waits-for-argv"),  # WarmDuplicity: never sent its argv
    ],
)
def test_a_chain_that_starts_after_the_stop_is_stopped_at_once(tmp_path, spawned, env):
    group = execute.ProcessGroup()
    group.stop_all()
    began = time.monotonic()
    with pytest.raises(Interrupted):
        run_duplicity(_collection_status(tmp_path), env, on_start=group.started)
    [process] = spawned["processes"]
    assert process.poll() is not None
    assert not (tmp_path / "target").exists(), "duplicity did its command after the stop"
    if env:  # started for the token, before its arguments: they never went out
        assert spawned["sent"] == [] and "collection-status" not in process.args
    else:  # execute.stream's path: started with its command line, stopped as it started
        assert "collection-status" in process.args
    assert time.monotonic() - began < 15


def test_a_stop_while_duplicity_waits_for_its_arguments_puts_no_traceback_in_the_log():
    """stop_all's SIGINT (what ``terminate`` sends first) to a duplicity still starting up, here
    one waiting for its arguments on the pipe: it ended in a KeyboardInterrupt traceback that
    ``follow`` logged line by line. It now ends by the signal as before (-2), quietly."""
    warm = WarmDuplicity({})
    try:
        wchan = Path(f"/proc/{warm.process.pid}/wchan")
        deadline = time.monotonic() + 60
        while "pipe" not in wchan.read_text():  # its imports done, it reads the argv pipe
            assert time.monotonic() < deadline, "it never waited for its arguments"
            assert warm.process.poll() is None, "it ended before its arguments"
            time.sleep(0.05)
        group = execute.ProcessGroup()
        group.started(warm.process)
        group.stop_all()
        logged: list[str] = []
        result = execute.follow(warm.process, ("duplicity",), on_line=logged.append)
    finally:
        warm.close()
    assert result.returncode == -signal.SIGINT
    assert not [line for line in logged if "Traceback" in line or "KeyboardInterrupt" in line], (
        logged
    )
