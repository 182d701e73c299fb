"""``signatures``: reading duplicity's signature tars without holding every member."""

from __future__ import annotations

import io
import tarfile

import pytest

from cfbackup import signatures


def _sigtar(path, count: int) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for i in range(count):
            info = tarfile.TarInfo(f"snapshot/d/f{i}")
            info.type = tarfile.DIRTYPE
            archive.addfile(info)
        gone = tarfile.TarInfo("deleted/d/f0")
        archive.addfile(gone, io.BytesIO(b""))


@pytest.mark.parametrize("read", [signatures.names, signatures.read])
def test_the_members_of_a_signature_tar_are_not_kept(tmp_path, monkeypatch, read):
    """Iterating a TarFile keeps every TarInfo in ``archive.members``: 300,000 paths (a 5.5 MB
    signature tar) took 292 MB of memory on the restore's failure path (names) and the
    drill's (read)."""
    sigtar = tmp_path / "duplicity-full-signatures.sigtar.gz"
    _sigtar(sigtar, 2000)
    opened: list[tarfile.TarFile] = []
    real_open = tarfile.open

    def remembering(*args, **kwargs):
        opened.append(real_open(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(tarfile, "open", remembering)
    found = read([sigtar])
    assert len(found) == 1999 and "d/f0" not in found and "d/f1999" in found
    assert [len(archive.members) for archive in opened] == [0]


def test_the_local_chain_is_found_with_the_profile_s_file_prefixes(tmp_path):
    """local_chain imported a helper the file-prefix change had removed: every restore of a
    path not in the backup ended in an internal error instead of naming the path."""
    from cfbackup.duplicity.names import Naming

    full = tmp_path / "s_duplicity-full-signatures.20261201T000000Z.sigtar.gz"
    inc = tmp_path / "s_duplicity-new-signatures.20261201T000000Z.to.20261202T000000Z.sigtar.gz"
    for path in (full, inc):
        _sigtar(path, 1)
    assert signatures.local_chain(tmp_path, naming=Naming(signature="s_")) == [full, inc]
    assert signatures.local_chain(tmp_path) is None  # without the prefix: not duplicity's names


def _tar(path, members: list[str]):
    with tarfile.open(path, "w:gz") as archive:
        for name in members:
            archive.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    return path


def test_holds_reads_the_state_the_chain_leaves_and_gives_up_past_its_time(tmp_path):
    """A restore asks, before any volume downloads, whether the backup holds its --path: in
    the full, deleted by an incremental, added by one; and it spends no more than the time
    given (None: not known), so a restore of a path that is there never waits long for it."""
    full = _tar(tmp_path / "full", ["snapshot/etc", "signature/etc/a", "signature/etc/b"])
    inc = _tar(tmp_path / "inc", ["deleted/etc/a", "signature/etc/c"])
    assert signatures.holds([full], "etc/a", within=60) is True
    assert signatures.holds([full, inc], "etc/a", within=60) is False
    assert signatures.holds([full, inc], "etc/b", within=60) is True
    assert signatures.holds([full, inc], "etc/c", within=60) is True
    assert signatures.holds([full, inc], "etc/x", within=60) is False
    assert signatures.holds([full, inc], "etc/x", within=-1) is None
