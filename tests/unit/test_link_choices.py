"""``link_choices``: the three "auto" settings a backup decides from the link, applied together
to the profile duplicity's command line is built from (what ``actions/backup.py`` runs and the
benchmark's raw duplicity copies)."""

from __future__ import annotations

from cfbackup import link_choices, volume_size
from cfbackup.config.load import load_config
from cfbackup.duplicity import commands


def _profile(tmp_path, lines: str = "", encryption: str = ""):
    config = tmp_path / "c.toml"
    config.write_text(
        f'[profiles.p]\nsource = "{tmp_path}"\ntarget = "swift://c/p"\n{lines}'
        '[profiles.p.swift]\nauth_url = "http://k/auth/v1.0"\nusername = "u"\n'
        'password_env = "T_KEY"\n[profiles.p.encryption]\npassphrase_env = "T_PASSPHRASE"\n'
        + encryption
    )
    return load_config(config).profile("p")


def _options(argv, *names) -> list[str]:
    return [w for w in argv if w.startswith(names)]


def test_far_and_near_choose_all_three_and_apply_them_together(tmp_path):
    profile = _profile(tmp_path)
    assert link_choices.is_auto(profile)  # the defaults

    far = link_choices.choose(profile, 0.03, learned=150e6 / 8)
    argv = commands.backup_argv(far.applied(profile))
    assert _options(argv, "--volsize", "--concurrency") == ["--volsize=20", "--concurrency=1"]
    assert far.size.by_rate and far.workers.workers == 1

    near = link_choices.choose(profile, 0.002, learned=150e6 / 8)
    argv = commands.backup_argv(near.applied(profile))
    assert _options(argv, "--volsize", "--concurrency") == ["--volsize=50"]
    assert "--compress-level=0" in " ".join(argv)  # nearby: building volumes takes the time
    assert not near.size.by_rate
    assert volume_size.is_auto(profile)  # the profile itself keeps "auto"


def test_nothing_auto_needs_no_probe_and_changes_nothing(tmp_path):
    pinned = _profile(tmp_path, "volsize = 30\nupload_workers = 0\n", "compress_level = 6\n")
    assert not link_choices.is_auto(pinned)
    chosen = link_choices.choose(pinned, 0.08, learned=1e6)
    assert chosen.applied(pinned) is pinned
    assert [c.reason for c in (chosen.compression, chosen.workers, chosen.size)] == [
        "level 6, the profile's",
        "0, the profile's",
        "30 MB, the profile's",
    ]
