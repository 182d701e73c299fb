"""A swift:// target's container and prefix are what duplicity's swift backend makes of it:
cfbackup lists, checks and deletes under the same objects duplicity writes."""

from __future__ import annotations

import pytest

from cfbackup.duplicity import target as targets
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


@pytest.mark.parametrize(
    "url",
    [
        "swift://backups/web%2001",
        "swift://backups/caf%C3%A9/x",
        "swift://backups/100%25",
        "swift://backups/a%2Fb",
        "swift://backups/100%",
        "swift://backups/%zz",
        "swift://backups/%ff",
        "swift://my%20box/p",
        "swift://backups/web 01",
        "swift://backups/a?x=1#f",
    ],
)
def test_a_percent_encoded_target_is_read_as_duplicity_reads_it(url):
    """duplicity decodes the path (not the container): it stored swift://backups/web%2001's
    objects under "web 01/", where cfbackup's status, verify --read-data and retention's check
    of the deletes looked under "web%2001/" and found nothing."""
    import duplicity.backend

    parts = [p for p in duplicity.backend.ParsedUrl(url).path.split("/") if p]
    target = swift_target(url)
    assert (target.container, target.object_prefix) == (
        parts[0],
        "/".join(parts[1:]) + "/" if parts[1:] else "",
    )


def test_other_schemes_are_no_swift_target():
    assert swift_target("file:///srv/backups") is None


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("swift://backups/web%2001", "swift://backups/web 01"),
        ("swift://backups/a%2Fb", "swift://backups/a/b"),
        ("cf+http://backups/a%2Fb/", "swift://backups//a/b"),
    ],
)
def test_a_percent_encoded_prefix_is_the_place_duplicity_writes_to(one, other):
    """place() did not decode a Swift prefix (swift_target and duplicity do): two profiles
    writing to one prefix were not told apart from two at different prefixes."""
    assert targets.place(one) == targets.place(other)
    assert targets.place("swift://web%2001/a") != targets.place("swift://web 01/a")  # container
