"""Pure parts of the quota guard: the next backup's plan from object names, the quota
arithmetic, header generations, the 413 message, command-line amounts, the estimate's pieces."""

from __future__ import annotations

import os
import tarfile
import time

import pytest
from cfbackup_quota_guard import commands, estimate, guard

from cfbackup import next_backup as chain
from cfbackup import selection, swift_usage
from cfbackup.duplicity.failures import classify_failure
from cfbackup.duplicity.names import PLAIN
from cfbackup.duplicity.result import DuplicityResult
from cfbackup.errors import ExitCode

pytestmark = pytest.mark.quota


def _objects(*names, size=1000):
    return [{"name": n, "bytes": size} for n in names]


FULL = "duplicity-full.20260101T000000Z"
INC = "duplicity-inc.20260101T000000Z.to.20260102T000000Z"
NOW = chain.parse_time("20260103T000000Z")


def test_plan_full_when_nothing_is_there():
    plan = chain.plan_next([], force_full=False, full_if_older_than="14D", archive_dir=None)
    assert (plan.kind, plan.since) == ("full", None)


def test_plan_incremental_since_the_newest_complete_set():
    sets = chain.read_sets(
        _objects(
            f"{FULL}.vol1.difftar.gpg", f"{FULL}.manifest.gpg",
            "duplicity-full-signatures.20260101T000000Z.sigtar.gpg",
            f"{INC}.vol1.difftar.gpg", f"{INC}.manifest.gpg",
            "duplicity-new-signatures.20260101T000000Z.to.20260102T000000Z.sigtar.gpg",
            "unrelated/duplicity-full.20270101T000000Z.manifest.gpg",
        ),
        naming=PLAIN,
    )  # fmt: skip
    assert [(s.type, s.complete) for s in sets] == [("full", True), ("inc", True)]
    plan = chain.plan_next(sets, force_full=False, full_if_older_than="14D", archive_dir=None,
                           now=NOW)  # fmt: skip
    assert plan.kind == "incremental" and plan.since == chain.parse_time("20260102T000000Z")
    old = chain.plan_next(sets, force_full=False, full_if_older_than="1D", archive_dir=None,
                          now=NOW)  # fmt: skip
    assert old.kind == "full" and "full_if_older_than" in old.reason
    forced = chain.plan_next(sets, force_full=True, full_if_older_than=None, archive_dir=None)
    assert forced.kind == "full"


def test_plan_resumes_an_interrupted_set_only_with_its_local_partial_manifest(tmp_path):
    names = [f"{FULL}.vol{i}.difftar.gpg" for i in (1, 2, 3)]
    sets = chain.read_sets(
        [{"name": n, "bytes": b} for n, b in zip(names, (900, 1000, 300), strict=True)],
        naming=PLAIN,
    )
    plan = chain.plan_next(sets, force_full=False, full_if_older_than=None, archive_dir=tmp_path)
    assert (plan.kind, plan.resume_bytes) == ("full", 0)
    (tmp_path / f"{FULL}.manifest.part").write_text("")
    plan = chain.plan_next(sets, force_full=False, full_if_older_than=None, archive_dir=tmp_path)
    assert (plan.kind, plan.resume_bytes, plan.resume_objects) == ("full", 1200, 2)
    assert "resuming" in plan.reason


def test_interval_like_duplicity():
    assert chain.interval_seconds("1W2D", 1000000.0) == 1000000.0 - 9 * 86400
    assert chain.interval_seconds("garbage", 5.0) is None
    assert chain.interval_seconds("2026-01-01", 0) == time.mktime((2026, 1, 1, 0, 0, 0, 0, 0, -1))


def test_evaluate_is_inclusive_and_covers_every_quota():
    container = {"container": "c", "bytes_used": 60, "object_count": 3, "quota_bytes": 100,
                 "quota_count": 5, "storage_policy": "gold"}  # fmt: skip
    account = {"storage_url": "u", "bytes_used": 10, "bytes_used_current": 500,
               "object_count_current": 9, "quota_bytes": 1000, "quota_count": None,
               "policy_quotas": {"gold": {"quota_bytes": 700, "bytes_used": 650}}}  # fmt: skip
    info = {"container_quotas": {}}
    checks = guard.evaluate(container, account, info, upload_bytes=40, upload_objects=2)
    got = {(c.scope, c.unit): (c.after, c.exceeded, c.enforced) for c in checks}
    assert got == {
        ("container", "bytes"): (100, False, True),  # used + length == quota: allowed
        ("container", "objects"): (5, False, True),
        ("account", "bytes"): (540, False, False),  # the current figure, not the stale one
        ("policy gold of account", "bytes"): (690, False, False),
    }
    over = guard.evaluate(container, None, None, upload_bytes=41, upload_objects=1)
    assert [c.exceeded for c in over] == [True, False]
    assert (
        over[0].describe()
        == "container c: 60 bytes used + up to 41 bytes = 101 bytes > quota 100 bytes (101%)"
    )  # noqa: E501


