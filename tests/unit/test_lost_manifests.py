"""A set without a manifest is an interrupted backup only when it is the newest set at the
target (the next backup resumes it). One that newer sets follow lost its manifest: duplicity's
restore of any time from it on dies ("No remote manifest name"), so the checks must not read
the chain as if it stopped before it (they would prove an older state and pass)."""

from __future__ import annotations

from cfbackup import collection, stores, volumes
from cfbackup.duplicity.names import PLAIN

T = "20261201T0{}0000Z".format


def _names(*ends: int, without_manifest: tuple[int, ...] = (), without_sig: tuple[int, ...] = ()):
    names = []
    for position, end in enumerate(ends):
        if position == 0:
            base = f"duplicity-full.{T(end)}"
            sig = f"duplicity-full-signatures.{T(end)}.sigtar.gpg"
        else:
            base = f"duplicity-inc.{T(ends[position - 1])}.to.{T(end)}"
            sig = f"duplicity-new-signatures.{T(ends[position - 1])}.to.{T(end)}.sigtar.gpg"
        names.append(f"{base}.vol1.difftar.gpg")
        if end not in without_manifest:
            names.append(f"{base}.manifest.gpg")
        if end not in without_sig:
            names.append(sig)
    return names


def _sets(tmp_path, names):
    target = tmp_path / "target"
    target.mkdir()
    for name in names:
        (target / name).write_bytes(b"")
    return volumes.backup_sets(stores.FileStore(target), naming=PLAIN), target


def test_a_manifest_lost_mid_chain_is_not_an_interrupted_backup(tmp_path):
    sets, target = _sets(tmp_path, _names(1, 2, 3, 4, 5, without_manifest=(4,)))
    lost = volumes.lost_manifests(sets)
    assert [s.end for s in lost] == [sets[3].end]
    assert "incremental backup of 2026-12-01 04:00:00 UTC" in volumes.lost_manifest_problem(
        lost[0], stores.FileStore(target)
    )
    # the chain now goes through the lost set (checks then name it), never stops before it
    chain = volumes.chain_at(sets)
    assert [s.end for s in chain] == [s.end for s in sets]
    assert [s.manifest is None for s in chain] == [False, False, False, True, False]
    # a time before the lost set: that state restores, and the lost set is not in it
    assert len(volumes.chain_at(sets, sets[2].end)) == 3


def test_the_newest_set_without_a_manifest_is_an_interrupted_backup(tmp_path):
    sets, _ = _sets(tmp_path, _names(1, 2, 3, without_manifest=(3,), without_sig=(3,)))
    assert volumes.lost_manifests(sets) == []
    assert [s.end for s in volumes.chain_at(sets)] == [s.end for s in sets[:2]]


def test_status_keeps_duplicitys_counts_and_names_the_lost_manifest(tmp_path):
    """collection.status stays what duplicity's collection-status says (a complete chain, one
    incomplete set); status adds the lost manifest and calls the profile broken."""
    names = _names(1, 2, 3, 4, without_manifest=(3,))
    sets, target = _sets(tmp_path, names)
    said = collection.status(names, tmp_path / "archive", naming=PLAIN)
    assert said["incomplete_sets"] == 1 and said["chains"][0]["state"] == "complete"
    assert len(volumes.lost_manifests(sets)) == 1


def test_a_damaged_signature_file_names_the_full_backup_command(tmp_path):
    """The fix in the message runs as printed: with the profile and the user's -c FILE."""
    import pytest

    from cfbackup import suggest
    from cfbackup.errors import VerifyDifferences
    from cfbackup.volume_keys import Undecryptable

    class Keys:
        def decrypt_file(self, source, name, plain):
            raise Undecryptable("gpg: decryption failed: Bad session key")

    target = tmp_path / "target"
    target.mkdir()
    name = f"duplicity-full-signatures.{T(1)}.sigtar.gpg"
    (target / name).write_bytes(b"not gpg")
    suggest.use_config("/etc/cfb/web.toml")
    try:
        with pytest.raises(VerifyDifferences) as caught:
            with volumes.clear_copy(
                stores.FileStore(target), name, Keys(), tmp_path, profile="web1"
            ):
                pass
    finally:
        suggest.use_config(None)
    assert "start a sound chain with cfbackup -c /etc/cfb/web.toml backup web1 --full." in (
        caught.value.message
    )
