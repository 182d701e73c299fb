"""Swift (or the network in front of it) misbehaving without going away, through the fault
proxy (``support.forward_proxy``, ``fault_when``) in front of the suite's real Swift: a volume's
PUT taken and never answered, downloads cut short, a 503 on every listing, an auth that returns
a storage URL nobody can reach. Each ends in bounded time with exit 10 and one sentence naming
the cause and the fix; what retrying can cure is retried."""

from __future__ import annotations

import time

import pytest
from faultkit import error_line, write_tree
from support.forward_proxy import STALL, ForwardProxy

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.faults, pytest.mark.swift]

# a shorter --timeout and one duplicity attempt keep the stalled runs under a minute (the
# defaults: 30 s and 3 attempts, docs/reliability.md)
QUICK = 'extra_options = ["--num-retries=1", "--timeout=2"]\n'


def _volume(path: str) -> bool:
    return ".difftar." in path


@pytest.mark.parametrize("workers", [0, 1], ids=["duplicity-uploads", "upload-process"])
def test_a_put_swift_never_answers_ends_the_backup_in_bounded_time(make_setup, workers):
    """It hung for ever (duplicity's swiftclient had no timeout: patches/swift_timeout.py)."""
    setup = make_setup(extra=f"upload_workers = {workers}\n{QUICK}")
    write_tree(setup.source, mb=2)

    def stall(method, path, headers, seen):
        return STALL if method == "PUT" and _volume(path) else None

    with ForwardProxy(fault_when=stall) as proxy:
        started = time.monotonic()
        result = setup.run("backup", env=proxy.env, timeout=150)
        elapsed = time.monotonic() - started
        puts = [p for m, p in proxy.seen if m == "PUT" and _volume(p)]
    assert result.returncode == ExitCode.BACKEND, result
    assert (
        f"cannot reach Swift at {setup.swift.auth_url} (connection failed: timed out)"
        in error_line(result)
    ), result
    # one duplicity attempt: swiftclient's 6 tries of the PUT, 2 s each, 31 s of back-off
    assert len(puts) == 6, puts
    assert elapsed < 90, f"the backup took {elapsed:.0f} s to give up"
    assert setup.lock_is_free()
    setup.assert_history(ExitCode.BACKEND)
