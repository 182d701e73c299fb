"""restore, verify (--read-data too), list, prune and cleanup log in to Swift once and list the
target once for all their checks before duplicity (``actions/common.target_view``), as backups
do: against a Swift 20-80 ms away each login and listing more is round trips before the restore
starts. Counted in the real local Swift's proxy log. A duplicity command that deletes drops the
listing, so no check reads one older than the deletes."""

from __future__ import annotations

import time
from urllib.parse import unquote

import pytest
from support import proxylog
from support.trees import make_awkward_tree

from cfbackup import chains, plugins, stores
from cfbackup.actions import common
from cfbackup.cli.context import CliContext
from cfbackup.config import load_config
from cfbackup.duplicity import commands
from cfbackup.runtypes import Run

pytestmark = pytest.mark.swift


def _requests(cfbackup, local_swift, *args) -> list[tuple[str, str, int]]:
    skip = proxylog.length(local_swift)
    result = cfbackup(*args)
    assert result.returncode == 0, result
    return [(m, unquote(unquote(p)), s) for m, p, s in proxylog.requests_since(local_swift, skip)]


def _auths(requests) -> int:
    return sum(1 for _m, path, _s in requests if path.startswith("/auth/"))


def _listings(requests) -> list[str]:
    """cfbackup's listings of the target (its ``prefix=``; duplicity's own ask ``path=``)."""
    return [p for m, p, _s in requests if m == "GET" and "format=json" in p and "prefix=" in p]


def _objects(requests) -> list[tuple[str, str, int]]:
    """Requests for objects (volumes, manifests), not the container or the auth."""
    return [r for r in requests if "/duplicity-" in r[1] and "format=json" not in r[1]]


def _backups(cfbackup, config, src, count: int = 2) -> None:
    for number in range(count):
        (src / "plain.txt").write_text(f"version {number}\n")
        assert cfbackup("-c", config, "backup", "--full").returncode == 0
        time.sleep(1.1)  # duplicity's times have one-second resolution


def test_a_one_file_restore_and_read_data_log_in_and_list_once(
    tmp_path, make_config, cfbackup, local_swift
):
    """With the prefetch (the default) duplicity reads the local copy: the restore's every
    Swift request is cfbackup's. Before: 3 logins, a HEAD and 2 listings (of 2 pages each)."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src)
    _backups(cfbackup, config, src)

    for args in (
        ("restore", "main", tmp_path / "one", "--path", "plain.txt"),
        ("verify", "main", "--read-data"),
    ):
        requests = _requests(cfbackup, local_swift, "-c", config, *args)
        checks = [r for r in requests if r not in _objects(requests)]
        assert _auths(checks) == 1 and len(_listings(checks)) == 1, (args, requests)
        assert len(checks) == 2, (args, requests)  # no HEAD: the listing tells the container
        assert requests[:2] == checks, (args, requests)  # then only the objects, same login
    assert (tmp_path / "one" / "plain.txt").read_text() == "version 1\n"


def test_list_and_verify_check_with_one_login_and_listing(
    tmp_path, make_config, cfbackup, local_swift
):
    """cfbackup's checks log in once and list once; duplicity's own backend and its
    SwiftService (2 HEADs) start with that login's token (``patches/handed_token.py``).
    Before: 2 logins, a HEAD, 2 pages for the checks; then 2 logins of duplicity's own."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src)
    _backups(cfbackup, config, src, count=1)
    for args in (("list", "main"), ("verify", "main")):
        requests = _requests(cfbackup, local_swift, "-c", config, *args)
        assert _auths(requests) == 1, (args, requests)  # was 1 + 2: duplicity's own
        assert not [r for r in requests if r[2] == 401], (args, requests)
        assert sum(1 for m, *_ in requests if m == "HEAD") == 2, (args, requests)
        assert len(_listings(requests)) == 1, (args, requests)
        assert requests[0][1].startswith("/auth/") and requests[1][1] == _listings(requests)[0]


