"""Which retention rules can remove anything, from the names in duplicity's local archive."""

from __future__ import annotations

from cfbackup.config import build_config
from cfbackup.duplicity import archive

T1, T2, T3 = "20261101T010000Z", "20261115T010000Z", "20261126T010000Z"


def _profile(tmp_path, extra_options=()):
    profile = {
        "extra_options": list(extra_options),
        "source": "/srv",
        "target": "swift://box/host",
        "archive_dir": str(tmp_path),
        "encryption": {"passphrase_env": "T_PASS"},
        "swift": {"auth_url": "http://k/auth/v1.0", "username": "u", "password_env": "T_KEY"},
    }
    return build_config({"profiles": {"p": profile}}, path=None).profiles["p"]


def _archive(tmp_path, *names):
    folder = tmp_path / "p"
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_full_backups_counts_manifests_signatures_and_partial_ones(tmp_path):
    profile = _profile(tmp_path)
    assert archive.full_backups(profile) is None  # no archive yet: unknown, not zero
    _archive(
        tmp_path,
        f"duplicity-full.{T1}.manifest",
        f"duplicity-full-signatures.{T1}.sigtar.gz",
        f"duplicity-inc.{T1}.to.{T2}.manifest",
        f"duplicity-new-signatures.{T1}.to.{T2}.sigtar.gz",
        f"duplicity-full-signatures.{T3}.sigtar.part",  # an interrupted full counts too
        "progress",
        "lockfile",
    )
    assert archive.full_backups(profile) == {T1, T3}


def test_rules_that_cannot_remove_anything():
    one, two, three = {T1}, {T1, T2}, {T1, T2, T3}
    assert not archive.rule_can_remove(("remove-all-but-n-full", "2"), two)
    assert archive.rule_can_remove(("remove-all-but-n-full", "2"), three)
    assert not archive.rule_can_remove(("remove-all-inc-of-but-n-full", "1"), one)
    assert archive.rule_can_remove(("remove-all-inc-of-but-n-full", "1"), two)
    assert not archive.rule_can_remove(("remove-older-than", "6M"), one)  # never the newest
    assert archive.rule_can_remove(("remove-older-than", "6M"), two)
    # unsure means run
    assert archive.rule_can_remove(("remove-all-but-n-full", "2"), None)
    assert archive.rule_can_remove(("remove-all-but-n-full", "x"), one)
    assert archive.rule_can_remove(("some-future-rule", "1"), one)


def test_an_archive_that_cannot_be_listed_counts_as_unknown(tmp_path):
    (tmp_path / "p").write_text("not a folder")
    assert archive.full_backups(_profile(tmp_path)) is None


def test_full_backups_are_read_under_the_profiles_file_prefixes(tmp_path):
    """duplicity names its files with ``--file-prefix`` and the prefix of their kind: read
    without them, no full was found and retention was skipped as having nothing to remove."""
    _archive(
        tmp_path,
        f"web1-m.duplicity-full.{T1}.manifest",
        f"web1-s.duplicity-full-signatures.{T2}.sigtar.gz",
        f"web1-m.duplicity-inc.{T1}.to.{T2}.manifest",
        f"duplicity-full.{T3}.manifest",  # another profile's, without the prefix
    )
    options = ["--file-prefix", "web1-", "--file-prefix-manifest=m.", "--file-prefix-sig=s."]
    assert archive.full_backups(_profile(tmp_path, options)) == {T1, T2}
    assert archive.full_backups(_profile(tmp_path)) == {T3}
    assert archive.full_backups(_profile(tmp_path, ["--file-prefix=web1-"])) == set()
