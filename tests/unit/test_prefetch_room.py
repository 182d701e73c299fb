"""The prefetch's scheduler (cfbackup/prefetch.py) when the copy's disk is tight and duplicity
asks for a volume out of the expected order: the volumes fetched ahead of it, which it takes
none of while it waits, make room for it instead of leaving both sides waiting for ever."""

from __future__ import annotations

import pytest

from cfbackup import prefetch, volumes


def _scheduler(tmp_path, free: int, ready: int, size: int = 100):
    """A Prefetch with ``ready`` volumes of 10 bytes fetched ahead and one more, ``size``
    bytes stored, that duplicity asks for (its .want), on a disk with ``free`` bytes free."""
    p = prefetch.Prefetch.__new__(prefetch.Prefetch)
    p.folder, p.copy, p.work, p.ahead = tmp_path, tmp_path / "copy", tmp_path / "fetching", 4
    p.user_folder = tmp_path.parent  # the tempdir a user chose, the run's folder inside it
    p.clear, p.profile = False, {"volsize": 1, "extra_options": []}
    p.copy.mkdir()
    p.volumes, p.failed = {}, []
    for n in range(1, ready + 2):
        name = f"duplicity-full.20261205T000000Z.vol{n}.difftar"
        ref = volumes.VolumeRef(name, n, "full", size if n == ready + 1 else 10, None)
        p.volumes[name] = prefetch._Volume(ref, name, n, "ready" if n <= ready else "queued")
        if n <= ready:
            (p.copy / name).write_bytes(b"x" * 10)
    (p.copy / f"{name}.want").touch()
    p._free = lambda: free
    return p, p.volumes[name]


def test_the_volumes_fetched_ahead_make_room_for_the_one_duplicity_waits_for(tmp_path, monkeypatch):
    monkeypatch.setattr(prefetch, "RESERVE", 1000)
    p, asked = _scheduler(tmp_path, free=1000 + 90, ready=3)  # 10 bytes short, 30 to free
    assert p._to_start(running=0) == [asked]
    assert [v.state for v in p.volumes.values()] == ["queued", "queued", "queued", "queued"]
    assert sorted(f.name for f in p.copy.iterdir()) == [f"{asked.name}.want"]


def test_no_room_even_then_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setattr(prefetch, "RESERVE", 1000)
    p, _ = _scheduler(tmp_path, free=1000 + 50, ready=2, size=100)  # 20 bytes to free: short
    with pytest.raises(prefetch._NoSpace):
        p._to_start(running=0)


def test_nothing_is_removed_while_a_download_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(prefetch, "RESERVE", 1000)
    p, _ = _scheduler(tmp_path, free=1000 + 90, ready=3)
    assert p._to_start(running=1) == []  # its end frees the room, or it is the one asked
    assert sum(1 for v in p.volumes.values() if v.state == "ready") == 3


def test_a_download_under_way_keeps_the_room_it_has_still_to_write(tmp_path, monkeypatch):
    """The free space does not show what a running download has still to write: counted from
    it alone, a second download would start on the same room and the two together overrun
    the reserve. What the first wrote so far is on the disk already and counts once."""
    monkeypatch.setattr(prefetch, "RESERVE", 1000)
    p, asked = _scheduler(tmp_path, free=1000 + 150, ready=0)  # room for one 100-byte volume
    name = "duplicity-full.20261205T000000Z.vol0.difftar"
    ref = volumes.VolumeRef(name, 0, "full", 100, None)
    p.volumes[name] = prefetch._Volume(ref, name, 0, "fetching")
    assert p._to_start(running=1) == []  # 100 bytes on their way: 50 are left, not 150
    p._free = lambda: 1000 + 200  # room for both
    assert p._to_start(running=1) == [asked]
    p.work.mkdir()
    (p.work / f"{name}.part").write_bytes(b"x" * 60)
    p._free = lambda: 1000 + 200 - 60  # the 60 written are no longer free: 40 still to come
    assert p._to_start(running=1) == [asked]


def test_a_volume_decrypted_ahead_needs_room_for_its_clear_size(tmp_path, monkeypatch):
    """A compressed volume stored in 100 bytes decrypts up to the volume size it was written
    at (here 1 MiB): the room is counted for that, so a full disk is met before the download,
    in one sentence, not in the middle of it."""
    monkeypatch.setattr(prefetch, "RESERVE", 1000)
    p, asked = _scheduler(tmp_path, free=1000 + 5000, ready=0)
    assert p._to_start(running=0) == [asked]  # stored: 100 bytes fit
    p.clear = True
    with pytest.raises(prefetch._NoSpace):
        p._to_start(running=0)
    p._free = lambda: 1000 + (1 << 20)
    assert p._to_start(running=0) == [asked]


def test_no_room_names_the_folder_a_user_can_clear(tmp_path, monkeypatch):
    """The run's own folder (TEMPDIR/restore/PROFILE-PID/CHAIN) is gone once it stopped: the
    sentence names the folder the caller says the user chose (the tempdir, or state_dir), not
    one guessed from the scratch folder's depth."""
    from pathlib import Path

    monkeypatch.setattr(prefetch, "RESERVE", 1000)
    p, _ = _scheduler(tmp_path, free=0, ready=0)
    p.user_folder = Path("/srv/tmp")
    with pytest.raises(prefetch._NoSpace) as raised:
        p._to_start(running=0)
    assert "restore under /srv/tmp: it needs about" in raised.value.message, raised.value.message
    assert "set tempdir to a larger disk" in raised.value.message


def test_a_restore_names_the_tempdir_else_state_dir(tmp_path):
    """What ``restore`` passes as the folder to name: the one its scratch folder is made in."""
    from types import SimpleNamespace

    from cfbackup.actions import restore

    config = SimpleNamespace(state_dir=tmp_path / "state")
    run = SimpleNamespace(profile={"tempdir": str(tmp_path / "big")}, config=config)
    assert restore._prefetch_root(run) == tmp_path / "big"
    run.profile = {"tempdir": None}
    assert restore._prefetch_root(run) == tmp_path / "state"


def test_after_a_failed_volume_only_the_one_duplicity_asks_for_starts(tmp_path):
    """duplicity stops at a failed volume: fetching on ahead would only download bytes for a
    restore that is ending (and a later volume's error would stand in for the first's)."""
    p, asked = _scheduler(tmp_path, free=1 << 40, ready=0)
    for n in (7, 8):
        name = f"duplicity-full.20261205T000000Z.vol{n}.difftar"
        ref = volumes.VolumeRef(name, n, "full", 10, None)
        p.volumes[name] = prefetch._Volume(ref, name, n, "queued")
    assert p._to_start(running=0) == [asked, *list(p.volumes.values())[1:]]
    p.failed = ["volume 6's outcome"]
    assert p._to_start(running=0) == [asked]
