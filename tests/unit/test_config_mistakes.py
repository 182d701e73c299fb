"""The mistakes a sysadmin makes in a config in a hurry: each is refused (exit 3) or read as
meant, with one message naming the key where it is written, the cause and the fix. Those of a
legacy ``~/.dt-cf-backup.conf`` file are in ``test_legacy_config_mistakes.py``."""

from __future__ import annotations

import os
import types
from pathlib import Path

import pytest

from cfbackup import stores
from cfbackup.config import build_config
from cfbackup.errors import ConfigError, ExitCode


def problems_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as error:
        build_config(raw, path=None)
    assert error.value.exit_code == ExitCode.CONFIG
    return error.value.message


def web(**keys) -> dict:
    return {"profiles": {"web": {"source": "/srv", "target": "file:///b", **keys}}}


def _home() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_dir


@pytest.mark.parametrize(
    "target, folder, note",
    [
        ("file://backups/web", "backups/web", ""),
        ("FILE://b", "b", ""),
        ("file://./b", "b", ""),
        ("file://~/b", "~/b", " (duplicity does not expand ~: it reads a folder named ~)"),
        (
            "file://localhost/srv/b",
            "localhost/srv/b",
            " (duplicity reads localhost as a folder's name, not as this machine)",
        ),
    ],
)
def test_a_relative_file_target_names_the_folders_its_backups_went_to(
    tmp_path, monkeypatch, target, folder, note
):
    """duplicity reads file://backups/web under the folder cfbackup runs in: the message said
    to write file:///backups/web, a folder at / (empty: the next backup starts a new chain)."""
    monkeypatch.chdir(tmp_path)
    message = problems_of(web(target=target))
    here = os.path.normpath(f"{tmp_path}/{folder}")
    cron = os.path.normpath(f"{_home()}/{folder}")
    assert message == (
        f"config: 1 problem(s) in the config: profiles.web.target: {target} is a relative "
        f"path{note}, which duplicity reads under the folder cfbackup runs in, so backups so far "
        f"are under the folder each run started in: file://{here} (run in {tmp_path}), "
        f"file://{cron} (from cron: the user's home) or file:///{folder.removeprefix('./')} (from "
        "systemd): write file:// and the absolute path of the folder that holds them "
        "(file:///ABSOLUTE/PATH)."
    )


@pytest.mark.parametrize(
    "target",
    [
        "file://backups/web",
        "file://localhost/srv/b",
        "file://~/b",
        "file://./b",
        "file://b%20c",  # the host part as written: a folder named b%20c
        "file://backups/web%20x",  # the path decoded: web x
    ],
)
def test_the_relative_folder_is_the_one_duplicity_reads(target):
    """What the message says is where duplicity's local backend writes (ParsedUrl folds the
    host into the path for file://; localbackend takes path[2:] relative to its folder)."""
    from duplicity.backend import ParsedUrl

    from cfbackup.config.file_target import relative_folder

    assert relative_folder(target) == ParsedUrl(target).path[2:]
    assert relative_folder("file:///srv/b") is None
    # and where cfbackup's own checks read a legacy profile's backups (retention, kept manifests)
    read = stores.open_store(types.SimpleNamespace(target=target)).folder
    assert read == Path(ParsedUrl(target).path[2:])


def test_a_file_target_naming_no_folder_is_refused(tmp_path, monkeypatch):
    message = problems_of(web(target="file://"))
    assert message.endswith(
        "profiles.web.target: file:// names no folder (duplicity refuses it): write file:// "
        "and the absolute path of a folder (file:///ABSOLUTE/PATH)."
    )


def test_a_legacy_relative_dest_warns_and_backs_up_as_the_old_script_did(tmp_path, monkeypatch):
    """dt-cf-backup.sh ran from cron in the user's home with DEST=file://backups/web for years:
    refused, every scheduled run stopped on the day cfbackup replaced it."""
    from cfbackup.config import load_config

    monkeypatch.chdir(tmp_path)
    conf = tmp_path / "dt.conf"
    conf.write_text("ROOT=/srv\nDEST=file://backups/web\nPASSPHRASE=x\n")
    conf.chmod(0o600)
    config = load_config(conf)
    assert config.profile(None).target == "file://backups/web"  # unchanged: where it went
    home = _home()
    assert (
        f"{conf}: DEST=file://backups/web is a relative path, which duplicity reads under the "
        f"folder cfbackup runs in: run here it is file://{tmp_path}/backups/web, and by the old "
        f"script from cron (your home) it was file://{home}/backups/web: write "
        f"DEST=file://{home}/backups/web (or the absolute path of the folder that holds your "
        "backups) so that every run and restore finds them"
    ) in config.warnings


