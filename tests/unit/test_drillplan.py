"""How a drill splits its sample into duplicity restores (pure: synthetic manifests).

The manifests are duplicity's own ``Manifest``/``VolumeInfo`` objects, built the way duplicity
builds them (each volume records the first and last path it holds), so ``needed_for`` answers
exactly what duplicity's restore would download.
"""

from __future__ import annotations

import os

from duplicity import manifest as dup_manifest

from cfbackup import drillplan, signatures, volumes

MB = 1_000_000


def _entry(path: str, size: int) -> signatures.Entry:
    block = 512
    return signatures.Entry(path, signatures.FILE, 0, block_len=block, blocks=-(-size // block))


def _backup(paths_per_volume: list[list[str]], volume_size: int) -> volumes.BackupSet:
    """One full set whose volume N holds the paths of ``paths_per_volume[N-1]``."""
    backup_set = volumes.BackupSet(kind="full", end=1_800_000_000, manifest="m.manifest.gpg")
    info = dup_manifest.Manifest()
    for number, paths in enumerate(paths_per_volume, start=1):
        first, last = (tuple(os.fsencode(p).split(b"/")) for p in (paths[0], paths[-1]))
        info.add_volume_info(dup_manifest.VolumeInfo().set_info(number, first, None, last, None))
        name = f"duplicity-full.20270115T080000Z.vol{number}.difftar.gpg"
        backup_set.volumes[number] = name
        backup_set.sizes[name] = volume_size
    backup_set.info = info
    return backup_set


def _tree(folders: int, per_folder: int, size: int) -> list[signatures.Entry]:
    return [_entry(f"d{f:02d}/f{i:03d}", size) for f in range(folders) for i in range(per_folder)]


def _plan(entries, sample, per_volume, volume_size, **kwargs):
    names = [e.path for e in sorted(entries, key=lambda e: e.index)]
    chunks = [names[i : i + per_volume] for i in range(0, len(names), per_volume)]
    backup = _backup(chunks, volume_size)
    units = drillplan.plan(
        sample,
        lambda index: volumes.needed_for([backup], [index]),
        drillplan.Sizes(entries),
        **kwargs,
    )
    restored = sorted(e.path for u in units for e in u.files)
    assert restored == sorted(e.path for e in sample)  # every sampled file, once
    return units


def test_few_files_of_a_large_backup_are_restored_one_by_one():
    entries = _tree(40, 100, 2 * MB)  # 8 GB in 160 volumes of 50 MB
    sample = [entries[5], entries[1500], entries[3900]]
    units = _plan(entries, sample, 25, 50 * MB)
    assert [(u.folder, len(u.files), len(u.volumes)) for u in units] == [(False, 1, 1)] * 3


def test_many_files_are_one_restore_over_everything():
    entries = _tree(10, 100, 100_000)  # 100 MB in 20 volumes of 5 MB
    sample = entries[::10]
    units = _plan(entries, sample, 50, 5 * MB)
    assert len(units) == 1 and units[0].whole and len(units[0].files) == 100


def test_neighbours_share_a_folder_restore():
    entries = _tree(40, 100, 2 * MB)
    sample = [entries[i] for i in (100, 110, 120, 130)] + [entries[3000]]  # 4 in d01
    units = _plan(entries, sample, 25, 50 * MB)
    assert [(u.path, u.folder, len(u.files)) for u in units] == [
        ("d01", True, 4),
        ("d30/f000", False, 1),
    ]


def test_names_a_restore_list_cannot_hold_get_their_own_restore():
    odd = [_entry(p, 10) for p in ("#notes.txt#", " lead", "- x", "'quoted'", "tail ")]
    entries = _tree(10, 50, 1000) + odd + [_entry("d00/#fine#", 10), _entry("it's", 10)]
    units = _plan(entries, entries, 200, MB)
    whole = [u for u in units if u.whole]
    alone = sorted(u.path for u in units if not u.folder)
    assert len(whole) == 1 and alone == sorted(e.path for e in odd)
    assert not any(e in odd for e in whole[0].files)
    # what only starts a line is harmless further in: one restore lists them all
    entries = _tree(2, 50, 1000) + [_entry("d00/ lead", 10), _entry("d01/#x#", 10)]
    units = _plan(entries, entries, 200, MB)
    assert [(u.whole, len(u.files)) for u in units] == [(True, 102)]


def test_names_that_are_not_utf8_are_never_in_a_restore_list():
    """duplicity reads a restore list as UTF-8 text: one latin-1 name in it crashed the whole
    restore, and every file of the list was reported as damaged. Such a name (and everything
    under a folder so named) gets a restore of its own; the others are still one list."""
    latin1 = [os.fsdecode(b"weird/caf\xe9"), os.fsdecode(b"caf\xe9/menu"), "weird/ok"]
    entries = _tree(10, 50, 1000) + [_entry(p, 10) for p in latin1]
    units = _plan(entries, entries, 200, MB)
    whole = [u for u in units if u.whole]
    alone = sorted(u.path for u in units if not u.folder)
    assert len(whole) == 1 and alone == sorted(latin1[:2])
    assert "weird/ok" in [e.path for e in whole[0].files]
    assert drillplan.listable(_entry("caf\u00e9", 1))  # UTF-8 accents are fine in a list


def test_a_time_limit_keeps_every_restore_small_and_bad_volumes_are_avoided():
    entries = _tree(10, 100, 100_000)
    sample = entries[::10]
    limited = _plan(entries, sample, 50, 5 * MB, max_unit_seconds=1.5)
    assert len(limited) > 1 and all(u.cost <= 1.5 or not u.folder for u in limited)
    bad = "duplicity-full.20270115T080000Z.vol3.difftar.gpg"
    avoiding = _plan(
        entries, sample, 50, 5 * MB, usable=lambda u: all(v.name != bad for v in u.volumes)
    )
    assert all(bad not in [v.name for v in u.volumes] for u in avoiding if u.folder)


def test_sizes_under_a_folder():
    entries = [_entry("a/x", 1000), _entry("a/y/z", 2000), _entry("ab", 4000), _entry("b", 8)]
    sizes = drillplan.Sizes(entries)
    assert sizes.under((b"a",)) == entries[0].size + entries[1].size
    assert sizes.under(()) == sum(e.size for e in entries)
    assert sizes.under((b"a", b"y")) == entries[1].size
