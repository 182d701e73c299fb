"""duplicity's names with a profile's file prefixes (cfbackup/duplicity/names.py) are read as
duplicity itself reads them with those prefixes set, and every reader of names uses them."""

from __future__ import annotations

import pytest
from duplicity import config, file_naming

from cfbackup import collection, future_sets, next_backup, stores, volumes
from cfbackup.config import build_config
from cfbackup.duplicity import archive, names

T1, T2 = "20261101T010000Z", "20261115T010000Z"
PLAIN_NAMES = [
    f"duplicity-full.{T1}.vol1.difftar.gpg",
    f"duplicity-full.{T1}.manifest.gpg",
    f"duplicity-full-signatures.{T1}.sigtar.gpg",
    f"duplicity-full.{T1}.jsonstat.gpg",
    f"duplicity-inc.{T1}.to.{T2}.vol1.difftar.gpg",
    f"duplicity-inc.{T1}.to.{T2}.manifest.gpg",
    f"duplicity-new-signatures.{T1}.to.{T2}.sigtar.gpg",
    f"duplicity-full.{T1}.manifest.part",
]
PREFIXES = [
    {"common": "host1-"},
    {"manifest": "m_", "signature": "s_", "archive": "a_"},
    {"common": "h.", "archive": "vol/"},
    {"manifest": "x", "archive": "x"},
]


def _prefixed(naming: names.Naming, name: str) -> str:
    kind = names._kind(file_naming.parse(name.encode()))
    return naming.prefix(kind) + name


def _duplicity_parse(naming: names.Naming, name: str):
    """What duplicity 3.2's own file_naming reads of ``name`` with these prefixes set."""
    saved = {f: getattr(config, f"file_prefix{s}") for f, s in _FIELDS.items()}
    try:
        for field, suffix in _FIELDS.items():
            setattr(config, f"file_prefix{suffix}", getattr(naming, field).encode())
        file_naming.prepare_regex(force=True)
        return file_naming.parse(name.encode())
    finally:
        for field, suffix in _FIELDS.items():
            setattr(config, f"file_prefix{suffix}", saved[field])
        file_naming.prepare_regex(force=True)


_FIELDS = {
    "common": "",
    "archive": "_archive",
    "manifest": "_manifest",
    "signature": "_signature",
    "jsonstat": "_jsonstat",
}


@pytest.mark.parametrize("given", PREFIXES)
def test_names_are_read_as_duplicity_reads_them_with_the_prefixes(given):
    naming = names.Naming(**given)
    candidates = PLAIN_NAMES + [_prefixed(naming, n) for n in PLAIN_NAMES]
    candidates += ["host1-" + n for n in PLAIN_NAMES] + ["m_" + n for n in PLAIN_NAMES]
    for name in candidates:
        ours, theirs = naming.parse(name), _duplicity_parse(naming, name)
        assert (ours is None) == (theirs is None), name
        if ours is not None:
            assert ours == theirs and ours.encrypted == theirs.encrypted, name
    # duplicity's own patterns are left as they were: prefix-less
    assert file_naming.parse(PLAIN_NAMES[0].encode()) is not None


def _profile(tmp_path, extra_options):
    profile = {
        "extra_options": list(extra_options),
        "source": "/srv",
        "target": f"file://{tmp_path / 'target'}",
        "archive_dir": str(tmp_path / "archive"),
        "encryption": {"passphrase_env": "T_PASS"},
    }
    return build_config({"profiles": {"p": profile}}, path=None).profiles["p"]


def test_the_readers_see_a_prefixed_profile_s_sets(tmp_path):
    """Each reader of the target's names, given a prefixed profile's naming, finds its two
    sets; read without the prefixes, the same names hold no backup at all."""
    profile = _profile(tmp_path, ["--file-prefix=host1-", "--file-prefix-manifest", "m_"])
    naming = names.of(profile)
    assert naming == names.Naming(common="host1-", manifest="m_")
    target = tmp_path / "target"
    target.mkdir()
    written = [_prefixed(naming, n) for n in PLAIN_NAMES if not n.endswith(".part")]
    for name in written:
        (target / name).write_bytes(b"x")
    listing = stores.FileStore(target).list()

    sets = volumes.backup_sets(stores.FileStore(target), naming=naming)
    assert [(s.kind, s.manifest is not None, len(s.volumes)) for s in sets] == [
        ("full", True, 1),
        ("inc", True, 1),
    ]
    assert sets[0]._expected_name(2) == f"host1-duplicity-full.{T1}.vol2.difftar.gpg"
    found = collection.status(listing, tmp_path / "archive", naming=naming)
    assert [len(c["sets"]) for c in found["chains"]] == [2]
    assert len(collection.backup_chains(listing, naming=naming)[0]) == 2
    assert len(future_sets.dated_after(listing, 0, naming=naming)) == 2
    objects = [{"name": n, "bytes": 1} for n in listing]
    assert [s.complete for s in next_backup.read_sets(objects, naming=naming)] == [True, True]

    plain = names.PLAIN
    assert volumes.backup_sets(stores.FileStore(target), naming=plain) == []
    assert collection.status(listing, tmp_path / "archive", naming=plain)["chains"] == []
    assert future_sets.dated_after(listing, 0, naming=plain) == []


def test_the_archive_dir_s_full_backups_are_counted_with_the_prefixes(tmp_path):
    profile = _profile(tmp_path, ["--file-prefix-signature=s_", "--file-prefix-manifest=m_"])
    folder = tmp_path / "archive" / "p"
    folder.mkdir(parents=True)
    for name in (f"m_duplicity-full.{T1}.manifest", f"s_duplicity-full-signatures.{T2}.sigtar"):
        (folder / name).write_bytes(b"")
    (folder / f"duplicity-full.{T2}.manifest").write_bytes(b"")  # another profile's, unprefixed
    assert archive.full_backups(profile) == {T1, T2}


def test_a_prefixed_profile_s_future_sets_and_unsigned_newest_chain_are_found(tmp_path):
    """The refusals retfix added (future-dated sets, a newest chain without signatures) read
    a prefixed profile's names: read without its prefixes they found nothing to refuse."""
    from cfbackup import retention

    profile = _profile(tmp_path, ["--file-prefix=host1-"])
    target = tmp_path / "target"
    target.mkdir()
    ahead = "20991101T010000Z"
    for name in (
        f"duplicity-full.{ahead}.manifest.gpg",
        f"duplicity-full.{ahead}.vol1.difftar.gpg",
    ):
        (target / f"host1-{name}").write_bytes(b"x")
    (futures,) = future_sets.found(profile)
    assert [s.kind for s in futures.sets] == ["full"]

    listing = stores.FileStore(target).list()
    rules = [("remove-older-than", "1M")]
    why = retention.unprotected_newest(profile, rules, listing)
    assert why.startswith("the newest backup chain (the full backup of 20991101T010000Z"), why