def test_migrating_a_legacy_relative_dest_writes_where_the_old_script_put_the_backups(
    tmp_path, monkeypatch, capsys
):
    """config migrate of DEST=file://backups/web stopped on the native config's refusal of a
    relative file:// target (exit 3), a file the legacy run reads with a warning. It now writes
    the absolute folder the old script from cron (the user's home) backed up to, and says so
    in the file and on stderr, with the other folder a run typed here would have used."""
    import tomllib

    from cfbackup.cli import main

    monkeypatch.chdir(tmp_path)
    conf = tmp_path / "dt.conf"
    conf.write_text("ROOT=/srv\nDEST=file://backups/web\nPASSPHRASE=x\nEXCLIST=()\n")
    conf.chmod(0o600)
    written = tmp_path / "config.toml"
    assert main(["config", "migrate", str(conf), "-o", str(written)]) == 0
    home = _home()
    text = written.read_text()
    assert tomllib.loads(text)["profiles"]["dt-cf-backup"]["target"] == (
        f"file://{home}/backups/web"
    )
    said = (
        f"DEST=file://backups/web is a relative path: migrated as target = "
        f'"file://{home}/backups/web", the folder the old script put its backups in from cron '
        f"(your home; run here it was file://{tmp_path}/backups/web): if your backups are "
        "elsewhere, put the absolute path of their folder there"
    )
    assert f"# warning: {said}\n" in text, text
    err = capsys.readouterr().err
    assert f"cfbackup: warning: {said}" in err, err
    assert "DEST=file://backups/web (or" not in text + err  # the legacy run's "write DEST="


@pytest.mark.parametrize(
    "dest", ["swift://backups", "cf+http://backups", "file:///srv/backups", "sftp://host/b"]
)
def test_migrating_any_other_legacy_dest_keeps_it(dest):
    """Only a relative file:// DEST is moved under the home: the first version read the name of
    a swift:// or cf+http:// container as a relative folder and migrated the published sample
    configs to file:///root/CONTAINER (the legacy corpus test caught it)."""
    from cfbackup.config.file_target import legacy_migrated, relative_folder

    assert legacy_migrated(dest) is None
    assert relative_folder(dest) is None


def test_an_absolute_file_target_is_accepted():
    config = build_config(web(target="file:///srv/backups/web"), path=None)
    assert config.profiles["web"].target == "file:///srv/backups/web"


@pytest.mark.parametrize(
    "target, fix",
    [
        ("/tmp/rv/target", "write file:///tmp/rv/target for a local folder"),
        ("file:/tmp/rv/target", "write file:///tmp/rv/target"),
        ("backups", "write swift://backups for a Swift container"),
        ("swift:backups", "write swift://backups."),  # was swift://swift:backups
        ("swift:/backups/web", "write swift://backups/web."),
        (
            "cf+http:backups",
            'write swift://backups with [swift] auth_version = "1" (cf+http is legacy).',
        ),
        ("rel/dir", "write swift://CONTAINER for Swift, or file:///ABSOLUTE/PATH"),
    ],
)
def test_a_target_without_a_scheme_names_the_url_it_means(target, fix):
    message = problems_of(web(target=target))
    assert f"profiles.web.target: {target!r} is not a URL: {fix}" in message


@pytest.mark.parametrize("version", [1, 3, "3"])
def test_auth_version_is_read_as_a_number_too(version):
    """The reference shows `1` | `3`: auth_version = 3 (a TOML integer) means "3"."""
    config = build_config(web(swift={"auth_version": version}), path=None)
    assert config.profiles["web"]["swift"]["auth_version"] == str(version)


@pytest.mark.parametrize("version", [2, True, 3.0])
def test_auth_version_other_numbers_are_still_refused(version):
    message = problems_of(web(swift={"auth_version": version}))
    assert "profiles.web.swift.auth_version:" in message


def test_a_secret_command_given_as_a_list_says_to_write_one_string():
    message = problems_of(web(encryption={"passphrase_command": ["pass", "show", "FAKE-word-Q7"]}))
    assert (
        "profiles.web.encryption.passphrase_command: expected one string, got a list: write the "
        'command as one string, such as passphrase_command = "pass show backup"'
    ) in message
    assert "FAKE-word-Q7" not in message  # the command's words may hold a secret


