"""The mistakes a sysadmin makes in a config in a hurry: each is refused (exit 3) or read as
meant, with one message naming the key where it is written, the cause and the fix."""

from __future__ import annotations

import pytest

from cfbackup.config import build_config
from cfbackup.errors import ConfigError, ExitCode


def problems_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as error:
        build_config(raw, path=None)
    assert error.value.exit_code == ExitCode.CONFIG
    return error.value.message


def web(**keys) -> dict:
    return {"profiles": {"web": {"source": "/srv", "target": "file:///b", **keys}}}


@pytest.mark.parametrize(
    "target, fix",
    [
        ("file://backups/web", "write file:///backups/web"),
        ("file://localhost/srv/b", "write file:///localhost/srv/b"),
        ("FILE://b", "write file:///b"),
    ],
)
def test_a_relative_file_target_is_refused_with_the_absolute_url(target, fix):
    """duplicity reads file://backups/web under the current directory: a backup from one
    folder, "no backup found" (and a stray folder) from every other."""
    message = problems_of(web(target=target))
    assert f"profiles.web.target: {target} is not an absolute path" in message
    assert message.endswith(f"{fix}.")


def test_an_absolute_file_target_is_accepted():
    config = build_config(web(target="file:///srv/backups/web"), path=None)
    assert config.profiles["web"].target == "file:///srv/backups/web"


