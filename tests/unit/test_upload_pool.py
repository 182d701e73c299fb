"""The upload-pool patch (cfbackup/duplicity/patches/upload_pool.py) on duplicity's real
BackendPool: its worker processes, a real upload through duplicity's file backend, and the wait
``dup_main`` does at the end of a backup. The orphan half (workers die with duplicity) is in
tests/faults/test_kill.py; whole backups (workers only for a set with a second volume) in
tests/end_to_end/test_upload_workers.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cfbackup.duplicity import machinelog

SCRIPT = """
import glob, os, sys, time

def children():
    return sum(len(open(f).read().split()) for f in glob.glob("/proc/self/task/*/children"))

def main():
    if sys.argv[1] == "patched":
        from cfbackup.duplicity import patches

        patches.apply(["cfbackup.duplicity.patches.upload_pool"], os.environ)
    from duplicity import backend, backend_pool, dup_main, log, path

    log.setup()
    backend.import_backends()
    url = "file://" + sys.argv[2]
    pool = backend_pool.BackendPool(url, processes=1)
    time.sleep(0.3)  # what the pool started at once is under way
    created = children()
    pool.command("put_validated", args=(path.Path(sys.argv[3]), b"vol1"))
    started = len(pool.ppe._processes)
    t = time.monotonic()
    dup_main.time.sleep(float(sys.argv[4]))  # what dup_main does while uploads are left (2 s)
    slept = time.monotonic() - t
    sizes = [r.result for r in pool.results_since_last_call()]
    pool.shutdown()
    print(created, started, round(slept, 2), sizes)

if __name__ == "__main__":  # the pool's "spawn" workers run this file again
    main()
