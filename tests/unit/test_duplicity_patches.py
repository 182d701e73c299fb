"""The registry of code that runs inside duplicity (cfbackup/duplicity/patches/): every
attribute a patch targets exists in the installed duplicity and swiftclient, and a plugin's
patch runs inside the real duplicity, after core's, only for the profiles that enable it."""

from __future__ import annotations

import importlib
import logging
import os

import pytest

from cfbackup import plugins
from cfbackup.duplicity import patches
from cfbackup.duplicity.run import run_duplicity
from cfbackup.hookspecs import hookimpl


def _registered() -> tuple[patches.Patch, ...]:
    """Core's patches and every installed plugin's."""
    return (*patches.CORE, *patches.from_plugins(plugins.make_plugin_manager().hook))


def missing_targets(patch: patches.Patch) -> list[str]:
    missing = []
    for target in patch.targets:
        module_name, _, path = target.partition(":")
        try:
            found = importlib.import_module(module_name)
            for attribute in path.split("."):
                found = getattr(found, attribute)
        except (ImportError, AttributeError) as error:
            missing.append(f"{target} ({error})")
    return missing


@pytest.mark.parametrize("patch", _registered(), ids=lambda patch: patch.name)
def test_every_attribute_a_patch_targets_exists_in_the_installed_duplicity(patch):
    import duplicity

    missing = missing_targets(patch)
    assert not missing, (
        f"patch {patch.name} was written against duplicity {patch.written_for}; the installed "
        f"duplicity {duplicity.__version__} (or its swiftclient) lacks {', '.join(missing)}: "
        f"review {patch.module} against it"
    )
    module = importlib.import_module(patch.module)
    assert callable(module.applies) and callable(module.apply), patch.module
    assert patch.written_for.count(".") == 2 and patch.targets, patch


def test_a_target_duplicity_no_longer_has_is_reported():
    gone = patches.Patch(
        "gone", "x", "3.2.1", ("duplicity.backends.swiftbackend:SwiftBackend._no_such_put",), ""
    )
    assert missing_targets(gone)[0].startswith(
        "duplicity.backends.swiftbackend:SwiftBackend._no_such_put ("
    )


MARKER_PATCH = """
import os, sys

def applies(env):
    return "MARKER" in env

def apply(env):
    with open(env["MARKER"], "w") as out:
        out.write(f"{os.getpid()} {sys.modules.get('keystoneclient', 'absent')}")
"""


class MarkerPlugin:
    @hookimpl
    def cfbackup_duplicity_patches(self, register):
        register(patches.Patch("marker", "cfbackup_test_marker_patch", "3.2.1", (), "a test"))


def test_a_plugins_patch_runs_inside_duplicity_after_cores(tmp_path, caplog, monkeypatch):
    (tmp_path / "cfbackup_test_marker_patch.py").write_text(MARKER_PATCH)
    monkeypatch.syspath_prepend(str(tmp_path))  # importable here and in duplicity's Python
    marker = tmp_path / "marker"
    pm = plugins.make_plugin_manager(load_entry_points=False)
    pm.register(MarkerPlugin(), name="marker")
    env = {"PYTHONPATH": str(tmp_path), "MARKER": str(marker), "SWIFT_AUTHVERSION": "1"}
    caplog.set_level(logging.DEBUG, logger="cfbackup")

    assert patches.from_plugins(plugins.hooks_for_profile(pm, ["marker"])) == ()
    found = patches.from_plugins(plugins.hooks_for_profile(pm, []))
    result = run_duplicity(lambda fd: ("duplicity", "--version"), env, patches=found)

    assert result.returncode == 0 and any("duplicity 3." in line for line in result.output_tail)
    assert result.argv[0].endswith("/cfbackup-duplicity") and result.argv[1] == "--version"
    pid, keystoneclient = marker.read_text().split()
    assert int(pid) != os.getpid() and keystoneclient == "None"  # core's patch came first
    core = (
        "skip-keystoneclient, swift-timeout, upload-progress, sized-uploads, swift-deletes, "
        "upload-pool, gpg-environment, "
        "gpg-selftest, gpg-waiters, progress-stop, archive-lock, machine-log-names, named-deletes, "
        "interrupted-set"
    )
    assert f"duplicity patches: {core}, marker" in caplog.text

    marker.unlink()  # a patch that does not apply to the run's environment is left out
    caplog.clear()
    del env["MARKER"]
    run_duplicity(lambda fd: ("duplicity", "--version"), env, patches=found)
    assert f"duplicity patches: {core}\n" in caplog.text
    assert not marker.exists()


