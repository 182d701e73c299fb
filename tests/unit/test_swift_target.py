"""A swift:// target's container and prefix are what duplicity's swift backend makes of it:
cfbackup lists, checks and deletes under the same objects duplicity writes."""

from __future__ import annotations

import pytest

from cfbackup.duplicity.target import swift_target


@pytest.mark.parametrize(
    ("url", "prefix"),
    [
        ("swift://backups", ""),
        ("swift://backups/", ""),
        ("swift://backups/host1", "host1"),
        ("swift://backups/host1/", "host1"),
        ("swift://backups/a//b", "a/b"),  # duplicity folds empty parts: its objects are a/b/...
        ("swift://backups//a/b//", "a/b"),
    ],
)
def test_the_prefix_is_duplicity_s(url, prefix):
    target = swift_target(url)
    assert (target.container, target.prefix) == ("backups", prefix)
    assert target.object_prefix == (f"{prefix}/" if prefix else "")


def test_other_schemes_are_no_swift_target():
    assert swift_target("file:///srv/backups") is None
