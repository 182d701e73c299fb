"""A backup's warm duplicity starts before cfbackup's checks have authenticated
(``actions/backup.py``): it is started with ``SWIFT_HANDOVER_LATE=1``, and the checks' storage URL
and token come on its argument pipe (``launcher._argv_from``, ``patches/handed_token.py``), never
in its environment. Every Connection duplicity then makes starts with them; without them (the
token grew too old, or the switch) each authenticates as without the patch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cfbackup.duplicity import launcher
from cfbackup.duplicity.patches import handed_token
from cfbackup.duplicity.run import WarmDuplicity

PROBE = """
import json, os, sys
from cfbackup.duplicity import launcher

launcher._apply()  # as a warm start does before its imports
import swiftclient.client

read, write = os.pipe()
os.write(write, sys.argv[1].encode())
os.close(write)
argv = launcher._argv_from(read)
conn = swiftclient.client.Connection(authurl="http://a/auth/v1.0", user="u", key="k")
own = swiftclient.client.Connection(preauthurl="http://b/v1/B", preauthtoken="own")
print(json.dumps({
    "argv": argv,
    "handed": [conn.url, conn.token],
    "own": [own.url, own.token],
    "environ": sorted(k for k in os.environ if k.startswith("SWIFT_HANDOVER")),
}))
"""

URL, TOKEN = "http://127.0.0.1:1/v1/AUTH_test", "AUTH_tk0123456789"


def _probe(message: dict) -> dict:
    env, chosen = launcher.environment(
        {"SWIFT_AUTHVERSION": "1", "PATH": "/usr/bin:/bin", handed_token.LATE: "1"}
    )
    assert "handed-token" in [p.name for p in chosen]
    assert handed_token.TOKEN not in env and handed_token.URL not in env
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(message)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_token_comes_with_the_arguments():
    got = _probe({"argv": ["backup", "x"], "handover": {"url": URL, "token": TOKEN}})
    assert got["argv"] == ["backup", "x"]
    assert got["handed"] == [URL, TOKEN]
    assert got["own"] == ["http://b/v1/B", "own"]  # a Connection given its own keeps it
    assert got["environ"] == []


def test_without_a_token_duplicity_authenticates_itself():
    got = _probe({"argv": ["backup", "x"]})
    assert got["handed"] == [None, None]  # swiftclient authenticates on its first request
    assert got["environ"] == []


@pytest.mark.parametrize("switch", [{}, {"CFBACKUP_NO_HANDED_TOKEN": "1"}])
def test_a_late_warm_duplicity_fits_the_run_with_or_without_the_token(monkeypatch, switch):
    from cfbackup.duplicity.environment import late_handover_environment

    for name, value in switch.items():
        monkeypatch.setenv(name, value)
    env = {"LANG": "C.UTF-8"}  # any environment: these test the process, not duplicity
    late = late_handover_environment(True)
    assert late == ({} if switch else {handed_token.LATE: "1"})
    assert late_handover_environment(False) == {}  # not a Swift target: no patch
    warm = WarmDuplicity({**env, **late})
    try:
        assert handed_token.TOKEN not in warm.env
        assert warm.fits(env)  # the token too old to hand over: it authenticates itself
        assert warm.fits({**env, handed_token.URL: URL, handed_token.TOKEN: TOKEN}) == bool(late)
        assert not warm.fits({**env, "OTHER": "1"})
    finally:
        warm.close()


def test_the_run_log_names_the_patches_the_warm_duplicity_runs_with(caplog):
    """Given no token (too old to hand over), a late warm duplicity still runs with the inert
    handed-token patch it was started with: the run log says so."""
    import logging

    from cfbackup.duplicity.run import run_duplicity

    env = {"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"}
    warm = WarmDuplicity({**env, handed_token.LATE: "1"})
    with caplog.at_level(logging.DEBUG, logger="cfbackup.duplicity"):
        result = run_duplicity(lambda fd: ("duplicity", "--version"), env, warm=warm)
    assert result.returncode == 0
    assert warm.sent  # it ran in the warm one
    named = [r.getMessage() for r in caplog.records if "duplicity patches:" in r.getMessage()]
    assert len(named) == 1 and "handed-token" in named[0], named


def test_a_cold_start_gets_the_token_on_its_pipe_never_in_its_environment(monkeypatch):
    """A duplicity started with no warm one (split chains, a second command of the run) to which
    the run hands a token is started through the argument pipe as a warm one is: the token is
    in no environment and no argv of what is started (``/proc/PID/environ`` keeps them)."""
    from cfbackup import execute
    from cfbackup.duplicity.run import run_duplicity

    started = []
    spawn = execute.spawn

    def recorded(argv, *, env=None, pass_fds=()):
        started.append((list(argv), dict(env or {})))
        return spawn(argv, env=env, pass_fds=pass_fds)

    monkeypatch.setattr(execute, "spawn", recorded)
    env = {"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"}
    result = run_duplicity(
        lambda fd: ("duplicity", "--version"),
        {**env, handed_token.URL: URL, handed_token.TOKEN: TOKEN},
    )
    assert result.returncode == 0
    assert len(started) == 1, started
    argv, child_env = started[0]
    assert argv[-1].startswith(launcher.ARGV_FROM), argv  # its arguments came on the pipe
    assert child_env.get(handed_token.LATE) == "1"
    assert not [a for a in argv if TOKEN in a or URL in a]
    assert not [k for k, v in child_env.items() if TOKEN in v or URL in v], child_env
    assert TOKEN not in repr(result) and TOKEN not in str(result.env)
