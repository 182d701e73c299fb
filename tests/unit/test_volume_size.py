"""``volsize = "auto"`` (``cfbackup/volume_size.py``): across a network 10 MB volumes first, or
the size the last backup's upload rate gives, then sized by the uploads' rate; 50 MB nearby or
when the distance is unknown; a number pins it; what the quota guard plans with and what
duplicity gets before a backup has decided."""

from __future__ import annotations

import contextlib
import sqlite3

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
    far = volume_size.choose(profile, 0.021)
    assert (far.megabytes, far.by_rate) == (10, True)  # the rate is not known yet
    assert "Swift answers in 21 ms and the link's rate is not known yet" in far.reason
    assert "then 20 MB while uploads run at 100 Mbit/s or more, else 10 MB" in far.reason
    for near in (
        volume_size.choose(profile, 0.002),
        volume_size.choose(profile, None),  # unknown: as nearby
        volume_size.choose(profile, 0.021, swift=False),
        volume_size.choose(profile, 0.002, learned=1e6),  # nearby, whatever the rate
    ):
        assert (near.megabytes, near.by_rate) == (50, False), near


def test_far_starts_from_the_last_backups_rate():
    profile = _profile()
    fast = volume_size.choose(profile, 0.03, learned=176e6 / 8)
    assert (fast.megabytes, fast.by_rate) == (20, True)
    assert "the last backup uploaded at 176 Mbit/s" in fast.reason
    slow = volume_size.choose(profile, 0.08, learned=48e6 / 8)
    assert (slow.megabytes, slow.by_rate) == (10, True)
    assert "the last backup uploaded at 48 Mbit/s" in slow.reason
    assert volume_size.choose(profile, 0.08, learned=volume_size.FAST).megabytes == 20
    pinned = volume_size.choose(_profile(volsize=100), 0.08, learned=1e6)
    assert (pinned.megabytes, pinned.by_rate) == (100, False)


def test_the_learned_rate_is_the_newest_backups_that_measured_one(tmp_path):
    from cfbackup import history

    stat = volume_size.RATE_STAT
    assert volume_size.learned_rate(tmp_path, "p") is None  # no history yet

    def run(action="backup", result="success", profile="p", **stats):
        run_id = history.record_start(tmp_path, profile, action)
        history.record_finish(tmp_path, run_id, 0, result, "", stats)

    run(**{stat: 25_000_000})
    run(result="partial", **{stat: 6_000_000})  # a file unreadable: the uploads still count
    run(result="failure", **{stat: 1})
    run(action="restore", **{stat: 2})
    run(profile="other", **{stat: 3})
    for _ in range(60):  # a month of small incrementals, and status every few minutes
        run(SourceFiles=10)
        run(action="status")
    assert volume_size.learned_rate(tmp_path, "p") == 6_000_000

    # a statistic that is no number JSON knows (a plugin's, a parse gone wrong): stored as
    # null, and a row older code stored as "NaN" is passed over, never a reason to fail
    run(**{stat: float("inf"), "Other": float("nan")})
    assert volume_size.learned_rate(tmp_path, "p") == 6_000_000
    with contextlib.closing(sqlite3.connect(tmp_path / "history.sqlite3")) as conn, conn:
        conn.execute("UPDATE runs SET stats=? WHERE id=(SELECT max(id) FROM runs)", ('{"X": NaN}',))
    assert volume_size.learned_rate(tmp_path, "p") == 6_000_000
    run(**{stat: 9_000_000})
    assert volume_size.learned_rate(tmp_path, "p") == 9_000_000


def test_a_number_pins_it_and_argv_follows_the_choice():
    pinned = _profile(volsize=100)
    assert not volume_size.is_auto(pinned)
    assert volume_size.choose(pinned, 0.08).megabytes == 100
    assert volume_size.planned(pinned) == 100
    auto = _profile()
    assert volume_size.planned(auto) == 10  # the guard plans with the most objects
    assert "--volsize=50" in commands.backup_argv(auto)  # undecided: the nearby size
    far = volume_size.with_size(auto, volume_size.choose(auto, 0.03))
    assert "--volsize=10" in commands.backup_argv(far)
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
