"""After duplicity's retention, cfbackup works out what each rule still removes
(``retention.left_behind``): whatever it names must be exactly what duplicity itself removes,
so that a retention whose deletes the target refused is told from one with nothing to do."""

from __future__ import annotations

import calendar
import os
import time

import pytest

from cfbackup import retention, stores
from cfbackup.config.load import load_config
from cfbackup.duplicity import commands
from cfbackup.duplicity.run import run_duplicity

T = "20261201T0{}0000Z".format  # T(1) = 01:00 UTC on 2026-12-01, ...


def _full(n: int) -> list[str]:
    return [
        f"duplicity-full.{T(n)}.vol1.difftar.gz",
        f"duplicity-full.{T(n)}.manifest",
        f"duplicity-full-signatures.{T(n)}.sigtar.gz",
    ]


def _inc(a: int, b: int) -> list[str]:
    return [
        f"duplicity-inc.{T(a)}.to.{T(b)}.vol1.difftar.gz",
        f"duplicity-inc.{T(a)}.to.{T(b)}.manifest",
        f"duplicity-new-signatures.{T(a)}.to.{T(b)}.sigtar.gz",
    ]


SCENARIOS = {
    "one chain": [*_full(1), *_inc(1, 2)],
    "two chains": [*_full(1), *_inc(1, 2), *_full(3), *_inc(3, 4)],
    "three chains": [*_full(1), *_inc(1, 2), *_full(3), *_full(5), *_inc(5, 6)],
    "an old chain without incrementals": [*_full(1), *_full(3), *_inc(3, 4), *_full(5)],
    "an incomplete old set": [*_full(1), _inc(1, 2)[0], *_full(3)],
    "an interrupted old full": [_full(1)[0], *_full(3), *_inc(3, 4), *_full(5)],
    "orphaned incrementals": [*_inc(1, 2), *_full(3), *_full(5)],
}
# 02:30 UTC: between the first chain's end and the second's
CUTOFF = str(calendar.timegm(time.strptime("20261201T023000Z", "%Y%m%dT%H%M%SZ")))
RULES = [
    ("remove-all-but-n-full", "1"),
    ("remove-all-but-n-full", "2"),
    ("remove-all-inc-of-but-n-full", "1"),
    ("remove-older-than", CUTOFF),
]


def _apply(target, archive, rule, at="notice"):
    result = run_duplicity(
        lambda fd: (
            "duplicity",
            *rule,
            "--force",
            f"--verbosity={at}",
            "--archive-dir",
            str(archive.parent),
            "--name",
            archive.name,
            "--no-encryption",
            f"--log-fd={fd}",
            f"file://{target}",
        ),
        {"PATH": os.environ["PATH"], "HOME": str(target.parent)},
        check=False,
    )
    assert result.returncode == 0, result.output_tail
    return result


@pytest.mark.parametrize("rule", RULES, ids=" ".join)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_what_a_rule_leaves_is_what_duplicity_removes(scenario, rule, tmp_path):
    target, archive = tmp_path / "target", tmp_path / "archive" / "name"
    target.mkdir()
    archive.mkdir(parents=True)
    for name in SCENARIOS[scenario]:
        (target / name).write_bytes(b"")
    before = set(stores.FileStore(target).list())
    ready = retention.prepared(rule)

    meant = {name for s in retention.left_behind(ready, before) for name in s.objects}
    _apply(target, archive, rule)
    after = set(stores.FileStore(target).list())

    assert meant == before - after  # as a refused delete would have left them
    assert retention.left_behind(ready, after) == []  # deleted: nothing left behind


def test_an_unreadable_time_or_count_names_nothing():
    names = SCENARIOS["three chains"]
    for rule in (("remove-older-than", "2026-01-01T1:2"), ("remove-all-but-n-full", "x")):
        assert retention.left_behind(retention.prepared(rule), names) == []


def test_cleanup_names_what_it_deletes_whatever_the_profiles_verbosity(tmp_path):
    """``cleanup`` is checked against the files duplicity's notice names: its argv asks for
    notices even when the profile's verbosity is lower, and the notice still reads the same."""
    target, archive = tmp_path / "target", tmp_path / "archive" / "name"
    target.mkdir()
    archive.mkdir(parents=True)
    orphans = _inc(1, 2)
    for name in [*orphans, *_full(3)]:
        (target / name).write_bytes(b"")
    result = _apply(target, archive, ("cleanup",))
    assert sorted(retention.cleanup_list(result)) == sorted(orphans)
    assert not set(orphans) & set(os.listdir(target))

    config = tmp_path / "c.toml"
    config.write_text(
        f'[profiles.p]\nsource = "{tmp_path}"\ntarget = "swift://c/p"\nverbosity = "error"\n'
        '[profiles.p.swift]\nauth_url = "http://k/auth/v1.0"\nusername = "u"\n'
        'password_env = "T_KEY"\n[profiles.p.encryption]\npassphrase_env = "T_PASSPHRASE"\n'
    )
    argv = commands.cleanup_argv(load_config(config).profile("p"))
    assert "--verbosity=notice" in argv, argv
