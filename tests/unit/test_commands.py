"""duplicity command lines are pure data: exact argv tuples, no secret ever in them."""

from __future__ import annotations

import pytest

from cfbackup.config import build_config
from cfbackup.duplicity import commands
from cfbackup.duplicity.environment import duplicity_environment


def _profile(**extra):
    profile = {"source": "/srv", "target": "swift://box/host", "archive_dir": "/a", **extra}
    profile.setdefault("encryption", {"passphrase_env": "T_PASS"})
    profile.setdefault(
        "swift", {"auth_url": "http://k/auth/v1.0", "username": "u", "password_env": "T_KEY"}
    )
    return build_config({"profiles": {"p": profile}}, path=None).profiles["p"]


COMMON = (
    "--num-retries=3",
    "--backend-retry-delay=10",
    "--archive-dir=/a",
    "--name=p",
    "--verbosity=notice",
    "--gpg-options=--compress-level=0",
)


def test_backup_argv():
    argv = commands.backup_argv(_profile(include=["/srv/a"], exclude=["/srv/a/tmp"]))
    assert argv == (
        "duplicity",
        "backup",
        *COMMON,
        "--exclude=**/.cfbackup-restore-*",  # restore --force's staging folders
        "--exclude=/srv/a/tmp",
        "--include=/srv/a",
        "--exclude=**",
        "--full-if-older-than=14D",
        "--volsize=50",
        "/srv",
        "swift://box/host",
    )


def test_full_dry_run_and_log_fd():
    argv = commands.backup_argv(_profile(), full=True, dry_run=True, log_fd=7)
    assert argv[:2] == ("duplicity", "full")
    assert "--log-fd=7" in argv and "--dry-run" in argv
    assert not any(a.startswith("--full-if-older-than") for a in argv)


def test_no_includes_means_no_catch_all_exclude():
    argv = commands.backup_argv(_profile(exclude=["**/.cache"]))
    assert "--exclude=**/.cache" in argv and "--exclude=**" not in argv


def test_option_values_starting_with_dash_are_bound():
    argv = commands.backup_argv(
        _profile(exclude=["/srv/-weird"], extra_options=["--num-retries=3"])
    )
    assert "--gpg-options=--compress-level=0" in argv  # duplicity 3 needs the = binding
    assert "--exclude=/srv/-weird" in argv and argv[-3] == "--num-retries=3"


def test_restore_verify_list_argv():
    profile = _profile()
    assert commands.restore_argv(profile, "/out", path="etc/hosts", time="3D") == (
        "duplicity",
        "restore",
        *COMMON,
        "--path-to-restore=etc/hosts",
        "--time=3D",
        "swift://box/host",
        "/out",
    )
    assert commands.verify_argv(profile, compare_data=True)[-2:] == ("swift://box/host", "/srv")
    assert "--compare-data" in commands.verify_argv(profile, compare_data=True)
    assert commands.list_argv(profile, time="2026-01-01")[:2] == ("duplicity", "list-current-files")


def test_encryption_modes():
    none = _profile(encryption={"mode": "none"})
    assert "--no-encryption" in commands.backup_argv(none)
    pub = _profile(
        encryption={"mode": "pubkey", "encrypt_keys": ["AB", "CD"], "sign_key": "0x89abcdef"}
    )
    argv = commands.backup_argv(pub)
    # sign_key as duplicity's restore compares it with a signature's key ID (config/load.py)
    assert "--encrypt-key=AB" in argv and "--encrypt-key=CD" in argv
    assert "--sign-key=89ABCDEF" in argv


def test_retention_rules():
    assert commands.retention_rules(_profile()) == [("remove-all-but-n-full", "2")]
    profile = _profile(retention={"remove_older_than": "6M", "keep_incrementals_of_full": 1})
    assert commands.retention_rules(profile) == [
        ("remove-older-than", "6M"),
        ("remove-all-inc-of-but-n-full", "1"),
    ]
    argv = commands.retention_argv(profile, ("remove-older-than", "6M"))
    assert argv[:3] == ("duplicity", "remove-older-than", "6M") and "--force" in argv
    # a dry run: duplicity only lists, in a notice the verbosity must let through
    dry = commands.retention_argv(profile, ("remove-older-than", "6M"), dry_run=True)
    assert "--force" not in dry and "--verbosity=notice" in dry


def test_secrets_go_to_the_environment_only(monkeypatch):
    monkeypatch.setenv("T_PASS", "pass-Phrase-1")
    monkeypatch.setenv("T_KEY", "api-Key-2")
    profile = _profile()
    env = duplicity_environment(profile)
    assert env["PASSPHRASE"] == "pass-Phrase-1"
    assert env["SWIFT_PASSWORD"] == env["ST_KEY"] == "api-Key-2"
    assert env["ST_AUTH"] == env["SWIFT_AUTHURL"] and env["SWIFT_AUTHVERSION"] == "1"
    for argv in (
        commands.backup_argv(profile),
        commands.restore_argv(profile, "/o"),
        *[commands.retention_argv(profile, r) for r in commands.retention_rules(profile)],
    ):
        assert "pass-Phrase-1" not in " ".join(argv) and "api-Key-2" not in " ".join(argv)


