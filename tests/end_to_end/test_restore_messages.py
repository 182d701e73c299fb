"""What a restore's messages name: the backup a ``--time`` restored (not the --time given,
which may be later than every backup or fall between two), and the path ``--path`` gave that
the backup does not hold, with the path it likely means."""

from __future__ import annotations

import calendar
import re
import shlex
import shutil
import time

import pytest
from support import proxylog

pytestmark = pytest.mark.swift  # make_config's fixtures; the profile's target is a file:// URL


@pytest.fixture
def two_backups(tmp_path, make_config, cfbackup):
    """A full backup, then an incremental (log.txt changed): their times, as restore names
    them."""
    src = tmp_path / "src"
    (src / "etc" / "nginx").mkdir(parents=True)
    (src / "etc" / "nginx" / "nginx.conf").write_text("conf\n")
    (src / "log.txt").write_text("first\n")
    config = make_config(
        source=src, target=f"file://{tmp_path}/backups", encryption='mode = "none"'
    )
    times = []
    for text in ("first\n", "second\n"):
        (src / "log.txt").write_text(text)
        result = cfbackup("-c", config, "backup")
        assert result.returncode == 0, result
        listed = sorted((tmp_path / "backups").glob("*.manifest"))
        stamp = re.search(r"(\d{8}T\d{6}Z)\.manifest$", listed[-1].name)[1]
        times.append(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
        time.sleep(2.1)  # >= 2 s apart: the test restores at a --time 1 s after the first
    return config, [time.strftime("%Y-%m-%d %H:%M:%S UTC", t) for t in times]


def test_a_restore_at_a_time_names_the_backup_it_restored(tmp_path, cfbackup, two_backups):
    """Before: "restored ... as of 2099-01-01", a time later than any backup, also in the run
    history. duplicity restores the newest backup at or before --time: the message names it,
    for a --time after every backup and for one between two."""
    config, (first, second) = two_backups
    seconds = calendar.timegm(time.strptime(first, "%Y-%m-%d %H:%M:%S UTC"))
    between = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds + 1))  # before the second
    for when, backup, content in (("2099-01-01", second, "second\n"), (between, first, "first\n")):
        into = tmp_path / f"r-{content.strip()}"
        result = cfbackup("-c", config, "restore", "main", into, "--path", "log.txt",
                          "--time", when)  # fmt: skip
        assert result.returncode == 0, result
        said = f"from the backup of {backup} (the newest at or before --time {when})"
        assert said in result.stdout and "as of" not in result.stdout, result.stdout
        assert (into / "log.txt").read_text() == content
        history = cfbackup("-c", config, "history", "main", "--limit", "1")
        assert said in history.stdout, history.stdout


def test_a_path_not_in_the_backup_is_named_with_the_path_meant(tmp_path, cfbackup, two_backups):
    """Before: "the path to restore is not in that backup: check it with cfbackup -c FILE list
    main", naming no path."""
    config, _ = two_backups
    into = tmp_path / "r"
    for given, meant in (
        ("etc/Nginx", "etc/nginx"),
        ("etc/ngnix/nginx.conf", "etc/nginx/nginx.conf"),
        ("etc/nginx/nginx.cnf", "etc/nginx/nginx.conf"),
        ("nothing/like/it", None),
    ):
        result = cfbackup("-c", config, "restore", "main", into, "--path", given)
        assert result.returncode == 5, result
        assert f"error: {given} is not in the backup of profile main: " in result.stderr, result
        if meant:
            assert (
                f"did you mean {meant} (cfbackup -c {config} restore main {into} --path {meant})?"
                in result.stderr
            ), result.stderr
        else:
            assert "did you mean" not in result.stderr, result.stderr
        assert result.stderr.rstrip().endswith(f"cfbackup -c {config} list main."), result
        assert not into.exists()


def _volume_gets(requests) -> list[str]:
    """The volumes downloaded (not the listings that name one as their marker)."""
    return [p for m, p, _s in requests if m == "GET" and ".difftar" in p and "%3F" not in p]