"""


# patched, the sleep asked for is long: it ends with the upload, however long the worker's start
# takes on a loaded machine (a 2 s bound failed at 3.0 s there), or it runs out and fails
SLEEP = {"plain": "3", "patched": "30"}


@pytest.mark.parametrize("mode", ["plain", "patched"])
def test_the_pool_starts_its_workers_for_an_upload_and_the_wait_ends_with_it(tmp_path, mode):
    """Patched, a new pool starts no process (the worker and multiprocessing's resource
    tracker wait for an upload); its first upload (here: not known to be a set's only one)
    starts its worker at once."""
    script, target, volume = tmp_path / "pool.py", tmp_path / "target", tmp_path / "vol"
    script.write_text(SCRIPT)
    target.mkdir()
    volume.write_bytes(b"v" * 300_000)
    done = subprocess.run(
        [sys.executable, str(script), mode, str(target), str(volume), SLEEP[mode]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    created, started, slept, sizes = done.stdout.strip().split(maxsplit=3)
    assert (target / "vol1").stat().st_size == 300_000
    if mode == "plain":  # duplicity 3.2.1 as it is: what the patch is for
        assert created == "1", done.stdout  # the resource tracker, in every pool
        assert (started, float(slept)) == ("1", pytest.approx(3, abs=0.5)), done.stdout
    else:
        assert created == "0" and started == "1", done.stdout
        assert float(slept) < 25 and sizes == "[300000]", done.stdout


FAILING = """
import json, os, sys, time

from cfbackup.duplicity import patches

if patches.in_pool_worker():  # what the launcher does in a worker (launcher.py)
    patches.apply(["cfbackup.duplicity.patches.upload_pool"], os.environ)

def main():
    patches.apply(["cfbackup.duplicity.patches.upload_pool"], os.environ)
    from duplicity import backend, backend_pool, config, log, path

    log.setup()
    config.num_retries = 2
    config.backend_retry_delay = 0
    read, write = os.pipe()
    log.add_fd(write)  # what --log-fd does
    backend.import_backends()
    pool = backend_pool.BackendPool("file://" + sys.argv[1], processes=1)
    try:  # plain duplicity's command() waits 0.1 s for finished uploads: it may raise here
        pool.command("put_validated", args=(path.Path(sys.argv[2]), b"vol1"))
        while not pool._command_queue[0].done():
            time.sleep(0.05)
        pool.command("put_validated", args=(path.Path(sys.argv[2]), b"vol2"))
    except Exception as error:  # both raise it: patched, before vol2 is handed over
        second = f"{type(error).__name__} after {pool._track_id} upload(s) handed over"
    pool.shutdown()
    os.set_blocking(read, False)
    print("RESULT", json.dumps([second, os.read(read, 1 << 20).decode()]))

if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize("mode", ["plain", "patched"])
def test_a_failed_upload_stops_the_next_and_its_retries_reach_the_log(tmp_path, mode):
    """A worker's upload that fails for good (a target that is not a directory): patched, its
    retries and its last error reach duplicity's ``--log-fd`` (where cfbackup reads them as
    they happen), and the next volume is not handed over (it would run its own retries first).
    Plain duplicity 3.2.1 shows both faults."""
    script, target, volume = tmp_path / "pool.py", tmp_path / "target", tmp_path / "vol"
    script.write_text(
        FAILING if mode == "patched" else FAILING.replace("patches.apply", "(lambda *_: None)")
    )
    target.write_text("a file where the target directory should be")
    volume.write_bytes(b"v" * 1000)
    done = subprocess.run(
        [sys.executable, str(script), str(target), str(volume)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert result, done.stdout + done.stderr
    second, machine_log = json.loads(result[0].removeprefix("RESULT "))
    if mode == "plain":  # vol2 handed over, unless its 0.1 s wait for vol1 saw the failure
        assert second in (  # (a loaded machine: CI run 5)
            "FatalError after 2 upload(s) handed over",
            "FatalError after 1 upload(s) handed over",
        ), done.stdout
        assert "Pool1: Attempt" not in machine_log, done.stdout
    else:
        assert second == "FatalError after 1 upload(s) handed over", done.stdout
        parser = machinelog.MachineLogParser()
        records = [r for line in machine_log.splitlines(keepends=True) if (r := parser.feed(line))]
        from_worker = [(r.level, r.worker, r.message.split(".")[0]) for r in records if r.worker]
        assert from_worker == [  # each once: as cfbackup reads them, as they happen
            ("WARNING", "Pool1", "Attempt of put Nr"),
            ("ERROR", "Pool1", "Giving up after 2 attempts"),
        ], machine_log


HELD = """
import os, sys

def main():
    if sys.argv[1] == "patched":
        from cfbackup.duplicity import patches

        patches.apply(["cfbackup.duplicity.patches.upload_pool"], os.environ)
    from duplicity import backend, backend_pool, dup_main, log, path

    log.setup()
    backend.import_backends()
    target = sys.argv[2]
    pool = backend_pool.BackendPool("file://" + target, processes=1)
    track_id = pool.command_throttled("put_validated", args=(path.Path(sys.argv[3]), b"vol1"))
    # the one worker runs its tasks in order: this returns after anything handed over before
    pool.ppe.submit(os.getpid).result(timeout=60)
    uploaded_before_recorded = os.path.exists(os.path.join(target, "vol1"))
    left = pool.get_queue_length()  # dup_main asks this once the set's volumes are recorded
    while pool.get_queue_length() and not pool._command_queue[0].done():
        dup_main.time.sleep(0.1)  # dup_main's wait for what is left (2 s there)
    records = [(r.track_id, r.result) for r in pool.results_since_last_call()]
    pool.shutdown()
    print(track_id, uploaded_before_recorded, left, records)

if __name__ == "__main__":  # the pool's "spawn" workers run this file again
    main()
"""


@pytest.mark.parametrize("mode", ["plain", "patched"])
def test_a_volume_is_handed_over_only_after_duplicity_could_record_the_one_before(tmp_path, mode):
    """dup_main hands volume N to the pool, then records N-1 in its manifest: an upload of N
    that ended first put the target two volumes ahead of the manifest, and a kill then made the
    next run start the set again ("Impossible backup state"). Patched, the volume is held
    until duplicity goes on (here: asks what is left), then uploaded under the same track id."""
    script, target, volume = tmp_path / "pool.py", tmp_path / "target", tmp_path / "vol"
    script.write_text(HELD)
    target.mkdir()
    volume.write_bytes(b"v" * 200_000)
    done = subprocess.run(
        [sys.executable, str(script), mode, str(target), str(volume), SLEEP[mode]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    held = "False" if mode == "patched" else "True"  # plain duplicity: uploaded at once
    track, uploaded, left, *records = done.stdout.split()
    assert [track, uploaded, *records] == ["1", held, "[(1,", "200000)]"], done.stdout
    if mode == "patched":  # still queued when duplicity asks; plain duplicity's own pool may
        assert left == "1", done.stdout  # have collected the finished upload already (its
        # command() waits 0.1 s for finished ones: a loaded machine let that wait see it done)
    assert (target / "vol1").stat().st_size == 200_000
