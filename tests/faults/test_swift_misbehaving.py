"""Swift (or the network in front of it) misbehaving without going away, through the fault
proxy (``support.forward_proxy``, ``fault_when``) in front of the suite's real Swift: a volume's
PUT taken and never answered, downloads cut short, a 503 on every listing, an auth that returns
a storage URL nobody can reach. Each ends in bounded time with exit 10 and one sentence naming
the cause and the fix; what retrying can cure is retried."""

from __future__ import annotations

import itertools
import socket
import time

import pytest
from faultkit import error_line, write_tree
from support.forward_proxy import STALL, Cut, ForwardProxy, Headers
from support.trees import assert_same_tree

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.faults, pytest.mark.swift]

# the stalled runs: a 2 s --timeout, two duplicity attempts 1 s apart, and swift.retries left
# unset (5): swiftclient tries a timed-out request once (patches/swift_timeout.py). With the
# defaults (30 s, 3 attempts 10 s apart) the bound is 110 s; it was about 11 minutes while
# swiftclient retried each timed-out request 5 times (docs/reliability.md)
TIMEOUT, NUM_RETRIES, DELAY = 2, 2, 1
JITTER = 0.2  # s: the proxy notes a request when its thread gets to it
QUICK = (
    f'extra_options = ["--num-retries={NUM_RETRIES}", "--backend-retry-delay={DELAY}", '
    f'"--timeout={TIMEOUT}"]\n'
)
# docs/reliability.md's bound: each attempt waits --timeout once; the attempts are
# --backend-retry-delay apart
STALL_BOUND = NUM_RETRIES * TIMEOUT + (NUM_RETRIES - 1) * DELAY


def _volume(path: str) -> bool:
    return ".difftar." in path


@pytest.mark.parametrize("workers", [0, 1], ids=["duplicity-uploads", "upload-process"])
def test_a_put_swift_never_answers_ends_the_backup_in_bounded_time(make_setup, workers):
    """It hung for ever (duplicity's swiftclient had no timeout: patches/swift_timeout.py), then
    about 11 minutes with the defaults (swiftclient tried each timed-out PUT 6 times)."""
    setup = make_setup(extra=f"upload_workers = {workers}\n{QUICK}")
    write_tree(setup.source, mb=2)
    stalled: list[float] = []  # when each volume PUT came

    def stall(method, path, headers, seen):
        if method == "PUT" and _volume(path):
            stalled.append(time.monotonic())
            return STALL
        return None

    with ForwardProxy(fault_when=stall) as proxy:
        result = setup.run("backup", env=proxy.env, timeout=150)
        ended = time.monotonic()
    assert result.returncode == ExitCode.BACKEND, result
    line = error_line(result)  # the host took the PUT: not DNS, not a firewall, not the auth URL
    assert (
        f"accepted the connection but sent no answer within the timeout ({TIMEOUT} s): its "
        "proxy, or a load balancer in front of it, holds the requests" in line
    ), result
    assert "DNS" not in line and setup.swift.auth_url not in line, result
    # the patch in duplicity's (or the upload process's) connections: one PUT per attempt,
    # given up after --timeout, not swift.retries + 1 (6) of them; duplicity's attempts remain
    assert len(stalled) == NUM_RETRIES, stalled
    gaps = [b - a for a, b in itertools.pairwise(stalled)]
    assert all(gap > TIMEOUT + DELAY - JITTER for gap in gaps), gaps
    waited = ended - stalled[0]  # the bound, and what the run does once it gave up
    print(f"gave up {waited:.1f} s after the first PUT (bound {STALL_BOUND} s), gaps {gaps}")
    assert STALL_BOUND - JITTER < waited < STALL_BOUND + 10, (
        f"the backup gave up {waited:.1f} s after the first PUT (bound {STALL_BOUND} s)"
    )
    assert setup.lock_is_free()
    setup.assert_history(ExitCode.BACKEND)


@pytest.mark.parametrize("workers", [0, 1], ids=["duplicity-uploads", "upload-process"])
def test_a_put_that_times_out_once_is_tried_again_and_the_backup_succeeds(make_setup, workers):
    """A far Swift slow once (a volume's first PUT never answered, the next one is): swiftclient
    gives up on the timed-out PUT (patches/swift_timeout.py), duplicity's next attempt
    (--num-retries) uploads it, announced as a warning. Not tried 6 times by swiftclient any
    more, but tried again all the same: the bound above cost nothing to a flaky link."""
    setup = make_setup(extra=f"upload_workers = {workers}\n{QUICK}")
    write_tree(setup.source, mb=2)
    puts: list[str] = []  # each volume PUT's path: the first one stalls

    def stall_first(method, path, headers, seen):
        if method != "PUT" or not _volume(path):
            return None
        puts.append(path)
        return STALL if len(puts) == 1 else None

    with ForwardProxy(fault_when=stall_first) as proxy:
        result = setup.run("backup", env=proxy.env, timeout=150)
    assert result.returncode == 0, result
    assert puts.count(puts[0]) == 2, puts  # the stalled volume, once more, and only once
    assert "a request to the backend failed, duplicity retries it" in result.output, result
    assert len(setup.volumes("full")) == len(set(puts)), puts
    setup.assert_history(0)


