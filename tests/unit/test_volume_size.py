"""``volsize = "auto"`` (``cfbackup/volume_size.py``): 20 MB volumes across a network, 50 MB
nearby or when the distance is unknown; a number pins it; what the quota guard plans with and
what duplicity gets before a backup has decided."""

from __future__ import annotations

import pytest

from cfbackup import volume_size
from cfbackup.config.load import build_config
from cfbackup.duplicity import commands


def _profile(**extra):
    config = build_config(
        {
            "state_dir": "/tmp/x",
            "profiles": {
                "p": {
                    "source": "/srv",
                    "target": "swift://c",
                    "encryption": {"mode": "none"},
                    **extra,
                }
            },
        },
        path=None,
    )
    return config.profile("p")


def test_auto_is_the_default_and_decides_from_the_round_trip():
    profile = _profile()
    assert volume_size.is_auto(profile)
    assert volume_size.choose(profile, 0.021).megabytes == 20
    assert volume_size.choose(profile, 0.002).megabytes == 50
    assert volume_size.choose(profile, None).megabytes == 50  # unknown: as nearby
    assert volume_size.choose(profile, 0.021, swift=False).megabytes == 50
    assert "Swift answers in 21 ms" in volume_size.choose(profile, 0.021).reason


def test_a_number_pins_it_and_argv_follows_the_choice():
    pinned = _profile(volsize=100)
    assert not volume_size.is_auto(pinned)
    assert volume_size.choose(pinned, 0.08).megabytes == 100
    assert volume_size.planned(pinned) == 100
    auto = _profile()
    assert volume_size.planned(auto) == 20  # the guard plans with the most objects
    assert "--volsize=50" in commands.backup_argv(auto)  # undecided: the nearby size
    far = volume_size.with_size(auto, volume_size.choose(auto, 0.03))
    assert "--volsize=20" in commands.backup_argv(far)
    assert volume_size.is_auto(auto)  # the run's profile stays "auto"


@pytest.mark.parametrize("bad", ["big", 0, -5])
def test_only_auto_or_a_positive_number(bad):
    from cfbackup.errors import ConfigError

    with pytest.raises(ConfigError):
        _profile(volsize=bad)


def test_extra_options_volsize_wins_and_is_planned_with():
    profile = _profile(extra_options=["--volsize", "100"])
    assert not volume_size.is_auto(profile)
    choice = volume_size.choose(profile, 0.03)
    assert choice.megabytes == 100 and "extra_options' --volsize" in choice.reason
    assert volume_size.planned(profile) == 100
    argv = commands.backup_argv(volume_size.with_size(profile, choice))
    assert argv.index("--volsize=50") < argv.index("--volsize")  # duplicity takes the last
