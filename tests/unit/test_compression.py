"""``compress_level = "auto"``: the rule, and the sample of the source it reads.

The sample reads real files: a tree of text compresses, one of random bytes does not, a tree
mostly of random bytes with a little text is judged by its bytes (not by its file count), and
what the include/exclude rules leave out is never read."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from cfbackup import compression
from cfbackup.config.model import Profile
from cfbackup.duplicity import commands

WORDS = "backup restore volume swift container chain manifest signature passphrase".split()


def _text(path: Path, size: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    words = rng.choices(WORDS, k=size // 5 + 1)  # words average 7 letters and a space
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(" ".join(words)[:size])


def _random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))


def _profile(
    source: Path, *, level="auto", include=(), exclude=(), gpg_options=None, mode="symmetric"
):
    enc = {"mode": mode, "compress_level": level, "gpg_options": gpg_options, "encrypt_keys": []}
    data = {
        "source": str(source),
        "target": "swift://c/p",
        "include": list(include),
        "exclude": list(exclude),
        "encryption": enc,
    }
    return Profile("p", data)


def test_a_tree_of_text_compresses_and_one_of_random_bytes_does_not(tmp_path):
    for i in range(30):
        _text(tmp_path / "text" / f"d{i % 3}" / f"f{i}.txt", 20_000 + i * 1000, seed=i)
        _random(tmp_path / "random" / f"d{i % 3}" / f"f{i}.bin", 20_000 + i * 1000)
    text, read, _ = compression.sample_ratio(_profile(tmp_path / "text"))
    assert text is not None and text < 0.5 and read > 500_000
    noise, _, _ = compression.sample_ratio(_profile(tmp_path / "random"))
    assert noise is not None and noise > 0.99


def test_the_sample_weighs_bytes_not_files(tmp_path):
    """200 small text files and one large random file: the bytes are random, so no level 1."""
    for i in range(200):
        _text(tmp_path / "src" / "etc" / f"conf{i}", 2_000, seed=i)
    _random(tmp_path / "src" / "media" / "video.bin", 8 * 1024 * 1024)
    ratio, _, _ = compression.sample_ratio(_profile(tmp_path / "src"))
    assert ratio > 0.9
    choice = compression.choose(_profile(tmp_path / "src"), 0.080)
    assert choice.level == 0 and "deflates to" in choice.reason


def test_excluded_files_are_not_sampled(tmp_path):
    src = tmp_path / "src"
    _text(src / "www" / "index.html", 400_000)
    _random(src / "cache" / "blob", 4 * 1024 * 1024)
    _random(src / "www" / "tmp" / "upload", 4 * 1024 * 1024)
    rules = {"exclude": [f"{src}/www/tmp"], "include": [f"{src}/www"]}
    files = compression.selected_files(_profile(src, **rules), deadline=float("inf"))
    assert [Path(p).relative_to(src).as_posix() for p, _, _ in files] == ["www/index.html"]
    ratio, _, _ = compression.sample_ratio(_profile(src, **rules))
    assert ratio < 0.5


def test_an_incremental_is_judged_by_the_files_changed_since_the_last_set(tmp_path):
    """A tree of photos (old) with tonight's database dump (new): the full sees photos, the
    incremental sees the dump; a few changed bytes are too few to judge, so the tree decides."""
    src = tmp_path / "src"
    for i in range(4):
        _random(src / "photos" / f"p{i}.jpg", 2 * 1024 * 1024)
    time.sleep(0.05)
    last_set = time.time()  # the newest set at the target ends here (ctime cannot be set back)
    time.sleep(0.05)
    _text(src / "dumps" / "db.sql", 2 * 1024 * 1024)  # tonight's dump, after the last set
    profile = _profile(src)
    full, _, changed = compression.sample_ratio(profile)
    assert full > 0.7 and not changed
    incremental, _, changed = compression.sample_ratio(profile, since=last_set)
    assert incremental < 0.5 and changed
    choice = compression.choose(profile, 0.080, since=last_set)
    assert choice.level == 1 and "files changed since the last backup" in choice.reason
    (src / "dumps" / "db.sql").write_text("small\n")  # too little changed: the tree decides
    assert compression.sample_ratio(profile, since=last_set)[2] is False


def test_the_rule(tmp_path):
    src = tmp_path / "src"
    for i in range(10):
        _text(src / f"f{i}.txt", 50_000, seed=i)
    auto = _profile(src)
    near = compression.choose(auto, 0.0012)
    assert near.level == 0 and "1.2 ms" in near.reason and "CPU" in near.reason
    far = compression.choose(auto, 0.082)
    assert far.level == 1 and "82 ms" in far.reason
    assert compression.choose(auto, None).level == 0  # not measured: as before "auto"
    assert compression.choose(auto, 0.082, swift=False).level == 0
    assert compression.choose(_profile(src, level=6), 0.0012) == compression.Choice(
        6, "level 6, the profile's"
    )
    pinned = _profile(src, gpg_options="--cipher-algo=AES256 --compress-level=6")
    assert compression.choose(pinned, 0.082).level == 0  # gpg_options's level comes last
    assert compression.choose(_profile(tmp_path / "empty"), 0.082).level == 0


def _config(tmp_path: Path, encryption: str = "") -> Path:
    """A config file with one profile "p" (its passphrase from the environment, read only when
    a command needs it) and ``encryption`` lines added to its encryption table."""
    config = tmp_path / "c.toml"
    config.write_text(
        f'[profiles.p]\nsource = "{tmp_path}"\ntarget = "file://{tmp_path}/t"\n'
        f'[profiles.p.encryption]\npassphrase_env = "T_PASSPHRASE"\n{encryption}'
    )
    return config


def test_the_chosen_level_reaches_duplicity_and_leaves_the_profile_alone(tmp_path):
    from cfbackup.config.load import load_config

    profile = load_config(_config(tmp_path)).profile("p")
    assert profile["encryption"]["compress_level"] == "auto"  # the default
    assert "--gpg-options=--compress-level=0" in commands.backup_argv(profile)
    chosen = compression.with_level(profile, 1)
    assert "--gpg-options=--compress-level=1" in commands.backup_argv(chosen)
    assert profile["encryption"]["compress_level"] == "auto"  # a daemon decides again


@pytest.mark.parametrize(
    "value, problem",
    [(10, "must be at most 9"), ("fast", "expected 'auto' or an integer"), (-1, "at least 0")],
)
def test_compress_level_values(tmp_path, value, problem):
    from cfbackup.config.load import load_config
    from cfbackup.errors import ConfigError

    shown = f'"{value}"' if isinstance(value, str) else value
    with pytest.raises(ConfigError, match=problem):
        load_config(_config(tmp_path, f"compress_level = {shown}\n"))


def test_gpg_options_that_set_the_level_or_turn_compression_off(tmp_path):
    src = tmp_path / "src"
    _text(src / "a.txt", 200_000)
    for options, level, words in [
        ("--compress-algo=none", 0, "turn gpg's compression off"),
        ("--compression-algo uncompressed", 0, "turn gpg's compression off"),
        ("--bzip2-compress-level=9", 0, "set gpg's compression level"),
        ("--compress-algo zlib", 1, "level 1: Swift answers"),  # the algorithm: auto's level
    ]:
        choice = compression.choose(_profile(src, gpg_options=options), 0.080)
        assert (choice.level, words in choice.reason) == (level, True), (options, choice)


def test_rules_duplicity_refuses_are_left_to_duplicity(tmp_path):
    _text(tmp_path / "src" / "a.txt", 100_000)
    bad = _profile(tmp_path / "src", exclude=[f"{tmp_path}/src/[z-a]"])
    assert compression.selected_files(bad, deadline=float("inf")) == []
    assert compression.choose(bad, 0.080).level == 0
