"""split_chains: how a profile becomes chains, which chain holds a path, and how the chains'
steps run side by side (failures and results in chain order)."""

from __future__ import annotations

import threading
import time

import pytest

from cfbackup import chains
from cfbackup.actions.backup import merged_statistics
from cfbackup.config import build_config
from cfbackup.duplicity import commands
from cfbackup.errors import BackendError, ConfigError, NoBackupFound


def _profile(include, split=True, **extra):
    profile = {
        "source": "/srv",
        "target": "swift://box/host",
        "archive_dir": "/a",
        "include": include,
        "split_chains": split,
        "encryption": {"passphrase_env": "T_PASS"},
        "swift": {"auth_url": "http://k/auth/v1.0", "username": "u", "password_env": "T_KEY"},
        **extra,
    }
    return build_config({"profiles": {"p": profile}}, path=None).profiles["p"]


def test_unsplit_profile_is_one_chain_unchanged():
    profile = _profile(["/srv/a", "/srv/b"], split=False)
    (only,) = chains.of(profile)
    assert only.profile is profile and only.root == ""


def test_each_root_gets_a_target_name_and_include_of_its_own():
    profile = _profile(["/srv/www", "/srv/db/data"])
    www, db = chains.of(profile)
    assert (www.root, db.root) == ("www", "db/data")
    assert www.profile.target == f"swift://box/host/{chains.slug_of('www')}"
    assert db.profile.backup_name == f"p.{chains.slug_of('db/data')}"
    argv = commands.backup_argv(db.profile)
    assert "--include=/srv/db/data" in argv and "--include=/srv/www" not in argv
    assert argv[-2:] == ("/srv", f"swift://box/host/{chains.slug_of('db/data')}")
    assert profile["include"] == ["/srv/www", "/srv/db/data"]  # the profile itself untouched


def test_slugs_are_readable_and_do_not_collide():
    assert chains.slug_of("db/data").startswith("db-data-")
    assert chains.slug_of("db/data") != chains.slug_of("db-data")
    assert "/" not in chains.slug_of("a/b/c") and chains.slug_of("..x").startswith("x-")


@pytest.mark.parametrize(
    "include, says",
    [
        ([], "needs include roots"),
        (["/srv/a", "/srv/*.log"], "is a pattern"),
        (["/etc"], "is not under source"),
        (["/srv"], "is the whole source"),
        (["/srv/a", "/srv/a/b"], "cannot nest"),
        (["/srv/a", "/srv/a"], "listed twice"),
    ],
)
def test_roots_that_cannot_be_chains(include, says):
    with pytest.raises(ConfigError, match=says):
        chains.of(_profile(include))


def test_which_chains_hold_a_path():
    www, db = chains.of(_profile(["/srv/www", "/srv/db/data"]))
    both = [www, db]
    assert chains.for_path(both, "www/index.html") == ([www], True)
    assert chains.for_path(both, "db/data") == ([db], True)
    assert chains.for_path(both, "db") == ([db], False)  # above a root: restore the root
    assert chains.for_path(both, "") == (both, False)
    assert chains.for_path(both, "www2") == ([], False)
    assert chains.for_path(both, "dbx") == ([], False)


def test_objects_of_a_chain_from_the_target_listing():
    www, db = chains.of(_profile(["/srv/www", "/srv/db"]))
    listing = [
        {"name": f"{www.slug}/duplicity-full.T.vol1.difftar.gpg", "bytes": 5},
        {"name": f"{db.slug}/duplicity-full.T.manifest.gpg", "bytes": 1},
        {"name": "duplicity-full.T.manifest.gpg", "bytes": 2},  # an earlier unsplit chain
    ]
    assert chains.objects_of(www, listing) == [
        {"name": "duplicity-full.T.vol1.difftar.gpg", "bytes": 5}
    ]
    (only,) = chains.of(_profile(["/srv/www"], split=False))
    assert chains.objects_of(only, listing) == [listing[2]]


def test_statistics_of_chains_add_up():
    merged = merged_statistics(
        [
            {"SourceFiles": 3, "StartTime": 10.0, "EndTime": 20.0, "ElapsedTime": 10.0},
            {"SourceFiles": 4, "StartTime": 12.0, "EndTime": 25.0, "ElapsedTime": 13.0},
        ]
    )
    assert merged == {"SourceFiles": 7, "StartTime": 10.0, "EndTime": 25.0, "ElapsedTime": 13.0}


def test_run_each_runs_side_by_side_in_order_and_waits_for_every_chain():
    profile = _profile(["/srv/a", "/srv/b", "/srv/c"], parallel=3)
    running, peak, done = [], [0], []
    lock = threading.Lock()

    def step(chain):
        with lock:
            running.append(chain.root)
            peak[0] = max(peak[0], len(running))
        time.sleep(0.2)
        with lock:
            running.remove(chain.root)
            done.append(chain.root)
        if chain.root == "a":
            raise BackendError("Swift said no.")
        return chain.root.upper()

    with pytest.raises(BackendError) as caught:
        chains.run_each(profile, chains.of(profile), step)
    assert peak[0] == 3 and sorted(done) == ["a", "b", "c"]  # the others ran to their end
    assert caught.value.message == "chain /a: Swift said no. (2 other chain(s) completed)"
    assert chains.run_each(profile, chains.of(profile)[1:], step) == ["B", "C"]


def test_parallel_limits_the_processes_at_once():
    assert chains.workers(_profile(["/srv/a", "/srv/b"], parallel=1), 2) == 1
    assert chains.workers(_profile(["/srv/a", "/srv/b"], parallel=8), 2) == 2
    assert chains.workers(_profile(["/srv/a", "/srv/b"]), 2) >= 1


def test_chains_without_a_backup_yet_are_left_out_of_reads():
    profile = _profile(["/srv/a", "/srv/b"])

    def step(chain):
        if chain.root == "b":
            raise NoBackupFound("no backup found at the target.")
        return chain.root

    assert chains.run_each(profile, chains.of(profile), step, skip_empty=True) == ["a", None]
    with pytest.raises(NoBackupFound):  # without skip_empty (a backup): a failure
        chains.run_each(profile, chains.of(profile), step)

    def nothing(chain):
        raise NoBackupFound("no backup found at the target.")

    with pytest.raises(NoBackupFound, match="for any include root of profile p"):
        chains.run_each(profile, chains.of(profile), nothing, skip_empty=True)
