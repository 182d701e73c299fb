"""Which volumes verify --read-data reads and which files a drill restores (pure functions)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from cfbackup import sampling


def test_subsets_parse_like_restics():
    assert sampling.parse_subset(None).kind == "all"
    assert sampling.parse_subset("all").kind == "all"
    assert sampling.parse_subset("2/7") == sampling.Subset("slice", n=2, t=7)
    assert sampling.parse_subset("next/7") == sampling.Subset("slice", n=None, t=7)
    assert sampling.parse_subset("12.5%") == sampling.Subset("percent", percent=12.5)
    assert sampling.parse_subset("500M") == sampling.Subset("size", size=500_000_000)
    assert sampling.parse_subset("1GiB") == sampling.Subset("size", size=2**30)
    for bad, why in (
        ("0/3", "n runs from 1"),
        ("4/3", "n runs from 1"),
        ("0%", "above 0"),
        ("101%", "at most 100"),
        ("main", "not a subset"),
    ):
        with pytest.raises(ValueError, match=why):
            sampling.parse_subset(bad)


def test_t_slices_cover_every_volume_exactly_once():
    names = [f"duplicity-full.20261204T1{i:05d}Z.vol{i}.difftar.gpg" for i in range(1, 400)]
    for t in (1, 3, 7):
        seen = Counter()
        for n in range(1, t + 1):
            chosen = sampling.choose_volumes(
                names, sampling.Subset("slice", n=n, t=t), random.Random(1), key=str, size=len
            )
            seen.update(chosen)
            if t > 1:  # a slice is neither empty nor everything
                assert 0 < len(chosen) < len(names)
        assert seen == Counter(names)
    # the same slice every time, whatever the seed; a new volume changes no one else's slice
    one = sampling.choose_volumes(
        names, sampling.Subset("slice", n=2, t=7), random.Random(5), key=str, size=len
    )
    more = sampling.choose_volumes(
        names + ["new.vol"], sampling.Subset("slice", n=2, t=7), random.Random(9), key=str, size=len
    )
    assert set(one) <= set(more)


def test_random_subsets_are_repeatable_from_their_seed():
    names = [f"v{i}" for i in range(100)]
    pick = lambda seed, subset: sampling.choose_volumes(  # noqa: E731
        names, subset, random.Random(seed), key=str, size=lambda n: 10
    )
    ten = sampling.Subset("percent", percent=10)
    assert len(pick(1, ten)) == 10 and pick(1, ten) == pick(1, ten) and pick(1, ten) != pick(2, ten)
    assert sum(10 for _ in pick(3, sampling.Subset("size", size=95))) == 100  # reaches the size


def test_samples_parse():
    assert sampling.parse_sample("2%") == sampling.Sample("percent", 2)
    assert sampling.parse_sample("200M") == sampling.Sample("size", 200_000_000)
    assert sampling.parse_sample("50 files") == sampling.Sample("count", 50)
    assert sampling.parse_sample("50") == sampling.Sample("count", 50)
    assert sampling.parse_sample("1 file") == sampling.Sample("count", 1)
    with pytest.raises(ValueError, match="not a sample"):
        sampling.parse_sample("lots")


def test_the_sample_holds_large_and_small_files():
    """20,000 small files and 3 large ones: a 1% sample by count has a large one every time
    (uniform picking would have one in 3% of the runs), and still mostly small files."""
    files = [(f"small{i}", 2000 + i % 500) for i in range(20_000)]
    files += [(f"large{i}", 5 * 2**30 + i) for i in range(3)]
    for seed in range(10):
        picked = sampling.pick_files(
            files, sampling.Sample("percent", 1), random.Random(seed), size=lambda f: f[1]
        )
        assert len(picked) == 201 and len(set(picked)) == 201
        large = sum(name.startswith("large") for name, _ in picked)
        assert 1 <= large <= 3


def test_a_size_sample_stays_within_its_size():
    files = [(f"f{i}", 1000 * (i % 50 + 1)) for i in range(2000)]
    picked = sampling.pick_files(
        files, sampling.Sample("size", 1_000_000), random.Random(3), size=lambda f: f[1]
    )
    total = sum(size for _, size in picked)
    assert 900_000 < total <= 1_000_000
    # one file larger than the whole size still gets checked
    big = sampling.pick_files(
        [("big", 10**9)], sampling.Sample("size", 10), random.Random(1), size=lambda f: f[1]
    )
    assert big == [("big", 10**9)]
