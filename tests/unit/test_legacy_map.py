"""From legacy variables to the native config, as the old scripts made duplicity behave."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cfbackup.config import build_config, legacy
from cfbackup.config.legacy_map import normalize, split_static_options
from cfbackup.config.legacy_vars import MAPPING, NOT_CARRIED
from cfbackup.duplicity import commands
from cfbackup.errors import ConfigError

CORPUS = Path(__file__).resolve().parents[1] / "end_to_end" / "legacy_corpus"
BASE = {"ROOT": "/srv", "DEST": "swift://box", "PASSPHRASE": "pass words"}


def profile_of(variables: dict) -> tuple[dict, list[str]]:
    raw, warnings = normalize({**BASE, **variables})
    return raw["profiles"]["dt-cf-backup"], warnings


def built(variables: dict, sections=None):
    from cfbackup.cli.context import CliContext

    raw, _ = normalize({**BASE, **variables})
    config = build_config(
        raw, path=None, plugin_sections=sections or CliContext().plugin_sections()
    )
    return config.profiles["dt-cf-backup"]


@pytest.mark.parametrize(
    "static, pairs",
    [
        ("--full-if-older-than 14D", [("--full-if-older-than", "14D")]),
        ("--full-if-older-than=14D", [("--full-if-older-than", "14D")]),
        ("--volsize 5 --no-encryption", [("--volsize", "5"), ("--no-encryption", None)]),
        ('--gpg-options "--compress-level=1"', [("--gpg-options", "--compress-level=1")]),
        (
            "--exclude-other-filesystems --num-retries 2",
            [("--exclude-other-filesystems", None), ("--num-retries", "2")],
        ),
        ("--full-if-older 7D -v4", [("--full-if-older-than", "7D"), ("-v", "4")]),
        ("--exclude-globbing-filelist /etc/x", [("--exclude-filelist", "/etc/x")]),
    ],
)
def test_static_options_bound_by_a_space_or_by_equals(static, pairs):
    assert split_static_options(static) == pairs


def test_static_options_go_to_their_keys_and_the_rest_to_extra_options():
    profile, warnings = profile_of(
        {
            "STATIC_OPTIONS": "--full-if-older-than=1M --volsize 20 --s3-use-new-style "
            "--num-retries 2 --exclude-if-present .nobackup --asynchronous-upload "
            "--no-such-option --tempdir /var/tmp/dup"
        }
    )
    assert profile["full_if_older_than"] == "1M" and profile["volsize"] == 20
    assert profile["tempdir"] == "/var/tmp/dup"
    assert profile["extra_options"] == ["--num-retries=2", "--exclude-if-present=.nobackup"]
    text = " ".join(warnings)
    for dropped in ("--s3-use-new-style", "--asynchronous-upload", "--no-such-option"):
        assert dropped in text


def test_selection_options_come_first_as_the_old_command_line_had_them():
    """dt-*-backup.sh put STATIC_OPTIONS before the excludes and includes: a marker file
    excluded a directory even under an include."""
    argv = commands.backup_argv(
        built(
            {
                "STATIC_OPTIONS": "--exclude-if-present .nobackup --num-retries 2",
                "INCLIST": ["/srv/etc/"],
                "EXCLIST": ["**/*.tmp"],
            }
        )
    )
    selection = [a for a in argv if a.startswith(("--exclude", "--include"))]
    assert selection == [
        "--exclude-if-present=.nobackup",
        "--exclude=**/.cfbackup-restore-*",  # restore --force's staging folders
        "--exclude=**/*.tmp",
        "--include=/srv/etc/",
        "--exclude=**",
    ]
    assert argv.index("--num-retries=2") > argv.index("--exclude=**")


@pytest.mark.parametrize(
    "variables, mode, keys, sign",
    [
        ({}, "symmetric", [], None),
        ({"GPG_KEY": "AAAA1111"}, "pubkey", ["AAAA1111"], "AAAA1111"),
        (
            {"GPG_ENC_KEY": "AAAA1111", "GPG_SIGN_KEY": "BBBB2222"},
            "pubkey",
            ["AAAA1111"],
            "BBBB2222",
        ),
        ({"GPG_ENC_KEY": "AAAA1111"}, "symmetric", [], None),  # the script needed both
        ({"GPG_KEY": "foobar_gpg_key"}, "symmetric", [], None),  # the sample's placeholder
        ({"ENCRYPTION": "no", "GPG_KEY": "AAAA1111"}, "none", [], None),
        ({"STATIC_OPTIONS": "--encrypt-key CCCC3333"}, "pubkey", ["CCCC3333"], None),
        ({"STATIC_OPTIONS": "--no-encryption"}, "none", [], None),
    ],
)
def test_the_encryption_is_the_one_the_old_script_gave_duplicity(variables, mode, keys, sign):
    enc = built(variables)["encryption"]
    assert (enc["mode"], enc["encrypt_keys"], enc.get("sign_key")) == (mode, keys, sign)


def test_gpg_options_reach_duplicity_after_the_compression_level():
    argv = commands.backup_argv(built({"GPG_OPTIONS": "--cipher-algo=AES256 --compress-level=6"}))
    assert "--gpg-options=--compress-level=0 --cipher-algo=AES256 --compress-level=6" in argv


def test_retention_rules_of_both_lineages():
    assert commands.retention_rules(built({})) == [("remove-all-but-n-full", "2")]
    zertrin = built(
        {
            "CLEAN_UP_TYPE": "remove-older-than",
            "CLEAN_UP_VARIABLE": "6M",
            "REMOVE_INCREMENTALS_OLDER_THAN": "4",
        }
    )
    assert commands.retention_rules(zertrin) == [
        ("remove-older-than", "6M"),
        ("remove-all-inc-of-but-n-full", "4"),  # after the main retention
    ]
    only = built({"REMOVE_OLDER_THAN": "1Y"})  # no CLEAN_UP_TYPE: no dt-cf default on top
    assert commands.retention_rules(only) == [("remove-older-than", "1Y")]
    none = built({"CLEAN_UP_TYPE": "none"})
    assert none["retention"]["keep_all"] is True
    assert commands.retention_rules(none) == []  # prune removes nothing either


@pytest.mark.parametrize("count", ["0", "-1"])
@pytest.mark.parametrize("kind", ["remove-all-but-n-full", "remove-all-inc-of-but-n-full"])
def test_a_count_below_one_keeps_two_and_warns_like_a_non_number(kind, count):
    """The old script backed up with CLEAN_UP_VARIABLE=0 (only its cleanup failed): the file
    must load, with the default of 2 and a warning naming the variable, not stop every backup
    with "keep_full: must be at least 1"."""
    profile = built({"CLEAN_UP_TYPE": kind, "CLEAN_UP_VARIABLE": count})
    key = "keep_full" if kind == "remove-all-but-n-full" else "keep_incrementals_of_full"
    assert profile["retention"][key] == 2
    _, warnings = profile_of({"CLEAN_UP_TYPE": kind, "CLEAN_UP_VARIABLE": count})
    (warning,) = [w for w in warnings if "CLEAN_UP_VARIABLE" in w]
    assert warning.startswith(f"CLEAN_UP_VARIABLE={count!r} is not a count of at least 1")


@pytest.mark.parametrize("kind", ["none", "keep-forever", ""])
def test_clean_up_types_that_removed_nothing_keep_every_backup(kind):
    """The old script ran ``duplicity $CLEAN_UP_TYPE $CLEAN_UP_VARIABLE``: none (or a type
    duplicity refused) removed nothing, so an explicit prune must not apply the default rule."""
    profile = built({"CLEAN_UP_TYPE": kind})
    assert profile["retention"]["keep_all"] is True
    assert commands.retention_rules(profile) == []
    _, warnings = profile_of({"CLEAN_UP_TYPE": "keep-forever"})
    (warning,) = [w for w in warnings if "CLEAN_UP_TYPE" in w]
    assert "no backup is removed" in warning and "default retention" not in warning


def test_keep_all_cannot_be_set_with_a_rule():
    from cfbackup.cli.context import CliContext

    raw = {"profiles": {"p": {
        "source": "/srv", "target": "file:///tmp/t", "encryption": {"mode": "none"},
        "retention": {"keep_all": True, "keep_full": 2},
    }}}  # fmt: skip
    with pytest.raises(ConfigError, match="retention.keep_all: keeps every backup, so it cannot"):
        build_config(raw, path=None, plugin_sections=CliContext().plugin_sections())


def test_servicenet_and_endpoint_type():
    v1 = built(
        {
            "DEST": "cf+http://box",
            "CLOUDFILES_USERNAME": "u",
            "CLOUDFILES_APIKEY": "k",
            "RACKSPACE_SERVICENET": "True",
        }
    )
    assert v1["swift"]["interface"] == "internal" and v1["swift"]["auth_version"] == "1"
    v3, _ = profile_of(
        {
            "SWIFT_AUTHVERSION": "3",
            "SWIFT_AUTHURL": "https://k/v3",
            "SWIFT_ENDPOINT_TYPE": "internalURL",
        }
    )
    assert v3["swift"]["interface"] == "internal"
    public, _ = profile_of({"SWIFT_AUTHURL": "https://k/v1", "RACKSPACE_SERVICENET": "False"})
    assert "interface" not in public["swift"]


def test_email_goes_to_sendmail_when_there_is_one(tmp_path, monkeypatch):
    found = tmp_path / "sendmail"
    found.write_text("")
    found.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    mail = {"EMAIL_TO": "a@x.invalid, b@x.invalid", "EMAIL_FROM": "me@x.invalid"}
    notify, warnings = profile_of({**mail, "EMAIL_FAILURE_ONLY": "yes"})
    assert notify["notify"]["email"] == {
        "to": ["a@x.invalid", "b@x.invalid"],
        "from": "me@x.invalid",
        "when": "failure",
        "transport": "sendmail",
        "sendmail_command": f"{found} -t",
    }
    assert not any("EMAIL_TO" in w or "sendmail" in w for w in warnings)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    if Path("/usr/sbin/sendmail").exists() or Path("/usr/lib/sendmail").exists():
        return  # this machine has an MTA: the fallback cannot be seen here
    notify, warnings = profile_of(mail)
    assert notify["notify"]["email"]["when"] == "always"
    assert "transport" not in notify["notify"]["email"]
    assert any("EMAIL_TO: there is no sendmail" in w and "notify.email" in w for w in warnings)


# what shows that a variable whose value is transformed was carried over
WITNESS = {
    "EXDEVICEFILES": ("1", "--exclude-device-files"),
    "ENCRYPTION": ("yes", '"mode": "pubkey"'),
    "STATIC_OPTIONS": ("--num-retries 2", "--num-retries=2"),
    "CLEAN_UP_TYPE": ("remove-older-than", "remove_older_than"),
    "CLEAN_UP_VARIABLE": ("6M", '"6M"'),
    "REMOVE_INCREMENTALS_OLDER_THAN": ("3", '"keep_incrementals_of_full": 3'),
    "VERBOSITY": ("-v4", '"notice"'),
    "RACKSPACE_SERVICENET": ("True", '"internal"'),
    "SWIFT_ENDPOINT_TYPE": ("internalURL", '"internal"'),
    "EMAIL_TO": ("ops@x.invalid", "ops@x.invalid"),
    "EMAIL_FAILURE_ONLY": ("yes", '"failure"'),
    "MAIL": ("mailx", '"email"'),
    "ROOT": ("/srv/", '"/srv"'),
    "DEST": ("cf+http://box", "swift://box"),
    "INCLIST": (["/srv/a"], "/srv/a"),
    "EXCLIST": (["/srv/b"], "/srv/b"),
}


def test_every_variable_is_carried_over_or_named():
    """A file setting every variable the old scripts read: each one is in the profile (its
    value, or what it became) or named in a warning."""
    values = {name: f"value-of-{name.lower()}" for name in (*MAPPING, *NOT_CARRIED)}
    values.update({name: value for name, (value, _) in WITNESS.items()})
    raw, warnings = normalize(values)
    dumped = json.dumps(raw)
    for name, value in values.items():
        shown = WITNESS[name][1] if name in WITNESS else value
        assert shown in dumped or any(name in w for w in warnings), name


PUBLISHED = Path(__file__).parent / "legacy_published"  # real-world configs, as published


@pytest.mark.parametrize(
    "path",
    [*sorted(CORPUS.iterdir()), *sorted(PUBLISHED.glob("*.conf"))],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_corpus_files_lose_nothing_silently(path, tmp_path):
    conf = tmp_path / path.name
    conf.write_bytes(path.read_bytes())
    read = legacy.read_file(conf)
    raw, warnings = normalize(read.variables)
    dumped = json.dumps(raw, ensure_ascii=False)
    for name, value in read.variables.items():
        if value in ("", []):
            continue
        if any(name in w for w in warnings):
            continue
        if name.startswith(("MAIL", "EMAIL_")) and not read.variables.get("EMAIL_TO"):
            continue  # without EMAIL_TO the old script mailed nothing either
        if name == "STATIC_OPTIONS":  # each option went to a key, to extra_options, or a warning
            for option, _ in split_static_options(value):
                key = option.lstrip("-").replace("-", "_")
                assert key in dumped or option in dumped or any(option in w for w in warnings)
            continue
        key = MAPPING.get(name, ("",))[0].split(",")[0].split(".")[-1]
        assert key and key in dumped, name


def test_a_loose_legacy_file_loads_with_the_warning_and_native_still_refuses(tmp_path):
    conf = tmp_path / "dt.conf"
    conf.write_text("ROOT=/srv\nDEST=file:///t\nPASSPHRASE=secret-words\n")
    conf.chmod(0o644)
    from cfbackup.config import load_config

    config = load_config(conf)
    assert config.permission_warning == (
        f"{conf} holds secrets (passphrase, API key) and is mode 0644, readable by other "
        f"users: run chmod 600 {conf}"
    )
    assert config.permission_warning in config.warnings
    native = tmp_path / "c.toml"
    native.write_text(
        '[profiles.p]\nsource = "/"\ntarget = "file:///t"\n'
        '[profiles.p.encryption]\npassphrase = "inline-pass"\n'
    )
    native.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config(native)


def test_a_plugin_switched_off_does_not_stop_a_legacy_run():
    raw, _ = normalize({**BASE, "EMAIL_TO": "ops@x.invalid"})
    config = build_config(raw, path=None, kind="legacy", plugin_sections={})
    assert "notify" not in config.profiles["dt-cf-backup"].data
    assert "the notify settings are not carried over: the notify plugin is not loaded" in (
        config.warnings
    )


def test_migrate_with_a_plugin_switched_off_writes_a_config_that_loads(tmp_path):
    import os
    import subprocess
    import sys

    conf = tmp_path / "dt.conf"
    conf.write_text("ROOT=/srv\nDEST=file:///t\nEMAIL_TO=ops@x.invalid\nPASSPHRASE=pass-words\n")
    conf.chmod(0o600)
    out = tmp_path / "native.toml"
    env = {**os.environ, "CFBACKUP_LOAD_PLUGINS": "quota_guard", "HOME": str(tmp_path)}
    cfbackup = Path(sys.executable).parent / "cfbackup"
    done = subprocess.run(
        [str(cfbackup), "config", "migrate", str(conf), "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "the notify plugin is not loaded" in done.stderr and "[profiles" in out.read_text()
    assert "notify" not in out.read_text().split("\n\n", 1)[1]  # only in the warning comment


@pytest.mark.parametrize(
    ("given", "level"),
    [("-v3", "notice"), ("-v2", "warning"), ("-v4", "notice"), ("-v5", "info"),
     ("--verbosity=notice", "notice"), ("-vw", "warning")],
)  # fmt: skip
def test_verbosity_is_duplicity_s_level(given, level):
    """duplicity 3.2 numbers its levels 0 error, 2 warning, 3 notice, 5 info, 9 debug (log.py):
    the old scripts' -v3 showed duplicity's notices."""
    from duplicity import log

    assert log.NOTICE == 3 and log.WARNING == 2  # the numbers the mapping follows
    profile, warnings = profile_of({"VERBOSITY": given, "EXCLIST": []})
    assert profile["verbosity"] == level and not warnings, warnings
