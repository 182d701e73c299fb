"""The ``rate-sized-volumes`` patch's parts inside duplicity's interpreter: the rates file several
processes append to, the rate of the newest uploads, and the writer that sizes each volume (and
only volumes) from it. The whole backup, across a relay with a rate limit, is
``tests/end_to_end/test_volume_rate.py``."""

from __future__ import annotations

import pytest

from cfbackup.duplicity.patches import rate_sized_volumes as patch

MB = 1024 * 1024


def test_rates_are_read_whole_lines_only_and_the_newest_few_count(tmp_path):
    assert patch.read_rates(tmp_path) == [] and patch.rate([]) is None
    lines = ["1000 0 1", "nonsense", "2000 5 5", "4000 10 11", "6000 20 21", "8000 30 31", "9"]
    (tmp_path / patch.RATES).write_text("\n".join(lines))  # "9": a line not written whole yet
    records = patch.read_rates(tmp_path)
    assert records == [(1000, 0, 1), (4000, 10, 11), (6000, 20, 21), (8000, 30, 31)]  # 0 s: out
    assert patch.rate(records) == pytest.approx(6000)  # the newest three
    assert patch.rate(records, newest=None) == pytest.approx(4750)
    tail = patch.read_rates(tmp_path, tail=14)  # the end of a long file: cut lines left out
    assert tail == [(8000, 30, 31)], tail


def test_uploads_side_by_side_count_the_time_they_share_once():
    # two chains uploading at once, each getting half the link: the link gave 2000 B/s
    assert patch.rate([(2000, 0, 2), (2000, 0, 2)]) == pytest.approx(2000)
    # overlapping in part, then a gap nobody uploaded in (the next volume being built)
    assert patch.rate([(3000, 0, 2), (3000, 1, 3), (1000, 10, 11)]) == pytest.approx(7000 / 4)


def test_sizes_round_trip_and_a_missing_or_broken_file_means_none(tmp_path):
    assert patch.read_sizes(tmp_path) is None
    patch.write_sizes(tmp_path, 10, 20, 12.5e6)
    assert patch.read_sizes(tmp_path) == (10, 20, 12_500_000.0)
    (tmp_path / patch.SIZES).write_text("10 20\n")
    assert patch.read_sizes(tmp_path) is None


@pytest.fixture
def volsize():
    from duplicity import config

    kept = config.volsize
    config.volsize = 10 * MB
    yield config
    config.volsize = kept


def test_each_volume_is_sized_from_the_uploads_before_it(tmp_path, volsize):
    calls = []

    def volume_writer(blocks, *args, **kwargs):
        calls.append((args, kwargs))

    write = patch._sizing(volume_writer, tmp_path, {})
    patch.write_sizes(tmp_path, 10, 20, 12.5e6)

    write(iter(()), "vol1", "profile", volsize.volsize)  # nothing uploaded yet: as started
    assert calls[-1] == (("vol1", "profile", 10 * MB), {})
    rates = tmp_path / patch.RATES
    rates.write_text(f"{4 * MB} 0 0.01\n")  # under half a small volume: measures round trips
    write(iter(()), "vol2", "profile", volsize.volsize)
    assert calls[-1][0][-1] == 10 * MB

    rates.write_text(f"{10 * MB} 1 1.5\n")  # 21 MB/s
    write(iter(()), "vol3", "profile", volsize.volsize)
    assert calls[-1][0][-1] == 20 * MB and volsize.volsize == 20 * MB
    write(iter(()), "manifest", "profile", size=2**62)  # not a volume: untouched
    assert calls[-1] == (("manifest", "profile"), {"size": 2**62})

    rates.write_text(f"{10 * MB} 1 1.5\n{20 * MB} 2 6\n{20 * MB} 6 10\n{20 * MB} 10 14\n")  # 5 MB/s
    write(iter(()), "vol4", "profile", volsize.volsize)
    assert calls[-1][0][-1] == 10 * MB and volsize.volsize == 10 * MB


def test_without_the_sizes_file_volsize_stands(tmp_path, volsize):
    calls = []
    write = patch._sizing(lambda blocks, *args: calls.append(args), tmp_path, {})
    (tmp_path / patch.RATES).write_text(f"{10 * MB} 0 0.1\n")
    write(iter(()), "vol1", "profile", volsize.volsize)
    assert calls[-1][-1] == 10 * MB and volsize.volsize == 10 * MB
