"""``upload_workers``: the rule "auto" follows, the argv a number makes, extra_options winning,
and the values a config may give. Against the real Swift, near and behind the delay relay:
tests/end_to_end/test_upload_workers.py."""

from __future__ import annotations

import json

import pytest

from cfbackup import upload_workers
from cfbackup.config.load import load_config
from cfbackup.duplicity import commands
from cfbackup.errors import ConfigError


def _profile(tmp_path, lines: str = ""):
    config = tmp_path / "c.toml"
    config.write_text(
        f'[profiles.p]\nsource = "{tmp_path}"\ntarget = "swift://c/p"\n{lines}'
        '[profiles.p.swift]\nauth_url = "http://k/auth/v1.0"\nusername = "u"\n'
        'password_env = "T_KEY"\n[profiles.p.encryption]\npassphrase_env = "T_PASSPHRASE"\n'
    )
    return load_config(config).profile("p")


def _concurrency(argv) -> list[str]:
    return [word for word in argv if word.startswith("--concurr")]


def test_auto_is_one_process_across_a_network_and_none_nearby(tmp_path):
    profile = _profile(tmp_path)
    assert profile["upload_workers"] == "auto" and upload_workers.is_auto(profile)  # default
    for seconds, swift, workers, words in [
        (0.021, True, 1, "1: Swift answers in 21 ms, so each volume uploads while the next"),
        (0.010, True, 1, "1: Swift answers in 10 ms"),  # link.FAR: far from there
        (0.0042, True, 0, "0: Swift answers in 4 ms, so building the volumes"),
        (0.0007, True, 0, "0: Swift answers in 0.7 ms"),
        (None, True, 0, "0: how far the Swift is could not be measured"),
        (None, False, 0, "0: the target is not across a network"),
    ]:
        choice = upload_workers.choose(profile, seconds, swift=swift)
        assert choice.workers == workers and choice.reason.startswith(words), (seconds, choice)
        argv = commands.backup_argv(upload_workers.with_workers(profile, choice))
        assert _concurrency(argv) == ([f"--concurrency={workers}"] if workers else []), argv
    assert profile["upload_workers"] == "auto"  # the run's profile: a daemon decides again
    assert _concurrency(commands.backup_argv(profile)) == []  # undecided: none


def test_a_number_pins_it_for_backups_only(tmp_path):
    profile = _profile(tmp_path, "upload_workers = 3\n")
    assert not upload_workers.is_auto(profile)  # no probe needed for it
    choice = upload_workers.choose(profile, 0.001)
    assert (choice.workers, choice.reason) == (3, "3, the profile's")
    argv = commands.backup_argv(upload_workers.with_workers(profile, choice))
    assert argv[argv.index("--volsize=50") + 1] == "--concurrency=3"
    for other in (
        commands.restore_argv(profile, "/r"),
        commands.verify_argv(profile),
        commands.retention_argv(profile, ("remove-all-but-n-full", "2")),
        commands.cleanup_argv(profile),
        commands.list_argv(profile),
    ):
        assert _concurrency(other) == [], other
    none = _profile(tmp_path, "upload_workers = 0\n")
    assert _concurrency(commands.backup_argv(none)) == []
    assert upload_workers.choose(none, 0.080).reason == "0, the profile's"


@pytest.mark.parametrize(
    "extra", ['["--concurrency=2"]', '["--concurrency", "2"]', '["--concurrency=5", "--concurr=2"]']
)
def test_a_concurrency_in_extra_options_wins(tmp_path, extra):
    for setting in ("", "upload_workers = 4\n"):
        profile = _profile(tmp_path, f"extra_options = {extra}\n{setting}")
        assert not upload_workers.is_auto(profile)
        choice = upload_workers.choose(profile, 0.080)
        assert choice.workers is None
        assert choice.reason == "2, extra_options' --concurrency (it wins over upload_workers)"
        argv = commands.backup_argv(upload_workers.with_workers(profile, choice))
        assert _concurrency(argv) == _concurrency(json.loads(extra)), argv  # theirs only


@pytest.mark.parametrize(
    "value, problem",
    [(9, "must be at most 8"), ("many", "expected 'auto' or an integer"), (-1, "at least 0")],
)
def test_upload_workers_values(tmp_path, value, problem):
    shown = f'"{value}"' if isinstance(value, str) else value
    with pytest.raises(ConfigError, match=problem):
        _profile(tmp_path, f"upload_workers = {shown}\n")