def test_every_patch_of_a_module_runs_after_its_import(tmp_path, monkeypatch):
    """Two patches of one module (gpg-ahead's and upload-pool's of duplicity.dup_main): each
    runs, in order. With a finder per patch, the last one registered shadowed the first, whose
    patch never ran (upload-pool's: every pooled backup waited 2 s at its end)."""
    import importlib
    import sys

    (tmp_path / "cfb_probe_module.py").write_text("ran = []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cfb_probe_module", raising=False)
    patches.after_import("cfb_probe_module", lambda module: module.ran.append("first"))
    patches.after_import("cfb_probe_module", lambda module: module.ran.append("second"))
    module = importlib.import_module("cfb_probe_module")
    assert module.ran == ["first", "second"]
    patches.after_import("cfb_probe_module", lambda module: module.ran.append("now"))
    assert module.ran == ["first", "second", "now"]  # already imported: at once
    monkeypatch.delitem(sys.modules, "cfb_probe_module")


def test_a_duplicity_refused_by_the_archive_lock_leaves_it_held(tmp_path):
    """While one process holds duplicity's archive-dir lock, a second duplicity is refused
    and exits without deleting the holder's lock file: a third is refused too. duplicity 3.2.1
    deleted it (its atexit release of a lock never taken), and the third duplicity then locked
    a new file and ran beside the holder in the same archive dir."""
    import fasteners

    archive, target = tmp_path / "archive", tmp_path / "target"
    target.mkdir()
    lockfile = archive / "probe" / "lockfile"
    held = fasteners.InterProcessLock(str(lockfile))  # the running duplicity's lock
    assert held.acquire(blocking=False)
    try:
        inode = lockfile.stat().st_ino
        argv = (
            "duplicity",
            "collection-status",
            "--archive-dir",
            str(archive),
            "--name",
            "probe",
            "--no-encryption",
            f"file://{target}",
        )
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
        for attempt in ("second", "third"):
            result = run_duplicity(
                lambda fd, argv=argv: (*argv, f"--log-fd={fd}"), env, check=False
            )
            assert result.returncode == 23, (attempt, result.returncode, result.output_tail)
            assert any("Another duplicity instance" in line for line in result.output_tail)
            assert lockfile.exists(), f"the {attempt} duplicity deleted the held lock file"
            assert lockfile.stat().st_ino == inode
    finally:
        held.release()


TIMEOUT_PROBE = """
import sys
from cfbackup.duplicity import launcher
launcher._apply()
import swiftclient, swiftclient.client, swiftclient.service
from duplicity import config
config.timeout = 7  # what duplicity's --timeout=7 sets
made = [
    swiftclient.Connection(authurl="http://a/auth/v1.0", user="u", key="k"),  # the backend's
    swiftclient.service.get_conn(dict(  # SwiftService's
        swiftclient.service._default_local_options, os_options={},
        auth="http://a/auth/v1.0", user="u", key="k",
    )),
    swiftclient.client.Connection(preauthurl="http://a/v1/A", preauthtoken="t", timeout=3),
]
print(type(made[0]).__name__, [c.timeout for c in made])
"""