def test_a_path_the_local_signatures_lack_is_refused_before_any_volume_downloads(
    tmp_path, make_config, cfbackup, local_swift
):
    """Before: duplicity downloaded a volume (20 MB over a WAN, seconds) before it said the
    path was not there. When duplicity's archive dir holds the signatures of the very backups
    the target's chain at --time has, they say for certain: the restore refuses before any
    volume is read, with the same message. A path only a backup the archive dir has not seen
    holds is restored; with no local signatures (a new machine) the restore asks duplicity."""
    src = tmp_path / "src"
    (src / "etc" / "nginx").mkdir(parents=True)
    (src / "etc" / "nginx" / "nginx.conf").write_text("conf\n")
    config = make_config(source=src)
    assert cfbackup("-c", config, "backup").returncode == 0
    into = tmp_path / "r"
    for given, meant in (("etc/Nginx", "etc/nginx"), ("nothing/like/it", None)):
        skip = proxylog.length(local_swift)
        result = cfbackup("-c", config, "restore", "main", into, "--path", given)
        requests = proxylog.requests_since(local_swift, skip)
        assert result.returncode == 5, result
        assert f"error: {given} is not in the backup of profile main: " in result.stderr, result
        assert ("did you mean" in result.stderr) == bool(meant), result.stderr
        assert result.stderr.rstrip().endswith(f"cfbackup -c {config} list main."), result
        assert _volume_gets(requests) == [], requests
        assert not into.exists()

    # a backup made elsewhere (the archive dir is put back as it was): the local signatures
    # no longer describe the target's chain, so they decide nothing
    archive = tmp_path / "archive"
    kept = tmp_path / "archive-before"
    shutil.copytree(archive, kept)
    time.sleep(1.1)  # duplicity's times have one-second resolution
    (src / "etc" / "added.conf").write_text("new\n")
    assert cfbackup("-c", config, "backup").returncode == 0
    shutil.rmtree(archive)
    shutil.copytree(kept, archive)
    result = cfbackup("-c", config, "restore", "main", into, "--path", "etc/added.conf")
    assert result.returncode == 0, result
    assert (into / "etc" / "added.conf").read_text() == "new\n"

    # a restore syncs manifests, not signatures: the archive dir still lacks the incremental's,
    # so it is certain at a --time before the incremental (which etc/added.conf is not in),
    # and not now (duplicity is asked); a backup here brings the signatures, and certainty
    stamp = re.search(r"full-signatures\.(\w+)\.", str(next(archive.rglob("*full-sig*"))))[1]
    first = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    for given, when, certain in (
        ("etc/added.conf", ("--time", first), True),
        ("etc/Nginx", ("--time", first), True),
        ("etc/Nginx", (), False),
        ("etc/Nginx", (), True),
    ):
        if certain and not when:
            assert cfbackup("-c", config, "backup").returncode == 0
        skip = proxylog.length(local_swift)
        result = cfbackup("-c", config, "restore", "main", tmp_path / "r1", "--path", given,
                          *when)  # fmt: skip
        assert result.returncode == 5, result
        assert f"error: {given} is not in the backup of profile main" in result.stderr, result
        read = _volume_gets(proxylog.requests_since(local_swift, skip))
        assert (read == []) == certain, (given, when, read)

    # a new machine: no local signatures, so duplicity is asked, as before
    shutil.rmtree(archive)
    skip = proxylog.length(local_swift)
    result = cfbackup("-c", config, "restore", "main", tmp_path / "r2", "--path", "etc/Nginx")
    assert result.returncode == 5, result
    assert "error: etc/Nginx is not in the backup of profile main: " in result.stderr, result
    assert _volume_gets(proxylog.requests_since(local_swift, skip)), "duplicity read a volume"


