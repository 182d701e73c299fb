"""The mistakes a sysadmin makes in a legacy ``~/.dt-cf-backup.conf`` in a hurry (an unclosed
quote, a passphrase or Swift secret left empty, a DEST without slashes): each is refused (exit
3) with one message naming the file, the line and the fix, or read with one warning."""

from __future__ import annotations

import pytest

from cfbackup.errors import ConfigError, ExitCode


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
        (  # bash names the line after the last for a $(, not the line it opens on
            "PASSPHRASE=$(cat /nonexistent/FAKE-pw-U8",
            "a $( or <( is not closed by ) (bash read on to the end of the file)",
        ),
        ('PASSPHRASE="$(cat /FAKE-pw-U8', "a $( or <( is not closed by ) (bash read on to the "
         "end of the file)"),
        ("X=${FAKE-pw-U8", "line 3: a ${ is not closed by } (bash read on to the end)"),
        ('EXCLIST=( "/FAKE-pw-U8"', "line 3: a ( or $(( is not closed by ) (bash read on to the "
         "end)"),
    ],
)  # fmt: skip
def test_an_unclosed_substitution_or_array_is_not_called_a_quote(tmp_path, line, said):
    """They were "line 5: a ) quote is not closed": no ) quote exists, and line 5 was the end
    of a 4-line file."""
    from cfbackup.config.legacy import load_legacy

    conf = tmp_path / "dt.conf"
    conf.write_text(f"ROOT=/srv\nDEST=file:///b\n{line}\nX=1\n")
    with pytest.raises(ConfigError) as error:
        load_legacy(conf)
    assert error.value.exit_code == ExitCode.CONFIG
    assert error.value.message == (
        f"{conf}: bash could not read this file: {said}: fix the file (bash -n {conf} shows where)."
    )
    assert "FAKE-pw" not in error.value.message


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
        ('PASSPHRASE=""  # for now', "PASSPHRASE is empty (line 4): give it a value in the "
         "file."),
        # a form feed is no line end to bash: the line was counted one too many
        ('# page\x0cbreak\nPASSPHRASE="$(cat /nonexistent/FAKE-pass-file)"', "PASSPHRASE is "
         "empty (the command on line 5 failed or printed nothing): run that command by hand to "
         "see why, and fix it."),
        # the cause is on the line that built PW: not "give it a value" on line 5
        ('PW="$(cat /nonexistent/FAKE-pass-file)"\nPASSPHRASE="$PW"', "PASSPHRASE is empty where "
         "line 5 sets it: check what it is built from (the variables it uses, and the lines "
         "that set them)."),
        # it may not have run: the file is read as text, so neither line is said to be the one
        ('if [ -f /etc/hostname ]; then PASSPHRASE="$(cat /nonexistent/FAKE-pass-file)"; else '
         'PASSPHRASE=""; fi', "PASSPHRASE is empty or not set, and line(s) 4 set it under a "
         "condition or more than once: check which one ran and what it is built from (run a "
         "command there by hand to see why it failed)."),
        ('if true; then\n  PASSPHRASE="$(cat /nonexistent/FAKE-pass-file)"\nelse\n  '
         'PASSPHRASE=""\nfi', "PASSPHRASE is empty or not set, and line(s) 5, 7 set it under a "
         "condition or more than once: check which one ran and what it is built from (run a "
         "command there by hand to see why it failed)."),
        # "not set: set it in the file", though the file sets it
        ("[ -r /nonexistent/FAKE-pass-file ] && PASSPHRASE=$(cat /nonexistent/FAKE-pass-file)",
         "PASSPHRASE is empty or not set, and line(s) 4 set it under a condition or more than "
         "once: check which one ran and what it is built from (run a command there by hand to "
         "see why it failed)."),
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


def test_a_legacy_dest_without_slashes_names_the_dest_to_write(tmp_path):
    """DEST=cf+http:backups: the old scheme is right for a legacy file (migrated to swift://
    with auth_version 1); it was "write swift://cf+http:backups"."""
    from cfbackup.config import load_config

    conf = tmp_path / "dt.conf"
    conf.write_text("ROOT=/srv\nDEST=cf+http:backups\nPASSPHRASE=x\n")
    conf.chmod(0o600)
    with pytest.raises(ConfigError) as error:
        load_config(conf)
    assert error.value.message.endswith(
        "profiles.dt-cf-backup.target (the file's DEST): 'cf+http:backups' is not a URL: write "
        "cf+http://backups."
    )


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