@pytest.mark.parametrize(
    ("extra", "outermost"),
    [({}, "TimedConnection"), ({"CFBACKUP_SWIFT_SERVICENET": "1"}, "ServiceNetConnection")],
)
def test_every_swift_connection_duplicity_makes_has_its_timeout(extra, outermost):
    """duplicity's backend and SwiftService made theirs without one: a Swift that never
    answered held the run for ever (patches/swift_timeout.py; end to end:
    tests/faults/test_swift_misbehaving.py). A timeout given stays."""
    import subprocess
    import sys

    from cfbackup.duplicity import launcher

    env, _ = launcher.environment({"SWIFT_AUTHVERSION": "1", "PATH": "/usr/bin:/bin", **extra})
    out = subprocess.run(
        [sys.executable, "-c", TIMEOUT_PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(None, 1) == [outermost, "[7, 7, 3]\n"], out.stdout


BOTH_PROBE = """
import json, sys

from cfbackup.duplicity import launcher  # in an upload-pool worker: applies the patches

def made():
    import swiftclient, swiftclient.client, swiftclient.service
    backend = swiftclient.Connection(authurl="http://a/auth/v1.0", user="u", key="k")
    pool = swiftclient.service.get_conn(dict(  # SwiftService's: passes retries=5 itself
        swiftclient.service._default_local_options, os_options={},
        auth="http://a/auth/v1.0", user="u", key="k",
    ))
    return [(c.timeout, c.retries) for c in (backend, pool)]

if __name__ == "__main__":  # the pool's "spawn" workers run this file again
    launcher._apply()
    from duplicity import backend, backend_pool, config, log, path

    config.timeout = 7  # what duplicity's --timeout=7 sets; a worker gets it with the config
    log.setup()
    backend.import_backends()
    pool = backend_pool.BackendPool("file://" + sys.argv[1], processes=1)
    pool.command("put_validated", args=(path.Path(sys.argv[2]), b"vol1"))  # starts the worker
    worker = pool.ppe.submit(made).result(timeout=60)
    pool.shutdown()
    print(json.dumps({"duplicity": made(), "worker": worker}))
"""


@pytest.mark.parametrize("order", ["registry", "retries-first"])
def test_every_swift_connection_duplicity_makes_has_its_timeout_and_its_retries(tmp_path, order):
    """swift-timeout and swift-retries both subclass the Connection they find: each must keep
    the other's, whichever is applied first, on the backend's Connection, SwiftService's and
    in an upload-pool worker (a spawned interpreter that applies the patches itself)."""
    import json
    import subprocess
    import sys

    from cfbackup.duplicity import launcher
    from cfbackup.duplicity.patches import swift_retries, swift_timeout

    env, _ = launcher.environment(
        {"SWIFT_AUTHVERSION": "1", "PATH": "/usr/bin:/bin", swift_retries.ENVIRONMENT: "2"}
    )
    if order == "retries-first":
        listed = env[patches.ENV].split(",")
        pair = [swift_retries.__name__, swift_timeout.__name__]
        others = [name for name in listed if name not in pair]
        env[patches.ENV] = ",".join([*(n for n in pair if n in listed), *others])
    script, target, volume = tmp_path / "probe.py", tmp_path / "target", tmp_path / "vol"
    script.write_text(BOTH_PROBE)
    target.mkdir()
    volume.write_bytes(b"v" * 1000)
    out = subprocess.run(
        [sys.executable, str(script), str(target), str(volume)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines and json.loads(lines[-1]) == {
        "duplicity": [[7, 2], [7, 2]],
        "worker": [[7, 2], [7, 2]],
    }, out.stdout + out.stderr


UPLOAD_PROBE = r"""
import io, socket, sys, threading, time
from cfbackup.duplicity.patches import swift_timeout
swift_timeout.apply({})
import swiftclient.client
from duplicity import config

config.timeout = 1.0
SIZE = 3_000_000


def serve(srv, how):
    c, _ = srv.accept()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    data = b""
    while b"\r\n\r\n" not in data:
        data += c.recv(1)
    if how == "mute":  # takes nothing more, never answers
        time.sleep(30)
        return
    got = 0
    while got < SIZE:
        chunk = c.recv(4096)
        if not chunk:
            break
        got += len(chunk)
        time.sleep(0.005)  # about 800 kB/s: the last sendall returns with MBs still buffered
    if how == "slow":
        c.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nEtag: x\r\n\r\n")
        c.close()
    else:  # "silent": took every byte, never answers
        time.sleep(30)


for how in sys.argv[1:]:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    threading.Thread(target=serve, args=(srv, how), daemon=True).start()
    url = f"http://127.0.0.1:{srv.getsockname()[1]}/v1/AUTH_t"
    conn = swiftclient.client.Connection(preauthurl=url, preauthtoken="t", retries=0)
    started = time.monotonic()
    try:
        conn.put_object("c", "o", contents=io.BytesIO(b"x" * SIZE), content_length=SIZE)
        outcome = "ok"
    except Exception as error:
        outcome = type(error).__name__
    print(how, outcome, round(time.monotonic() - started, 1), flush=True)
"""


def test_a_slow_healthy_upload_is_no_timeout_and_a_mute_swift_still_is():
    """--timeout counted from the last sendall, while the send buffer still held MBs that a
    slow uplink takes longer than that to deliver: every volume PUT of a healthy upload at
    under ~1 Mbit/s timed out (patches/swift_timeout.py). A Swift that takes nothing more, or
    takes all and never answers, still fails within about the timeout."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", UPLOAD_PROBE, "slow", "mute", "silent"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    results = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines()}
    assert results["slow"][0] == "ok", out.stdout
    for how in ("mute", "silent"):
        outcome, elapsed = results[how]
        assert outcome in ("ConnectionError", "ReadTimeout"), out.stdout  # requests' timeouts
        assert float(elapsed) < 8, out.stdout


ONCE_PROBE = r"""
import io, json, socket, threading, time
from cfbackup.duplicity.patches import swift_retries, swift_timeout
swift_timeout.apply({})
swift_retries.install(3)  # a profile's swift.retries, applied after (the registry's order)
import swiftclient.client

accepted = []


def serve(srv, how):
    while True:
        c, _ = srv.accept()
        accepted.append(c)
        if how == "body":  # headers, a first part of the body, then nothing more
            c.recv(65536)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nEtag: x\r\n\r\n" + b"y" * 1000)


def tries(how, call):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    url = f"http://127.0.0.1:{srv.getsockname()[1]}/v1/AUTH_t"
    if how == "refused":
        srv.close()
    else:
        threading.Thread(target=serve, args=(srv, how), daemon=True).start()
    conn = swiftclient.client.Connection(
        preauthurl=url, preauthtoken="t", timeout=0.5, starting_backoff=0.01
    )
    before, started = len(accepted), time.monotonic()
    try:
        call(conn)
        outcome = "ok"
    except Exception as error:
        outcome = type(error).__name__
    return [outcome, conn.attempts, len(accepted) - before, round(time.monotonic() - started, 2)]


def get(conn):
    for _ in conn.get_object("c", "o", resp_chunk_size=1024)[1]:
        pass


put = lambda conn: conn.put_object("c", "o", contents=io.BytesIO(b"x" * 1000), content_length=1000)
print(json.dumps({
    "head": tries("mute", lambda conn: conn.head_object("c", "o")),
    "put": tries("mute", put),
    "body": tries("body", get),
    "refused": tries("refused", lambda conn: conn.head_object("c", "o")),
}))
"""


def test_a_request_that_timed_out_is_not_tried_again_by_swiftclient():
    """swiftclient tried a timed-out request swift.retries times more (5 unset), each try
    waiting the whole timeout again: with duplicity's 3 attempts a mute Swift held a run about
    11 minutes (patches/swift_timeout.py; end to end: tests/faults/test_swift_misbehaving.py).
    Now one try per duplicity attempt, for a request, and for a body that stalls (no resume);
    a refused connection is still retried (swift.retries + 1 tries)."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", ONCE_PROBE], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    for what in ("head", "put", "body"):
        outcome, attempts, connections, took = seen[what]
        assert outcome in ("ReadTimeout", "ReadTimeoutError", "ConnectionError"), seen
        assert connections == 1, seen  # one request, no retry, no resume
        assert took < 1.5, seen  # one timeout (0.5 s), not 4
    outcome, attempts, _, _ = seen["refused"]
    assert outcome == "ConnectionError" and attempts == 4, seen  # swift.retries + 1
