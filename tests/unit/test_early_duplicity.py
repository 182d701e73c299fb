"""A backup's duplicity interpreter starts at cfbackup's first statement (``duplicity/early.py``)
and takes the run's environment, on its argument pipe, only when an interpreter started with
that environment would run the same (``early.fits``); otherwise it is stopped and the warm
duplicity starts as before. The launcher's side: the environment first, then the arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cfbackup.duplicity import early, launcher
from cfbackup.duplicity.run import WarmDuplicity


@pytest.fixture(autouse=True)
def _none_waiting():
    """Each test starts and ends with no interpreter waiting (another test's in-process
    ``cfbackup backup`` may have left one, started with that test's environment)."""
    early.discard()
    yield
    early.discard()


@pytest.mark.parametrize(
    ("argv", "backup"),
    [
        (["backup"], True),
        (["backup", "main", "--full"], True),
        (["-c", "cfg.toml", "backup"], True),
        (["--config", "cfg.toml", "-q", "backup", "main"], True),
        (["--config=cfg.toml", "--debug", "backup"], True),
        (["-c", "backup", "list"], False),  # a config file named backup
        (["restore", "backup", "/tmp/x"], False),  # a profile named backup
        (["list"], False),
        (["--help"], False),
        ([], False),
    ],
)
def test_only_the_backup_command_starts_one(argv, backup):
    assert early.is_backup(argv) is backup


START = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}


@pytest.mark.parametrize(
    ("env", "fits"),
    [
        (START, True),
        ({**START, "PASSPHRASE": "p", "SWIFT_AUTHURL": "http://a", "http_proxy": "http://p"}, True),
        ({**START, "LANG": "de_DE.UTF-8"}, False),  # the locale: file names' encoding
        ({**START, "LC_ALL": "C"}, False),
        ({**START, "LC_CTYPE": "C"}, False),
        ({**START, "TZ": "Europe/Berlin"}, True),  # the launcher reads it again (tzset)
        ({"LANG": "C.UTF-8"}, False),  # none of START's kept: what it started with, gone
        ({**START, "PYTHONPATH": "/opt/lib"}, False),
        ({k: v for k, v in START.items() if k != "HOME"}, False),  # one it had, taken away
        ({**START, "PATH": "/opt/bin:/usr/bin"}, False),
    ],
)
def test_it_takes_only_an_environment_a_cold_start_would_run_the_same_with(env, fits):
    assert early.fits(START, env) is fits


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


def test_the_warm_duplicity_takes_the_waiting_interpreter_when_it_fits(monkeypatch):
    monkeypatch.delenv(WarmDuplicity.OFF, raising=False)
    early.start(["backup"])
    waiting = early._waiting
    assert waiting is not None and launcher.ENV_FIRST in _cmdline(waiting.process.pid)
    assert "PASSPHRASE" not in waiting.env  # started before any config or secret was read
    warm = WarmDuplicity({"PASSPHRASE": "not-used"})
    try:
        assert warm.process is waiting.process and early._waiting is None
        assert warm.fits({"PASSPHRASE": "not-used"})
    finally:
        warm.close()
    assert warm.process.returncode in (0, -15)


