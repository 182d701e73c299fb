"""Checks that prove the backups restore, against a real Swift, gpg and duplicity: volumes
damaged behind cfbackup's back are named by ``verify --read-data`` (all, and a covering
sequence of n/t slices) and make ``drill`` fail on exactly the files that need them; a source
file changed after the backup is no mismatch; a file changed inside a volume that still
decrypts and matches its manifest is caught by the drill; ``--max-duration`` stops a drill in
time; Ctrl-C leaves no scratch folder behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import signal
import subprocess
import tarfile
import textwrap
import time
from collections import Counter

import gnupg
import pytest
from faultkit import error_line, wait_for, write_tree
from support.cli import PASSPHRASE
from support.forward_proxy import STALL, ForwardProxy

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.faults, pytest.mark.swift]


def _tree(root):
    """write_tree's awkward names and 3 MB file, 24 smaller files before it in duplicity's
    order, and an editor's autosave whose name a restore list cannot hold (its own restore):
    about 5 volumes of 1 MB."""
    write_tree(root, mb=3)
    many = root / "data" / "many"
    many.mkdir()
    rng = random.Random(5)
    for i in range(24):
        (many / f"part-{i:02d}.bin").write_bytes(rng.randbytes(rng.randint(10_000, 60_000)))
    (root / "#draft.txt#").write_text("an editor's autosave\n")
    return root


def _by_number(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: int(re.search(r"\.vol(\d+)\.", n)[1]))


def _drill(setup, *args):
    result = setup.run("cli", "drill", setup.profile, "--json", *args)
    return result, json.loads(result.stdout)


def test_damaged_volumes_are_named_by_read_data_and_drill(make_setup, webhook, tmp_path):
    prom = tmp_path / "cfbackup.prom"
    setup = make_setup(
        notify_url=webhook.url,
        extra=textwrap.dedent(f"""
            [profiles.main.notify]
            actions = ["backup", "drill", "verify"]
            metrics_file = "{prom}"
            """),
        # the count below needs the bytes as they are: on a loaded machine the round trip
        # "auto" measures reads as a distant Swift's and level 1 made 4 volumes (seen in CI)
        encryption='passphrase_env = "T_PASSPHRASE"\ncompress_level = 0',
    )
    _tree(setup.source)
    assert setup.run("backup").returncode == 0
    full = _by_number(setup.volumes("full"))
    assert len(full) >= 5, full

    result = setup.run("cli", "verify", "main", "--read-data")
    assert result.returncode == 0, result
    assert f"{len(full)} of {len(full)} volume(s) (all volumes" in result.stdout

    # a source file changed after the backup is compared with what the backup recorded
    (setup.source / "plain.txt").write_text("changed after the backup\n")
    result, report = _drill(setup, "--sample", "100%")
    assert result.returncode == 0, result
    files = {f["path"]: f for f in report["files"]}
    assert len(files) == report["stats"]["files_checked"] >= 35
    assert {f["status"] for f in files.values()} == {"match"}
    assert files["plain.txt"]["reference"] == "signature"
    assert files["data/random-1.bin"]["reference"] == "source"
    assert files["link to plain"]["reference"] == "link target"
    assert files["#draft.txt#"]["reference"] == "source"
    assert report["stats"]["restores"] >= 2  # the autosave cannot be in a restore list

    # one volume overwritten with garbage, one deleted, behind cfbackup's back
    garbage, gone = full[1], full[3]
    conn = setup.connection()
    size = len(conn.get_object(setup.container, garbage)[1])
    conn.put_object(setup.container, garbage, os.urandom(size))
    conn.delete_object(setup.container, gone)

    result = setup.run("cli", "verify", "main", "--read-data")
    assert result.returncode == ExitCode.VERIFY_DIFFERENCES, result
    line = error_line(result)
    assert f"{garbage} (volume 2 of the full backup of " in line
    assert "is corrupt (its SHA1 differs from the one in the manifest)" in line
    assert f"{gone} (volume 4 of the full backup of " in line and "is missing at the target" in line
    # three slices read each volume once, and name each bad one once
    named = Counter()
    for n in (1, 2, 3):
        result = setup.run("cli", "verify", "main", f"--read-data={n}/3")
        assert result.returncode in (0, ExitCode.VERIFY_DIFFERENCES), result
        named.update(name for name in (garbage, gone) if name in result.stderr)
    assert named == {garbage: 1, gone: 1}
    slices = [r for r in setup.history() if r["stats"].get("slice")]
    assert sorted(r["stats"]["slice"] for r in slices) == ["1/3", "2/3", "3/3"]
    assert sum(r["stats"]["volumes_checked"] for r in slices) == len(full)

    result, report = _drill(setup, "--sample", "100%")
    assert result.returncode == ExitCode.VERIFY_DIFFERENCES, result
    failed = {f["path"]: f["reason"] for f in report["files"] if f["status"] == "failed"}
    matched = [f["path"] for f in report["files"] if f["status"] == "match"]
    assert failed and matched and report["stats"]["mismatches"] == 0
    assert all(garbage in why or gone in why for why in failed.values()), failed
    assert any(garbage in why for why in failed.values())
    assert any(gone in why for why in failed.values())
    assert "data/random-1.bin" in failed  # 3 MB over volumes 1-4
    assert "cannot be restored" in report["message"]
    # the commands it suggests run as printed: with the config file this drill was given
    assert f"cfbackup -c {setup.config} verify main --read-data names" in report["message"]
    assert f"cfbackup -c {setup.config} backup main --full starts" in report["message"]
    # duplicity agrees, file by file
    for path, code in ((sorted(failed)[-1], ExitCode.DUPLICITY), (matched[0], ExitCode.OK)):
        restored = setup.run("restore", tmp_path / f"restored-{int(code)}", "--path", path)
        assert restored.returncode == code, restored

    drills = [r for r in setup.history() if r["action"] == "drill"]
    assert [r["exit_code"] for r in drills] == [8, 0]
    assert drills[0]["stats"]["failures"] == len(failed)
    assert drills[0]["stats"]["seed"] != drills[1]["stats"]["seed"]
    text = prom.read_text()
    assert f'cfbackup_drill_mismatches{{profile="main"}} {len(failed)}\n' in text
    assert 'cfbackup_drill_last_success_timestamp{profile="main"} ' in text  # the first drill
    assert 'cfbackup_verify_bad_volumes{profile="main"} ' in text
    assert ("drill", 8) in webhook.failures() and ("verify", 8) in webhook.failures()
    posted = [p for p in webhook.posts if p["action"] == "drill"][-1]
    assert posted["stats"]["problems"][0]["status"] == "failed"


def test_a_file_changed_inside_a_volume_that_still_decrypts(make_setup, attacker_gnupg):
    """The attack (or bug) a volume hash cannot see: a volume decrypted, one file's bytes
    changed, encrypted again with the same passphrase, and the manifest's hash updated to
    match. verify --read-data passes (the volume is what the manifest says); the drill, which
    compares restored bytes, names the file."""
    setup = make_setup()
    _tree(setup.source)
    (setup.source / "data" / "ledger.txt").write_text("balance: 1000\n" * 400)
    assert setup.run("backup").returncode == 0
    gpg = gnupg.GPG(gnupghome=str(attacker_gnupg))
    conn = setup.connection()

    def decrypt(name: str) -> bytes:
        result = gpg.decrypt(conn.get_object(setup.container, name)[1], **_gpg_args())
        assert result.ok, result.status
        return result.data

    def encrypt(data: bytes) -> bytes:
        result = gpg.encrypt(data, None, symmetric="AES256", armor=False, **_gpg_args())
        assert result.ok, result.status
        return result.data

    for name in _by_number(setup.volumes("full")):
        plain = decrypt(name)
        member = _member(plain, "snapshot/data/ledger.txt")
        if member is not None:
            break
    else:
        pytest.fail("no volume holds data/ledger.txt")
    data = bytearray(plain)
    start = member.offset_data + 9
    data[start : start + 4] = b"9999"  # "balance: 9999": the same size, still a valid tar
    volume = encrypt(bytes(data))
    conn.put_object(setup.container, name, volume)
    manifest_name = name[: name.index(".vol")] + ".manifest.gpg"
    manifest = decrypt(manifest_name)
    number = int(re.search(r"\.vol(\d+)\.", name)[1])
    old = re.search(rb"Volume %d:\n(?:.*\n)*?\s+Hash SHA1 ([0-9a-f]{40})" % number, manifest)[1]
    manifest = manifest.replace(old, hashlib.sha1(volume).hexdigest().encode())
    conn.put_object(setup.container, manifest_name, encrypt(manifest))

    result = setup.run("cli", "verify", "main", "--read-data")
    assert result.returncode == 0, result  # the volume is what the manifest says
    result, report = _drill(setup, "--sample", "100%")
    assert result.returncode == ExitCode.VERIFY_DIFFERENCES, result
    mismatches = [f for f in report["files"] if f["status"] == "mismatch"]
    assert [f["path"] for f in mismatches] == ["data/ledger.txt"], report["files"]
    assert "differ from what the backup read" in mismatches[0]["reason"]
    assert report["stats"]["failures"] == 0
    assert report["stats"]["matches"] == len(report["files"]) - 1


def test_max_duration_stops_in_time_and_ctrl_c_leaves_nothing(make_setup, tmp_path):
    setup = make_setup()
    _tree(setup.source)
    for i in range(6):  # each its own restore: a drill of several steps
        (setup.source / f"#autosave-{i}#").write_text(f"draft {i}\n")
    assert setup.run("backup").returncode == 0
    scratch = setup.state_dir / "drill"

    started = time.monotonic()
    result, report = _drill(setup, "--sample", "100%", "--max-duration", "4s")
    elapsed = time.monotonic() - started
    assert elapsed < 4 + 40, elapsed  # stopping duplicity (SIGINT, then harder) and cleaning up
    stats = report["stats"]
    assert stats["stopped_at_max_duration"] is True
    assert stats["files_checked"] < stats["files_sampled"]
    skipped = [f for f in report["files"] if f["status"] == "skipped"]
    assert skipped and all("max-duration reached" in f["reason"] for f in skipped)
    if stats["files_checked"]:
        assert result.returncode == 0, result
        assert f"{stats['files_checked']} of {stats['files_sampled']} files checked" in (
            report["message"]
        )
    else:  # this machine was too busy to finish a single restore in 4 s
        assert result.returncode == ExitCode.PARTIAL, result
        assert "checked no file before --max-duration 4s ran out" in report["message"]
    assert "stopped at --max-duration 4s" in report["message"]
    assert not list(scratch.iterdir())

    # Ctrl-C in the middle of the restores: exit 130, no scratch folder, no duplicity left
    run = setup.spawn("cli", "drill", setup.profile, "--sample", "100%")
    wait_for(lambda: list(scratch.glob("*/restored/*")), 120, "a restore in progress", step=0.05)
    os.killpg(run.pid, signal.SIGINT)
    assert run.wait(60) == ExitCode.INTERRUPTED, run.output()
    assert not list(scratch.iterdir())
    assert setup.history()[0]["result"] == "interrupted"


def test_max_duration_ends_downloads_stalled_on_a_mute_swift(make_setup):
    """A drill whose volume downloads Swift takes and never answers ran past --max-duration:
    its timer set the fetch's stop, which the downloads only look at between chunks, so each
    ran on for swiftclient's timeout (30 s) and retries. One try here (swift.retries = 0,
    --num-retries=1): it ended about 30 s after the deadline; now within a few seconds."""
    setup = make_setup(extra='extra_options = ["--num-retries=1"]\n', swift_options="retries = 0\n")
    _tree(setup.source)
    assert setup.run("backup").returncode == 0
    scratch = setup.state_dir / "drill"
    stalled: list[float] = []

    def stall(method, path, headers, seen):
        if method == "GET" and ".difftar." in path:
            stalled.append(time.monotonic())
            return STALL
        return None

    with ForwardProxy(fault_when=stall) as proxy:
        started = time.monotonic()
        drill = ("drill", setup.profile, "--json", "--sample", "100%", "--max-duration", "6s")
        result = setup.run("cli", *drill, env=proxy.env, timeout=120)
        elapsed = time.monotonic() - started
    assert stalled, "no volume download reached the mute Swift"
    report = json.loads(result.stdout)
    assert result.returncode == ExitCode.PARTIAL, result  # checked no file in its time
    assert report["stats"]["stopped_at_max_duration"] is True
    assert "checked no file before --max-duration 6s ran out" in report["message"]
    assert elapsed < 6 + 8, f"the drill ended {elapsed:.1f} s after it started (max 6 s)"
    assert not list(scratch.iterdir())


def test_max_duration_ends_a_manifest_download_stalled_on_a_mute_swift(make_setup):
    """The drill's manifest (and signature) downloads ran with a stop event of their own,
    which nothing set: one Swift took and never answered ran past --max-duration for
    cfbackup's timeout (30 s), then failed as Swift unreachable. Now the drill's stop aborts
    it, and the drill ends as stopped at its max duration."""
    setup = make_setup(extra='extra_options = ["--num-retries=1"]\n', swift_options="retries = 0\n")
    _tree(setup.source)
    assert setup.run("backup").returncode == 0
    scratch = setup.state_dir / "drill"
    stalled: list[float] = []

    def stall(method, path, headers, seen):
        if method == "GET" and ".manifest" in path:
            stalled.append(time.monotonic())
            return STALL
        return None

    with ForwardProxy(fault_when=stall) as proxy:
        started = time.monotonic()
        drill = ("drill", setup.profile, "--json", "--sample", "100%", "--max-duration", "6s")
        result = setup.run("cli", *drill, env=proxy.env, timeout=120)
        elapsed = time.monotonic() - started
    assert stalled, "no manifest download reached the mute Swift"
    assert elapsed < 6 + 8, f"the drill ended {elapsed:.1f} s after it started (max 6 s)"
    assert result.returncode == ExitCode.PARTIAL, result  # checked no file in its time
    report = json.loads(result.stdout)
    assert report["stats"]["stopped_at_max_duration"] is True
    assert "checked no file before --max-duration 6s ran out" in report["message"]
    assert not list(scratch.iterdir())


@pytest.fixture
def attacker_gnupg(tmp_path):
    """The attacker's GnuPG home; its gpg-agent (which gpg starts on first use and leaves
    running) is stopped after the test."""
    home = tmp_path / "attacker-gnupg"
    home.mkdir(mode=0o700)
    (home / "gpg-agent.conf").write_text("allow-loopback-pinentry\n")
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)


def _gpg_args() -> dict:
    return {"passphrase": PASSPHRASE, "extra_args": ["--pinentry-mode", "loopback"]}


def _member(tar_bytes: bytes, name: str):
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as archive:
        for member in archive:
            if member.name == name:
                return member
    return None


def test_a_swift_outage_mid_read_data_is_tried_again(make_setup, tmp_path):
    """``verify --read-data`` downloads volumes itself: one that fails on Swift (its proxy
    stopped once the first volume is in) is announced and tried again as the profile's duplicity
    options say; with Swift back, every volume is checked and the run passes."""
    setup = make_setup(extra='extra_options = ["--num-retries=3", "--backend-retry-delay=2"]\n')
    write_tree(setup.source, mb=16)  # about 17 volumes, fetched 4 at a time
    assert setup.run("backup").returncode == 0
    logs = setup.state_dir / "logs"

    def verify_log() -> str:
        found = sorted(logs.glob("*-verify-*.log"), key=os.path.getmtime)
        return found[-1].read_text() if found else ""

    run = setup.spawn("cli", "verify", "main", "--read-data")
    wait_for(lambda: ": intact (" in verify_log() or run.process.poll() is not None,
             timeout=120, what="the first volume checked", step=0.01)
    try:
        with run.frozen():  # the downloads not yet begun meet a stopped proxy
            setup.swift.stop_proxy()
        wait_for(lambda: re.search(r"verify: fetching \S+ failed, trying again in 2 s \(try 2 of "
                                   r"3\): cannot reach Swift", run.out.read_text()),
                 timeout=90, what="a download to be tried again")
    finally:
        setup.swift.start_proxy()
    assert run.wait() == 0, run.output()
    checked = re.search(r"(\d+) of (\d+) volume\(s\)", run.output())
    assert checked and checked[1] == checked[2] and int(checked[1]) > 10, run.output()