def two_profiles(defaults: dict, **web_keys) -> dict:
    return {
        "defaults": defaults,
        "profiles": {
            "web": {"source": "/srv", "target": "file:///b/web", **web_keys},
            "never": {"source": "/srv", "target": "file:///b/never"},
        },
    }


def test_a_typo_in_defaults_is_named_there_once():
    message = problems_of(two_profiles({"encrytion": {"mode": "none"}}))
    assert message.count("encrytion") == 1, message
    assert "1 problem(s)" in message
    assert "defaults.encrytion: unknown key: did you mean encryption?" in message


def test_a_secret_given_twice_in_defaults_is_named_there_once():
    message = problems_of(
        two_profiles({"encryption": {"passphrase_env": "P", "passphrase_file": "/f"}})
    )
    assert message.count("give only one of") == 1, message
    assert "defaults.encryption.passphrase: give only one of" in message


def test_a_list_command_in_defaults_is_named_there_once():
    message = problems_of(two_profiles({"encryption": {"passphrase_command": ["pass", "x"]}}))
    assert message.count("expected one string, got a list") == 1, message
    assert message.count("defaults.encryption.passphrase_command:") == 1


def test_a_profile_repeating_the_defaults_mistake_is_named_too():
    message = problems_of(two_profiles({"bogus": 1}, bogus=2))
    assert "defaults.bogus: unknown key" in message
    assert "profiles.web.bogus: unknown key" in message
    assert "profiles.never.bogus" not in message


def test_defaults_need_no_source_or_target():
    config = build_config(two_profiles({"volsize": 10}), path=None)
    assert config.profiles["never"]["volsize"] == 10


def test_a_defaults_mistake_every_profile_overrides_warns_and_loads():
    """It was never read, and the config loaded before [defaults] was checked on its own: a
    scheduled backup must not stop on the day cfbackup is upgraded."""
    own = {"retention": {"keep_full": 3}, "volsize": 50}
    raw = {
        "defaults": {"retention": {"keep_full": 0}, "volsize": "big"},
        "profiles": {
            "web": {"source": "/srv", "target": "file:///b/web", **own},
            "db": {"source": "/srv", "target": "file:///b/db", **own},
        },
    }
    config = build_config(raw, path=None)
    assert config.profiles["web"]["volsize"] == 50
    unused = [w for w in config.warnings if w.startswith("defaults.")]
    assert len(unused) == 2, config.warnings
    assert all(
        w.endswith(
            "(every profile sets its own, so it is not used: fix it or remove it from "
            "[defaults] before a profile inherits it)"
        )
        for w in unused
    )
    raw["profiles"]["db"] = {"source": "/srv", "target": "file:///b/db"}  # inherits them
    message = problems_of(raw)
    assert message.startswith("config: 2 problem(s) in the config: defaults.")
    raw["profiles"]["db"] = {"source": "/srv", "target": "file:///b/db", **own, "bogus": 1}
    assert "defaults.volsize" in problems_of(raw)  # refused anyway: every mistake is named


@pytest.mark.parametrize(
    "table, guess",
    [("default", "defaults"), ("profile", "profiles"), ("Profiles", "profiles")],
)
def test_a_misspelt_top_level_table_says_did_you_mean(table, guess):
    raw = {"profiles": {"web": {"source": "/srv", "target": "file:///b"}}, table: {"x": {}}}
    if table != "default":
        del raw["profiles"]
    message = problems_of(raw)
    assert f"{table}: unknown key: did you mean {guess}? (allowed here: " in message
    assert "at least one [profiles.NAME]" not in message  # the typo is the cause
    assert "1 problem(s)" in message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_file_says_it_is_empty(tmp_path, text):
    from cfbackup.config import load_config

    conf = tmp_path / "e.conf"
    conf.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(conf)
    assert error.value.exit_code == ExitCode.CONFIG
    assert error.value.message == (
        f"{conf} is empty: write a [profiles.NAME] table with source and target in it "
        "(conf/example.toml shows one), or for dt-cf-backup set ROOT and DEST."
    )


@pytest.mark.parametrize(
    "asked, guess", [("Web", ": did you mean web?"), ("webb", ": did you mean web?"), ("x", ".")]
)
def test_a_profile_name_differing_by_case_or_a_typo_says_did_you_mean(asked, guess):
    config = build_config(two_profiles({}), path=None)
    with pytest.raises(ConfigError) as error:
        config.profile(asked)
    assert error.value.message == (
        f"None: no profile named {asked!r} (profiles: web, never){guess}"
    )