@pytest.mark.parametrize(
    "target, fix",
    [
        ("/tmp/rv/target", "write file:///tmp/rv/target for a local folder"),
        ("file:/tmp/rv/target", "write file:///tmp/rv/target"),
        ("backups", "write swift://backups for a Swift container"),
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


@pytest.mark.parametrize("quote", ['"', "'"])
def test_an_unclosed_quote_in_a_legacy_file_is_named_with_the_fix(tmp_path, quote):
    from cfbackup.config.legacy import load_legacy

    conf = tmp_path / "my dt.conf"
    conf.write_text(f"ROOT=/srv\nDEST=file:///b\nPASSPHRASE={quote}FAKE-pw-U8\nX=1\n")
    with pytest.raises(ConfigError) as error:
        load_legacy(conf)
    assert error.value.exit_code == ExitCode.CONFIG
    assert error.value.message == (
        f"{conf}: bash could not read this file: line 3: a {quote} quote is not closed (bash "
        f"read on to the end): fix the file (bash -n '{conf}' shows where)."
    )


@pytest.mark.parametrize(
    "line, said",
    [
        (
            'PASSPHRASE="$(cat /nonexistent/FAKE-pass-file)"',
            "PASSPHRASE is empty (the command on line 4 failed or printed nothing): run that "
            "command by hand to see why, and fix it.",
        ),
        (
            "export PASSPHRASE=`false`",
            "PASSPHRASE is empty (the command on line 4 failed or printed nothing): run that "
            "command by hand to see why, and fix it.",
        ),
        ('PASSPHRASE=""', "PASSPHRASE is empty (line 4): give it a value in the file."),
        ("# no passphrase", "PASSPHRASE is not set: set it in the file (or GPG_KEY, to encrypt "
         "to keys)."),
    ],
)  # fmt: skip
def test_a_legacy_passphrase_left_empty_is_named_with_its_line(tmp_path, line, said):
    """A failed $(...) left PASSPHRASE empty: the error named the native keys to set
    (passphrase_file ...), which a legacy file does not have, and not the line."""
    from cfbackup.config import load_config
    from cfbackup.duplicity.environment import encryption_environment

    conf = tmp_path / "dt.conf"
    conf.write_text(f"ROOT=/srv\nDEST=file:///b\nEXCLIST=()\n{line}\n")
    profile = load_config(conf).profile(None)
    with pytest.raises(ConfigError) as error:
        encryption_environment(profile)
    assert error.value.exit_code == ExitCode.CONFIG
    assert error.value.message == f"{conf}: {said}"
    assert "FAKE-pass-file" not in error.value.message


def test_a_legacy_file_warning_names_the_file_once(tmp_path, capsys):
    from cfbackup.cli.context import CliContext

    conf = tmp_path / "dt.conf"
    conf.write_text("ROOT=/srv\nDEST=file:///b\nEXCLIST=()\nPASSPHRASE=x\nexport FOO=1\n")
    conf.chmod(0o600)
    context = CliContext()
    context.args = type("Args", (), {"config": str(conf)})()
    assert context.config.kind == "legacy"
    err = capsys.readouterr().err
    assert f"warning: {conf} exports FOO" in err, err
    assert f"{conf}: {conf}" not in err


SWIFT_V1 = "SWIFT_USERNAME=test:tester\nSWIFT_AUTHURL=http://127.0.0.1:1/auth/v1.0\n"
SWIFT_V3 = (
    "SWIFT_USERNAME=tester\nSWIFT_AUTHURL=http://127.0.0.1:1/v3\nSWIFT_AUTHVERSION=3\n"
    "SWIFT_PROJECT_NAME=p\nSWIFT_USER_DOMAIN_NAME=Default\n"
)
CF = "CLOUDFILES_USERNAME=tester\nCLOUDFILES_AUTHURL=http://127.0.0.1:1/auth/v1.0\n"


@pytest.mark.parametrize(
    "dest, lines, said",
    [
        (
            "swift://bk",
            SWIFT_V1 + 'SWIFT_PASSWORD="$(cat /nonexistent/FAKE-swift-pw)"',
            "SWIFT_PASSWORD is empty (the command on line 6 failed or printed nothing): run "
            "that command by hand to see why, and fix it.",
        ),
        (
            "swift://bk",
            SWIFT_V3 + "export SWIFT_PASSWORD=`cat /nonexistent/FAKE-swift-pw`",
            "SWIFT_PASSWORD is empty (the command on line 9 failed or printed nothing): run "
            "that command by hand to see why, and fix it.",
        ),
        (
            "cf+http://bk",
            CF + 'CLOUDFILES_APIKEY="$(cat /nonexistent/FAKE-swift-pw)"',
            "CLOUDFILES_APIKEY is empty (the command on line 6 failed or printed nothing): run "
            "that command by hand to see why, and fix it.",
        ),
        ("swift://bk", SWIFT_V1 + 'SWIFT_PASSWORD=""', "SWIFT_PASSWORD is empty (line 6): give "
         "it a value in the file."),
        ("cf+http://bk", CF + "# no key", "CLOUDFILES_APIKEY is not set: set it in the file."),
    ],
)  # fmt: skip
def test_a_legacy_swift_secret_left_empty_is_named_with_its_line(tmp_path, dest, lines, said):
    """A failed $(...) left the Swift password empty: the error named the native keys
    (password_env, password_file ...), which a legacy file does not have, and not the line;
    duplicity's environment and cfbackup's own Swift client say the same."""
    from cfbackup import swift
    from cfbackup.config import load_config
    from cfbackup.duplicity.environment import swift_environment

    conf = tmp_path / "dt.conf"
    conf.write_text(f"ROOT=/srv\nDEST={dest}\nEXCLIST=()\n{lines}\n")
    conf.chmod(0o600)
    profile = load_config(conf).profile(None)
    for build in (swift_environment, swift.connect):
        with pytest.raises(ConfigError) as error:
            build(profile)
        assert error.value.exit_code == ExitCode.CONFIG
        assert error.value.message == f"{conf}: {said}", build
        assert "FAKE-swift-pw" not in error.value.message


def test_a_recovery_kit_of_a_legacy_passphrase_left_empty_names_its_line(tmp_path):
    """Before: "the file sets none: set PASSPHRASE=..." for a file that sets it with a command
    that failed."""
    from cfbackup.actions.recovery_kit import export_kit
    from cfbackup.config import load_config

    conf = tmp_path / "dt.conf"
    conf.write_text(
        'ROOT=/srv\nDEST=file:///b\nEXCLIST=()\nPASSPHRASE="$(cat /nonexistent/FAKE-kit-pw)"\n'
    )
    conf.chmod(0o600)
    config = load_config(conf)
    with pytest.raises(ConfigError) as error:
        export_kit(config, config.profile(None), tmp_path / "kit")
    assert error.value.message == (
        f"{conf}: the recovery kit is encrypted with the backup passphrase, and PASSPHRASE is "
        "empty (the command on line 4 failed or printed nothing): run that command by hand to "
        "see why, and fix it."
    )
    assert "FAKE-kit-pw" not in error.value.message
    assert not (tmp_path / "kit").exists()