def test_account_quota_header_generations():
    new = swift_usage._account_from_headers("u", {"x-account-quota-bytes": "5",
                                            "x-account-meta-quota-bytes": "9",
                                            "x-account-quota-count": "3"})  # fmt: skip
    assert (new["quota_bytes"], new["quota_bytes_header"], new["quota_count"]) == (
        5, "X-Account-Quota-Bytes", 3
    )  # fmt: skip
    legacy = swift_usage._account_from_headers("u", {"x-account-meta-quota-bytes": "9"})
    assert (legacy["quota_bytes"], legacy["quota_bytes_header"]) == (
        9,
        "X-Account-Meta-Quota-Bytes",
    )
    assert legacy["quota_count"] is None


def test_a_413_from_the_sized_uploads_patch_becomes_container_quota_exceeded_with_numbers():
    line = (
        "FatalBackendException: Upload exceeds quota (HTTP 413): scope=container; object v1 "
        "(5 bytes); container c: 9 bytes in 1 objects, quota 10 bytes / none objects"
    )
    error = classify_failure(DuplicityResult(("duplicity", "backup"), 50, [], (line,)))
    assert error.exit_code == ExitCode.QUOTA
    assert error.message.startswith("container quota exceeded: Swift refused an upload (413): ")
    assert "container c: 9 bytes in 1 objects, quota 10 bytes" in error.message
    plain = classify_failure(
        DuplicityResult(("duplicity", "backup"), 50, [], ("ClientException: 413 Request Entity "
                                                          "Too Large Upload exceeds quota.",))
    )  # fmt: skip
    assert plain.exit_code == ExitCode.QUOTA
    not_quota = classify_failure(
        DuplicityResult(("duplicity", "backup"), 30, [], ("SourceFileSize 4130 bytes", "boom"))
    )
    assert not_quota.exit_code != ExitCode.QUOTA


def test_amounts():
    assert commands.parse_amount("500M", sizes=True) == 500_000_000
    assert commands.parse_amount("2GiB", sizes=True) == 2 * 1024**3
    assert commands.parse_amount("none", sizes=True) is None
    assert commands.parse_amount("12", sizes=False) == 12
    for bad in ("12k", "-1", "1.5"):
        with pytest.raises(Exception, match="not a count"):
            commands.parse_amount(bad, sizes=False)


@pytest.mark.parametrize("name", ["a", "x" * 99, "y" * 150, "é" * 10])
def test_header_size_bounds_pythons_pax_tar_header(name):
    info = tarfile.TarInfo("snapshot/" + name)
    real = len(info.tobuf(tarfile.PAX_FORMAT, encoding="utf-8", errors="replace"))
    assert estimate.header_size(len(name.encode()) + 9, 0, name.isascii(), False) >= real


def test_signature_size_bounds_librsync():
    from duplicity import librsync
    from duplicity.diffdir import get_block_size

    for size in (0, 1, 511, 512, 70_000, 1_000_003):
        generator = librsync.SigGenerator(get_block_size(size))
        generator.update(os.urandom(size))
        assert estimate.signature_size(size) >= len(generator.getsig()), size


def test_scan_memory_does_not_grow_with_files(tmp_path):
    import tracemalloc

    for count in (200, 2000):
        root = tmp_path / str(count)
        for i in range(count):
            (root / f"d{i % 4}").mkdir(parents=True, exist_ok=True)
            (root / f"d{i % 4}" / f"f{i}").write_bytes(b"x")
        tracemalloc.start()
        estimate.scan(str(root), selection.Selector(str(root), []))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 200_000, (count, peak)


def test_scan_of_a_tree_deeper_than_the_open_folder_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(estimate, "MAX_OPEN_DIRS", 4)
    deep = tmp_path / "src"
    path = deep
    for level in range(12):
        path = path / f"l{level}"
        path.mkdir(parents=True)
        (path / "f").write_bytes(b"x" * level)
        (path / "g").write_bytes(b"y")
    seen = []
    tally = estimate.scan(str(deep), selection.Selector(str(deep), []), visit=seen.append)
    assert tally.errors == 0 and len(seen) == 1 + 12 * 3


def test_a_rule_duplicity_would_refuse_is_a_config_error(tmp_path):
    from cfbackup.config.model import Profile
    from cfbackup.errors import ConfigError

    profile = Profile("web", {"source": str(tmp_path), "exclude": ["/elsewhere/**"],
                              "include": [], "archive_dir": str(tmp_path), "name": None,
                              "full_if_older_than": "14D"})  # fmt: skip
    with pytest.raises(ConfigError, match="profiles.web: the rule '/elsewhere/\\*\\*' cannot"):
        guard.estimate_next(profile, [], force_full=False)


def test_the_guard_runs_after_the_other_pre_backup_hooks():
    """command_hooks' before_backup (a database dump into the source) must come first."""
    from cfbackup.plugins import make_plugin_manager

    pm = make_plugin_manager()
    called_in_order = [i.plugin_name for i in reversed(pm.hook.cfbackup_pre_backup.get_hookimpls())]
    assert called_in_order[-1] == "quota_guard"
    assert called_in_order.index("command_hooks") < called_in_order.index("quota_guard")