def test_prune_and_cleanup_list_once_before_duplicity(
    tmp_path, make_config, cfbackup, local_swift, container
):
    """prune read the listing up to 4 times per chain (the target's existence, the future-sets
    refusal, the unprotected newest chain, the kept manifests), each with its own login; the
    check of duplicity's deletes lists anew after them, on a connection of its own."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    more = '[profiles.main.retention]\nafter_backup = false\nremove_older_than = "1s"\n'
    config = make_config(source=src, more=more)
    _backups(cfbackup, config, src)

    requests = _requests(cfbackup, local_swift, "-c", config, "prune", "--dry-run")
    assert _auths(requests) == 1 and len(_listings(requests)) == 1, requests
    assert len(requests) == 2, requests  # nothing else: the plan is read from that listing

    requests = _requests(cfbackup, local_swift, "-c", config, "prune")
    deletes = [r for r in requests if r[0] == "DELETE"]
    assert deletes, requests  # the older chain went
    first_delete = requests.index(deletes[0])
    before, after = requests[:first_delete], requests[first_delete:]
    assert len(_listings(before)) == 1, requests  # every check before duplicity: one listing
    assert before[0][1].startswith("/auth/") and before[1][1] == _listings(before)[0], requests
    firsts = [p for p in _listings(after) if "marker=" not in p]  # a listing's first page
    assert len(firsts) == 1, requests  # the deletes' check: listed anew
    # cfbackup's checks' one, handed to duplicity (its backend, its SwiftService's stat and
    # its deletes logged in themselves: three more); the deletes' check: its own
    # (test_retention_unconfirmed.py fails its login)
    assert _auths(before) == 1 and _auths(requests) == 1 + 1, requests

    requests = _requests(cfbackup, local_swift, "-c", config, "cleanup")
    assert len(_listings(requests)) == 1 and _auths(requests) == 1, requests  # was 1 + 2


def test_a_split_profile_lists_its_chains_once(tmp_path, make_config, cfbackup, local_swift):
    """One listing of the target holds every chain's objects (each under its sub-prefix)."""
    src = tmp_path / "src"
    make_awkward_tree(src / "etc", big_mb=0)
    make_awkward_tree(src / "srv", big_mb=0, seed=3)
    extra = f'include = ["{src}/etc", "{src}/srv"]\nsplit_chains = true\n'
    config = make_config(source=src, extra=extra, more="[profiles.main.retention]\nkeep_full = 1\n")
    for _ in range(2):
        assert cfbackup("-c", config, "backup", "--full").returncode == 0
        time.sleep(1.1)
    for args in (("prune", "--dry-run"), ("restore", "main", tmp_path / "out")):
        requests = _requests(cfbackup, local_swift, "-c", config, *args)
        checks = [r for r in requests if r not in _objects(requests)]
        assert _auths(checks) == 1 and len(_listings(checks)) == 1 and len(checks) == 2, (
            args,
            requests,
        )
    assert (tmp_path / "out" / "srv").is_dir() and (tmp_path / "out" / "etc").is_dir()


def test_duplicity_reading_swift_itself_starts_with_the_checks_login(
    tmp_path, make_config, cfbackup, local_swift, container
):
    """Without the prefetch duplicity downloads the volumes itself: it starts with the token
    of the checks' login, one duplicity after another (two rules of prune), and each chain's
    at once (split_chains: started cold, in parallel). Before: 2-3 logins per duplicity."""
    src = tmp_path / "src"
    make_awkward_tree(src / "etc", big_mb=0)
    make_awkward_tree(src / "srv", big_mb=0, seed=3)
    more = (
        '[profiles.main.retention]\nafter_backup = false\nremove_older_than = "1s"\nkeep_full = 1\n'
    )
    for split in ("false", "true"):
        extra = (
            f'include = ["{src}/etc", "{src}/srv"]\nsplit_chains = {split}\nrestore_prefetch = 0\n'
        )
        config = make_config(
            source=src,
            extra=extra,
            more=more,
            target=f"swift://{container}/split-{split}",
            name=f"split-{split}.toml",
        )
        _backups(cfbackup, config, src)
        for args in (
            ("restore", "main", tmp_path / f"out-{split}"),
            ("verify", "main"),
            ("prune",),
        ):
            requests = _requests(cfbackup, local_swift, "-c", config, *args)
            # prune's check of each chain's deletes keeps its own login
            deletes_checks = (2 if split == "true" else 1) if args[0] == "prune" else 0
            assert _auths(requests) == 1 + deletes_checks, (split, args, requests)
            assert not [r for r in requests if r[2] == 401], (split, args, requests)
            if args[0] == "restore":  # duplicity read the volumes itself
                volumes = [p for m, p, _s in requests if m == "GET" and ".difftar" in p]
                assert volumes, (split, requests)
        assert (tmp_path / f"out-{split}" / "srv").is_dir()


def test_the_listing_is_read_again_after_a_duplicity_that_deletes(
    tmp_path, make_config, cfbackup, cli_env, monkeypatch
):
    """The run's view lists once, and again after a duplicity command that deletes: a check
    after it never reads the objects it removed."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src)
    _backups(cfbackup, config, src)
    for name in ("T_SWIFT_KEY", "T_PASSPHRASE", "GNUPGHOME"):
        monkeypatch.setenv(name, cli_env[name])
    loaded = load_config(config, CliContext().plugin_sections())
    profile = loaded.profiles["main"]
    hooks = plugins.hooks_for_profile(plugins.make_plugin_manager(), [])
    run = Run(config=loaded, profile=profile, action="prune", options={}, hooks=hooks)
    chain = chains.of(profile)[0]
    with common.target_view(run):
        env = common.prepare(run)
        store = stores.open_store(chain.profile, run.target_view)
        before = store.list()
        assert run.target_view.objects() is run.target_view.objects()  # listed once, kept
        rule = ("remove-all-but-n-full", "1")
        common.duplicity(
            run,
            lambda fd: commands.retention_argv(chain.profile, rule, log_fd=fd),
            env,
            changes_target=True,
        )
        after = store.list()
        assert after and len(after) < len(before), (before, after)
        assert after == stores.open_store(chain.profile).list()  # what a fresh login lists