def test_a_prefixed_profile_refuses_a_missing_path_before_any_volume_downloads(
    tmp_path, make_config, cfbackup, local_swift
):
    """The archive dir's signatures and the target's sets are read with the profile's file
    prefixes (``--file-prefix*``), with prefetch on: still certain, still no volume read."""
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    extra = (
        'restore_prefetch = 2\nextra_options = ["--file-prefix=host1-", '
        '"--file-prefix-manifest=m_", "--file-prefix-signature", "s_"]\n'
    )
    config = make_config(source=src, extra=extra)
    assert cfbackup("-c", config, "backup").returncode == 0
    time.sleep(1.1)
    (src / "etc" / "hosts").write_text("changed\n")
    assert cfbackup("-c", config, "backup").returncode == 0  # a full and an incremental
    skip = proxylog.length(local_swift)
    result = cfbackup("-c", config, "restore", "main", tmp_path / "r", "--path", "etc/host")
    assert result.returncode == 5, result
    assert "did you mean etc/hosts" in result.stderr, result.stderr
    assert _volume_gets(proxylog.requests_since(local_swift, skip)) == []
    result = cfbackup("-c", config, "restore", "main", tmp_path / "r", "--path", "etc/hosts")
    assert result.returncode == 0, result
    assert (tmp_path / "r" / "etc" / "hosts").read_text() == "changed\n"


def test_a_suggested_path_that_starts_with_a_dash_runs_as_printed(tmp_path, make_config, cfbackup):
    """Before: ``did you mean -notes.txt (cfbackup ... restore main R --path -notes.txt)?``,
    which argparse refuses (``--path: expected one argument``, exit 2): the suggestion joins
    such a path to its option, ``--path=-notes.txt``, as docs/runbook-restore.md tells users
    to type it. The command printed is run as printed."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "-notes.txt").write_text("notes\n")
    config = make_config(
        source=src, target=f"file://{tmp_path}/backups", encryption='mode = "none"'
    )
    assert cfbackup("-c", config, "backup").returncode == 0
    into = tmp_path / "r"
    result = cfbackup("-c", config, "restore", "main", into, "--path=-ntoes.txt")
    assert result.returncode == 5, result
    printed = re.search(r"did you mean -notes\.txt \((cfbackup [^)]*)\)\?", result.stderr)
    assert printed, result.stderr
    assert printed[1].endswith(f"restore main {into} --path=-notes.txt"), printed[1]
    again = cfbackup(*shlex.split(printed[1])[1:])
    assert again.returncode == 0, again
    assert (into / "-notes.txt").read_text() == "notes\n"


def test_a_path_deleted_since_an_earlier_backup_is_named_with_the_restore_that_has_it(
    tmp_path, make_config, cfbackup
):
    """The incident's own case: a file deleted (or renamed) before the last backup. Before:
    "-old.conf is not in the backup of profile main: check the path against cfbackup list
    main", and that list (the newest backup) does not have it either. When the archive dir's
    signatures (a list on a new machine fetches them, as docs/runbook-restore.md's step 2
    runs it) show an earlier backup holding it, the message names that backup and the restore
    that takes it, which runs as printed."""
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "-old.conf").write_text("kept\n")
    config = make_config(
        source=src, target=f"file://{tmp_path}/backups", encryption='mode = "none"'
    )
    assert cfbackup("-c", config, "backup").returncode == 0
    full = re.search(r"full\.(\w+)\.manifest", str(next((tmp_path / "backups").glob("*.manifest"))))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.strptime(full[1], "%Y%m%dT%H%M%SZ"))
    time.sleep(1.1)
    (src / "etc" / "-old.conf").unlink()
    assert cfbackup("-c", config, "backup").returncode == 0

    shutil.rmtree(tmp_path / "archive")  # a new machine
    assert cfbackup("-c", config, "list", "main").returncode == 0  # the runbook's step 2
    into = tmp_path / "r"
    result = cfbackup("-c", config, "restore", "main", into, "--path=etc/-old.conf")
    assert result.returncode == 5, result
    printed = re.search(r"restore it from there with (cfbackup .*)\.$", result.stderr.strip())
    assert printed, result.stderr
    assert (
        f"etc/-old.conf is not in the backup of profile main, but the backup of "
        f"{stamp.replace('T', ' ').replace('Z', ' UTC')} holds it" in result.stderr
    ), result.stderr
    assert printed[1] == (
        f"cfbackup -c {config} restore main {into} --path etc/-old.conf --time {stamp}"
    ), printed[1]
    assert not into.exists()
    again = cfbackup(*shlex.split(printed[1])[1:])
    assert again.returncode == 0, again
    assert (into / "etc" / "-old.conf").read_text() == "kept\n"