def _cut(method, path, headers, seen):
    """fault_when: every download of a volume ends 200 kB in."""
    return Cut(200_000) if method == "GET" and _volume(path) else None


def _cut_first_try(method, path, headers, seen):
    """fault_when: a volume's first download and every resume of it swiftclient makes (with a
    Range) end 200 kB in: that try fails; the next one (a new GET) is whole."""
    first = (method, path) not in seen
    return _cut(method, path, headers, seen) if first or headers.get("Range") else None


def test_downloads_cut_short_are_tried_again_then_fail_as_swift_unreachable(make_setup, tmp_path):
    """A download cut short after swiftclient's own resume was "internal error (ProtocolError
    ...): this is a bug" (verify --read-data) or "fetching the volumes failed" (restore), exit
    1, never tried again. It is Swift unreachable (10), tried again like any other."""
    setup = make_setup(extra='extra_options = ["--num-retries=2", "--backend-retry-delay=1"]\n')
    write_tree(setup.source, mb=2)
    assert setup.run("backup").returncode == 0

    # the first try at each volume fails, the second is whole: restored
    with ForwardProxy(fault_when=_cut_first_try) as proxy:
        out = tmp_path / "restored"
        result = setup.run("restore", out, env=proxy.env)
    assert result.returncode == 0, result
    assert_same_tree(setup.source, out)
    assert "restore: fetching duplicity-full." in result.stderr, result
    assert "trying again in 1 s (try 2 of 2): the connection to Swift was closed" in (
        result.stderr
    ), result

    # cut every time: each volume's two tries fail, the run ends as Swift unreachable
    with ForwardProxy(fault_when=_cut) as proxy:
        result = setup.run("verify", "--read-data", env=proxy.env)
    assert result.returncode == ExitCode.BACKEND, result
    line = error_line(result)
    assert "the connection to Swift was closed before its answer was complete" in line, result
    assert "this is a bug" not in result.output and "ProtocolError" not in line, result


def test_a_503_on_every_listing_names_the_fix(make_setup):
    """One retry of swiftclient's (``swift.retries``; 3 unset: 7 s of back-off per command)."""
    setup = make_setup(swift_options="retries = 1\n")
    write_tree(setup.source, mb=1)
    assert setup.run("backup").returncode == 0

    def listing(method, path, headers, seen):  # GET /v1/ACCOUNT/CONTAINER
        return 503 if method == "GET" and path.count("/") == 3 else None

    with ForwardProxy(refuse_when=listing) as proxy:
        for args in (("status",), ("verify", "--read-data")):
            before = len(proxy.seen)
            result = setup.run(*args, env=proxy.env)
            listings = [r for r in proxy.seen[before:] if r[0] == "GET" and r[1].count("/") == 3]
            assert len(listings) == 2, listings  # the try and swiftclient's one retry
            assert result.returncode == ExitCode.BACKEND, result
            line = error_line(result)
            assert "Swift answered 503 Service Unavailable (" in line, result
            assert line.endswith(
                "): Swift's proxy or its storage servers are failing (swiftclient already "
                "retried); try again later, and ask Swift's operator if it persists."
            ), result


def test_a_storage_url_nobody_can_reach_is_named_not_the_auth_url(make_setup):
    """The auth answers, with a storage URL this machine cannot reach (a host of the provider's
    internal network, a firewall): the message blamed swift.auth_url. One retry of
    swiftclient's (``swift.retries``; 3 unset: 7 s of back-off per command)."""
    setup = make_setup(swift_options="retries = 1\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    storage = f"http://localhost:{closed}/v1/AUTH_test"

    def elsewhere(method, path, headers, seen):
        return Headers({"X-Storage-Url": storage}) if path.startswith("/auth/") else None

    with ForwardProxy(fault_when=elsewhere) as proxy:
        # the auth through the proxy, the storage host direct (no proxy for localhost)
        env = {**proxy.env, "no_proxy": "localhost", "NO_PROXY": "localhost"}
        status = setup.run("status", env=env)
        check = setup.run("cli", "check", setup.profile, env=env)
    assert status.returncode == ExitCode.BACKEND, status
    assert check.returncode == ExitCode.REFUSED, check  # its failed checks, each on a line
    said = (
        f"cannot reach Swift at {storage} (connection failed: connection refused): "
        f"Swift's auth at {setup.swift.auth_url} answered and returned this storage URL"
    )
    assert said in error_line(status) and said in check.stdout, (status, check)
    assert "check swift.auth_url" not in status.output + check.output, (status, check)