def test_a_waiting_interpreter_that_does_not_fit_is_stopped_and_one_started_as_before(
    monkeypatch,
):
    monkeypatch.delenv(WarmDuplicity.OFF, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    early.start(["backup"])
    waiting = early._waiting
    assert waiting is not None
    monkeypatch.setenv("LANG", "en_US.UTF-8")  # changed since: file names' encoding at its start
    warm = WarmDuplicity({})
    try:
        assert warm.process is not waiting.process
        assert launcher.ENV_FIRST not in _cmdline(warm.process.pid)
        assert waiting.process.poll() is not None  # stopped, not left waiting
    finally:
        warm.close()


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        return dict(v.decode().split("=", 1) for v in f.read().split(b"\0") if v)


def test_it_starts_before_the_config_with_only_the_locale_never_a_named_secret(monkeypatch):
    """A ``*_env`` setting may name any variable (``passphrase_env = "TZ"``, HOME...); before
    the config is read nobody knows which, and ``/proc/PID/environ`` keeps what a process
    started with for its whole life: it starts with the locale only, the rest comes on its
    pipe once the run's environment (without the named ones) is known."""
    monkeypatch.delenv(WarmDuplicity.OFF, raising=False)
    monkeypatch.setenv("TZ", "FAKE-secret-tz")
    monkeypatch.setenv("HOME", "/FAKE-secret-home")
    monkeypatch.setenv("LANG", "C.UTF-8")
    early.start(["backup"])
    waiting = early._waiting
    assert waiting is not None
    environ = _environ(waiting.process.pid)
    assert not any("FAKE-secret" in value for value in environ.values()), environ.keys()
    assert set(environ) <= {*early.STARTUP, early.ROOM}, environ.keys()
    assert environ["LANG"] == "C.UTF-8"


def test_a_run_with_the_users_home_and_a_time_zone_takes_it(monkeypatch):
    monkeypatch.delenv(WarmDuplicity.OFF, raising=False)
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    early.start(["backup"])
    waiting = early._waiting
    warm = WarmDuplicity({"PASSPHRASE": "not-used"})
    try:
        assert warm.process is waiting.process
    finally:
        warm.close()


def test_no_backup_no_interpreter_and_the_switch_starts_none(monkeypatch):
    monkeypatch.delenv(WarmDuplicity.OFF, raising=False)
    early.start(["list", "main"])
    assert early._waiting is None
    monkeypatch.setenv(WarmDuplicity.OFF, "1")
    early.start(["backup"])
    assert early._waiting is None


def test_an_unused_interpreter_is_stopped_at_once():
    early.start(["backup"])
    waiting = early._waiting
    assert waiting is not None
    early.discard()
    assert waiting.process.returncode is not None and early._waiting is None
    early.discard()  # idempotent: nothing waits any more


PROBE = """
import io, json, os
from cfbackup.duplicity import launcher

pipe = io.BufferedReader(io.BytesIO(b'{"ONLY": "this"}\\n{"argv": ["--version"]}'))
taken = launcher._environment_from(pipe)
print(json.dumps({"taken": taken, "environ": dict(os.environ), "argv": launcher._argv_from(pipe)}))
"""


def test_the_launcher_takes_the_environment_then_the_arguments_from_one_pipe():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found == {"taken": True, "environ": {"ONLY": "this"}, "argv": ["--version"]}


TZ_PROBE = """
import io, time
from cfbackup.duplicity import launcher

time.strftime("%z")  # imported, its zone read, before the run's environment came
pipe = io.BufferedReader(io.BytesIO(b'{"TZ": "Asia/Kolkata"}\\n'))
launcher._environment_from(pipe)
print(time.strftime("%z", time.localtime(0)))
"""


def test_the_runs_time_zone_is_the_one_duplicity_uses():
    """An interpreter reads TZ when it imports time: the early one, started without the run's
    TZ, reads it again when it takes the run's environment (the local times duplicity shows
    and parses, as for a cold start)."""
    env = {"PATH": os.environ["PATH"], "TZ": "UTC"}
    done = subprocess.run([sys.executable, "-c", TZ_PROBE], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "+0530"


def test_a_pipe_closed_before_the_environment_ends_the_launcher_at_once():
    read, write = os.pipe()
    os.close(write)
    done = subprocess.run(
        [*launcher.command(), f"{launcher.ARGV_FROM}{read}", launcher.ENV_FIRST],
        pass_fds=(read,),
        capture_output=True,
        text=True,
        timeout=60,
    )
    os.close(read)
    assert done.returncode == 0 and not done.stdout and not done.stderr, done