def test_public_keys_without_a_passphrase_get_an_empty_one(monkeypatch):
    """An unprotected secret key (a legacy GPG_KEY with PASSPHRASE=""): duplicity must find
    PASSPHRASE (and SIGN_PASSPHRASE for a sign_key) empty, as dt-cf-backup.sh exported it, or
    its restore and signed incrementals ask on a terminal that cron does not have."""
    monkeypatch.setenv("T_KEY", "api-Key-2")
    keys = {"mode": "pubkey", "encrypt_keys": ["0x" + "A" * 16]}
    env = duplicity_environment(_profile(encryption=keys))
    assert env["PASSPHRASE"] == "" and "SIGN_PASSPHRASE" not in env
    env = duplicity_environment(_profile(encryption={**keys, "sign_key": "0x" + "B" * 16}))
    assert env["PASSPHRASE"] == env["SIGN_PASSPHRASE"] == ""
    monkeypatch.setenv("T_PASS", "pass-Phrase-1")  # a configured passphrase is given as it is
    env = duplicity_environment(_profile(encryption={**keys, "passphrase_env": "T_PASS"}))
    assert env["PASSPHRASE"] == "pass-Phrase-1"
    env = duplicity_environment(_profile(encryption={"mode": "none"}))
    assert "PASSPHRASE" not in env and "SIGN_PASSPHRASE" not in env


def test_keystone_v3_environment(monkeypatch):
    monkeypatch.setenv("T_PASS", "x" * 8)
    monkeypatch.setenv("T_KEY", "y" * 8)
    profile = _profile(
        swift={
            "auth_version": "3",
            "auth_url": "https://k/v3",
            "username": "u",
            "password_env": "T_KEY",
            "project_name": "p",
            "user_domain_name": "Default",
            "region_name": "R1",
        }
    )
    env = duplicity_environment(profile)
    assert env["SWIFT_AUTHVERSION"] == "3" and env["SWIFT_PROJECT_NAME"] == "p"
    assert env["SWIFT_USER_DOMAIN_NAME"] == "Default" and env["SWIFT_REGIONNAME"] == "R1"
    assert "ST_KEY" not in env


def test_retry_policy_is_duplicitys_own_with_the_profiles_options_winning():
    """The tries and pause cfbackup's own downloads (restore prefetch) use: the ones every
    duplicity command gets, unless the profile's extra_options set them (either form, the last
    one wins, as on duplicity's command line)."""
    assert commands.retry_policy(_profile()) == (3, 10.0)
    options = ["--num-retries=5", "--backend-retry-delay", "30", "--num-retries", "2"]
    assert commands.retry_policy(_profile(extra_options=options)) == (2, 30.0)
    assert commands.retry_policy(_profile(extra_options=["--num-retries=0"])) == (1, 10.0)


@pytest.mark.parametrize(
    "written",
    ["0x89ABCDEF", "89abcdef", "0X89ABCDEF", "1234 5678 9ABC DEF0 1234  5678 9ABC DEF0 89AB CDEF"],
)
def test_sign_key_is_spelled_as_duplicity_compares_it(written):
    """duplicity's restore compares sign_key as given with the end of each signature's key ID
    (upper-case hex): "0x89ABCDEF" or lower case made every restore of a signed backup fail."""
    pub = _profile(encryption={"mode": "pubkey", "encrypt_keys": ["AB"], "sign_key": written})
    wanted = "".join(written.split()).upper().removeprefix("0X")
    assert pub["encryption"]["sign_key"] == wanted
    assert f"--sign-key={wanted}" in commands.backup_argv(pub)


@pytest.mark.parametrize("written", ["backup@example.com", "ABCDEF", "0xGHIJKLMN"])
def test_a_sign_key_that_is_no_key_id_is_a_config_error(written):
    from cfbackup.errors import ConfigError

    with pytest.raises(ConfigError, match="is not a key ID or fingerprint"):
        _profile(encryption={"mode": "pubkey", "encrypt_keys": ["AB"], "sign_key": written})


@pytest.mark.parametrize(
    ("verbosity", "verify", "backup", "restore"),
    [
        ("error", "notice", "warning", "error"),
        ("warning", "notice", "warning", "warning"),
        ("info", "info", "info", "info"),
    ],
)
def test_a_quiet_profile_still_gets_the_records_cfbackup_reads(verbosity, verify, backup, restore):
    """Before: verify at verbosity warning lost duplicity's "Verify complete" and "Difference
    found" notices (a difference was exit 7, "no output"), and a backup at verbosity error lost
    the warnings naming unreadable files (exit 0 and retention, not exit 9). The profile's
    verbosity is never lowered."""
    profile = _profile(verbosity=verbosity)
    assert f"--verbosity={verify}" in commands.verify_argv(profile)
    assert f"--verbosity={backup}" in commands.backup_argv(profile)
    assert f"--verbosity={restore}" in commands.restore_argv(profile, "/r")
