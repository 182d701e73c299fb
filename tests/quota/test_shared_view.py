"""The checks before a backup share one connection and one listing of the target
(``swift.TargetView``), and their Swift requests go out together: against the real local
Swift, the listing pages and falls back like swiftclient's, the account's sum equals one HEAD
per container, and a listing is never reused beyond one run's checks."""

from __future__ import annotations

import pytest
from swiftclient.exceptions import ClientException

from cfbackup import swift, swift_usage
from cfbackup.actions.backup import target_view
from cfbackup.cli.context import CliContext
from cfbackup.config import load_config
from cfbackup.config.model import Profile
from cfbackup.runtypes import Run

pytestmark = [pytest.mark.quota, pytest.mark.swift]

FULL = "duplicity-full.20261201T000000Z"


@pytest.fixture(autouse=True)
def _swift_key(monkeypatch, local_swift):
    monkeypatch.setenv("QG_SWIFT_KEY", local_swift.users["user"][1])


def _profile(p):
    return load_config(p.config, CliContext().plugin_sections()).profiles["qg"]


def _put(p, *names):
    conn = p.conn()
    conn.put_container(p.container)
    for name in names:
        conn.put_object(p.container, (f"{p.prefix}/" if p.prefix else "") + name, b"x" * 10)


def test_listing_pages_and_falls_back_like_swiftclient(quota_profile, monkeypatch):
    p = quota_profile(prefix="host")
    names = [f"{FULL}.vol{i}.difftar.gpg" for i in range(1, 6)]
    _put(p, *names)
    profile = _profile(p)
    every = sorted(names)
    monkeypatch.setattr(swift, "LISTING_LIMIT", 2)  # 5 objects: pages of 2, 2 and 1
    assert sorted(o["name"] for o in swift.list_target_objects(profile)) == every
    monkeypatch.setattr(swift, "LISTING_LIMIT", 5)  # a full last page: one more, empty
    assert sorted(o["name"] for o in swift.list_target_objects(profile)) == every
    # above the cluster's maximum (10000 here) Swift answers 412: paged as swiftclient does
    with pytest.raises(ClientException) as refused:
        p.conn().get_container(p.container, limit=10001)
    assert refused.value.http_status == 412
    monkeypatch.setattr(swift, "LISTING_LIMIT", 10001)
    assert sorted(o["name"] for o in swift.list_target_objects(profile)) == every


def test_account_usage_equals_a_head_per_container(quota_profile):
    p = quota_profile()
    _put(p, "a", "b")
    profile = _profile(p)
    conn = p.conn()
    _, containers = conn.get_account(full_listing=True)
    heads = [conn.head_container(c["name"]) for c in containers]
    expected = (
        sum(int(h["x-container-bytes-used"]) for h in heads),
        sum(int(h["x-container-object-count"]) for h in heads),
    )
    together = swift_usage.account_usage(profile)
    reused = swift_usage.account_usage(
        profile,
        known={p.container: swift_usage.container_stats(profile)},
        max_heads=len(containers),
    )
    for stats in (together, reused):
        assert stats["current_exact"]
        got = (stats["bytes_used_current"], stats["object_count_current"])
        assert got == (
            max(expected[0], stats["bytes_used"]),
            max(expected[1], stats["object_count"]),
        )


def test_a_view_lists_once_per_run_and_never_beyond_its_checks(quota_profile):
    """A partial set uploaded after a run's checks listed the target (an interrupted run, the
    next one): the checks of that run share their listing, the next run's checks see the set,
    and the view is gone once the checks are over (duplicity then changes the target)."""
    p = quota_profile(prefix="host")
    _put(p, f"{FULL}.manifest.gpg")
    profile = _profile(p)
    run = Run(config=None, profile=profile, action="backup", options={}, hooks=None)
    with target_view(run):
        view = run.target_view
        first = view.objects()
        _put(p, f"{FULL}.vol1.difftar.gpg")  # after the checks listed: not in this run's view
        assert view.objects() is first
        assert [o["name"] for o in first] == [f"{FULL}.manifest.gpg"]
        # a chain's sub-prefix of the same target is cut from the same listing
        chain = Profile(profile.name, dict(profile.data, target=profile.target + "/root-abc"))
        _put(p, "root-abc/x")
        assert view.objects(chain) == []
    assert run.target_view is None
    with target_view(run):  # the next run
        assert sorted(o["name"] for o in run.target_view.objects()) == sorted(
            [f"{FULL}.manifest.gpg", f"{FULL}.vol1.difftar.gpg", "root-abc/x"]
        )
        assert [o["name"] for o in run.target_view.objects(chain)] == ["x"]


def test_lookups_started_ahead_share_one_authentication(quota_profile, monkeypatch):
    """What the quota guard starts beside the passphrase check: its own connection (a
    swiftclient Connection is not thread-safe) with the run's token, the same listing, its
    error handed to whoever takes it; a failed authentication is not tried twice."""
    p = quota_profile()
    _put(p, f"{FULL}.manifest.gpg")
    view = swift.TargetView(_profile(p))
    view.start("look", lambda v: (v.connection(), v.objects()))
    view.start("bug", lambda v: 1 / 0)
    mine = view.connection()
    theirs, objects = view.take("look").result()
    assert theirs is not mine and (theirs.url, theirs.token) == (mine.url, mine.token)
    assert view.objects() is objects and [o["name"] for o in objects] == [f"{FULL}.manifest.gpg"]
    with pytest.raises(ZeroDivisionError):
        view.take("bug").result()
    assert view.take("look") is None
    view.close()

    monkeypatch.setenv("QG_SWIFT_KEY", "not-the-key")
    refused = swift.TargetView(_profile(p))
    refused.start("look", lambda v: v.connection())
    first = refused.take("look").exception()
    assert isinstance(first, ClientException) and first.http_status == 401
    with pytest.raises(ClientException) as again:
        refused.connection()
    assert again.value is first
    refused.close()
