"""Published real-world legacy configs (``legacy_published/``), read as the old scripts read them.

Each file is a config found in the wild (a duplicity-backup.sh config of imagescape, of the
OpenAustralia Foundation, of a Selectel how-to, zertrin's 2014 example; chmouel's dt-cf-backup.sh
with its top filled in as its README says), with only its paths and secrets changed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cfbackup.config import build_config, legacy
from cfbackup.config.legacy_map import normalize
from cfbackup.duplicity import commands

PUBLISHED = Path(__file__).parent / "legacy_published"


def copy(tmp_path: Path, name: str) -> Path:
    conf = tmp_path / name
    shutil.copyfile(PUBLISHED / name, conf)
    conf.chmod(0o600)
    return conf


def built(raw: dict):
    from cfbackup.cli.context import CliContext

    config = build_config(raw, path=None, plugin_sections=CliContext().plugin_sections())
    return config.profiles["dt-cf-backup"]


def test_a_duplicity_backup_sh_file_without_retention_keeps_everything(tmp_path):
    """zertrin's duplicity_cleanup ran only with CLEAN_UP_TYPE and CLEAN_UP_VARIABLE set, and
    without STATIC_OPTIONS nothing forced a full: no dt-cf-backup.sh default on top."""
    conf = copy(tmp_path, "imagescape-swift.conf")
    raw, warnings = legacy.load_legacy(conf)
    profile = raw["profiles"]["dt-cf-backup"]
    assert profile["retention"] == {"keep_all": True}  # prune removes nothing either
    assert profile["full_if_older_than"] == "never"
    said = [w for w in warnings if "CLEAN_UP_TYPE and CLEAN_UP_VARIABLE" in w]
    assert len(said) == 1, warnings
    assert "removes no backup" in said[0] and "forces no full backup" in said[0]
    assert "ENCRYPTION" in said[0] and 'CLEAN_UP_TYPE="remove-all-but-n-full"' in said[0]
    assert "dt-cf-backup.sh's defaults" not in " ".join(legacy.read_file(conf).notes())
    argv = commands.backup_argv(built(raw))
    assert not any(a.startswith("--full-if-older-than") for a in argv), argv


def test_a_dt_cf_backup_file_gets_the_scripts_defaults_and_migrate_says_which(tmp_path):
    conf = copy(tmp_path, "user.conf")
    raw, warnings = legacy.load_legacy(conf)
    profile = raw["profiles"]["dt-cf-backup"]
    assert profile["retention"] == {"keep_full": 2}
    assert profile["full_if_older_than"] == "14D"
    notes = " ".join(legacy.read_file(conf).notes())
    for default in ("STATIC_OPTIONS='--full-if-older-than 14D'", "CLEAN_UP_VARIABLE=2"):
        assert default in notes, notes
    assert not any("CLEAN_UP_TYPE" in w for w in warnings)


def test_static_options_without_full_if_older_than_force_no_full():
    """The old command line had no --full-if-older-than: duplicity never forced a full."""
    raw, _ = normalize({"ROOT": "/", "DEST": "swift://c", "STATIC_OPTIONS": "--volsize 100"})
    assert raw["profiles"]["dt-cf-backup"]["full_if_older_than"] == "never"


@pytest.mark.parametrize(
    "name", ["zertrin-2014.conf", "oaf.conf", "selectel.conf", "internal77.conf"]
)
def test_zertrin_files_with_their_own_rules_keep_them(name, tmp_path):
    raw, warnings = legacy.load_legacy(copy(tmp_path, name))
    profile = raw["profiles"]["dt-cf-backup"]
    assert profile["retention"].get("keep_full"), profile["retention"]
    assert profile["full_if_older_than"] not in ("never", None)
    assert not any("removes no backup" in w for w in warnings)


def test_a_dt_cf_backup_conf_without_exclist_keeps_the_scripts_excludes(tmp_path):
    """dt-cf-backup.sh set EXCLIST (and VERBOSITY) at its top, then sourced
    ~/.dt-cf-backup.conf, which only overrode them. Its -v3 set what its cron mail showed; in
    cfbackup the verbosity trims the run log only, which keeps duplicity's notices."""
    conf = tmp_path / "dt-cf-backup.conf"
    conf.write_text('ROOT="/home"\nDEST="cf+http://box"\nINCLIST=( "/home/alice" )\n')
    raw, warnings = legacy.load_legacy(conf)
    profile = raw["profiles"]["dt-cf-backup"]
    assert profile["exclude"] == [
        "/home/*/Trash",
        "/home/*/Projects/Completed",
        "/**.DS_Store",
        "/**Icon?",
        "/**.AppleDouble",
    ]
    assert "verbosity" not in profile  # the run log keeps notices
    assert not any("EXCLIST" in w for w in warnings)
    notes = " ".join(legacy.read_file(conf).notes())
    assert "EXCLIST=( '/home/*/Trash'" in notes and "VERBOSITY" not in notes, notes
    build_config(raw, path=None)


def test_the_scripts_default_excludes_outside_root_are_left_out_not_refused(tmp_path):
    """duplicity refused /home/*/Trash with ROOT=/srv (FilePrefixError): they exclude nothing
    there, so cfbackup leaves them out and says why, instead of refusing the config."""
    conf = tmp_path / "dt-cf-backup.conf"
    conf.write_text('ROOT="/srv/"\nDEST="swift://box"\nINCLIST=( "/srv/www" )\n')
    raw, warnings = legacy.load_legacy(conf)
    profile = raw["profiles"]["dt-cf-backup"]
    assert profile["exclude"] == ["/**.DS_Store", "/**Icon?", "/**.AppleDouble"]
    said = [w for w in warnings if w.startswith("EXCLIST is not set")]
    assert said and "/home/*/Trash, /home/*/Projects/Completed" in said[0], warnings
    assert "EXCLIST=()" in said[0]
    build_config(raw, path=None)  # valid


def test_a_zertrin_file_without_exclist_has_no_excludes(tmp_path):
    raw, _ = legacy.load_legacy(copy(tmp_path, "imagescape-swift.conf"))
    assert raw["profiles"]["dt-cf-backup"]["exclude"] == []


@pytest.mark.parametrize("name", ["imagescape.conf"])
def test_an_s3_dest_is_refused_when_the_config_is_read(name, tmp_path, cli):
    """The failure came only at backup time, from duplicity (UnsupportedBackendScheme)."""
    from cfbackup.cli import main

    conf = copy(tmp_path, name)
    for argv in (("-c", conf, "check"), ("config", "migrate", conf)):
        code, err = cli(main, *argv)
        assert code == 3, err  # CONFIG
        assert (
            "DEST=s3+http://... : S3 is not supported by cfbackup: back up to a Swift container "
            "(swift://CONTAINER)" in err
        ), err
        assert "planning.org" not in err


@pytest.mark.parametrize(
    "target, said",
    [("s3://bucket/x", "S3"), ("sftp://u:pw@host/x", "the sftp:// scheme"), ("gs://b", "Google")],
)
def test_a_native_target_cfbackup_cannot_use_is_refused(target, said, tmp_path):
    from cfbackup.errors import ConfigError

    raw = {"profiles": {"a": {"source": "/srv", "target": target}}}
    with pytest.raises(ConfigError, match="is not supported by cfbackup") as error:
        build_config(raw, path=None)
    assert said in str(error.value) and "pw" not in str(error.value)


def test_a_space_after_a_continuation_backslash_is_dropped_with_a_warning(tmp_path):
    """chmouel's own sample lines end in `\\ ` (a space after the backslash): bash stores an
    item " ", which the old script's unquoted ${EXCLIST[@]} split to nothing."""
    conf = tmp_path / "dt-cf-backup.conf"
    conf.write_text(
        'ROOT="/home/"\nDEST="cf+http://backupcontainer"\nGPG_KEY="1A2B3C4D"\n'
        'INCLIST=( "/home/*/Documents" \\ \n    \t  "/home/*/Projects" \\\n        ) \n'
        'EXCLIST=( "/home/*/Trash" \\\n\t      "/home/*/Projects/Completed" \\\n'
        '\t      "/**.DS_Store" "/**Icon?" "/**.AppleDouble" \\ \n           ) \n'
    )
    assert legacy.read_file(conf).variables["INCLIST"] == [
        "/home/*/Documents",
        " ",
        "/home/*/Projects",
    ]
    raw, warnings = legacy.load_legacy(conf)
    profile = raw["profiles"]["dt-cf-backup"]
    assert profile["include"] == ["/home/*/Documents", "/home/*/Projects"]
    assert profile["exclude"][-1] == "/**.AppleDouble" and len(profile["exclude"]) == 5
    for name in ("INCLIST", "EXCLIST"):
        said = [w for w in warnings if w.startswith(f"{name} has 1 item(s) that are only blanks")]
        assert len(said) == 1 and "line-continuation backslash" in said[0], warnings
    build_config(raw, path=None)  # valid: no "' ' is not under source"


def test_the_configured_script_itself_is_refused_without_running_it(tmp_path, cli):
    """dt-cf-backup.sh's README says to configure the script itself; handed to cfbackup, its
    body must never run (mkdir LOGDIR, a log line, `unset` of the credentials at its end)."""
    from cfbackup.cli import main
    from cfbackup.errors import ConfigError

    logs = tmp_path / "logs"
    text = (PUBLISHED / "dt-cf-backup.sh").read_text()
    text = text.replace('LOGDIR="/tmp/legacy-probe/logs/dtcf/"', f'LOGDIR="{logs}/"')
    # as on the legacy host: duplicity and python-cloudfiles are there, so the body goes on
    text = text.replace('DUPLICITY="$(which duplicity)"', 'DUPLICITY="/bin/true"')
    text = text.replace("if ! python -c 'import cloudfiles'", "if false")
    script = tmp_path / "dt-cf-backup.sh"
    script.write_text(text)
    script.chmod(0o700)
    with pytest.raises(ConfigError) as error:
        legacy.load_legacy(script)
    assert str(error.value) == (
        f"{script} is dt-cf-backup.sh itself, not its config: copy the settings above 'Script "
        "Happens Below This Line' into ~/.dt-cf-backup.conf (or pass that file with -c)."
    )
    code, err = cli(main, "-c", script, "check")
    assert code == 3 and "is dt-cf-backup.sh itself" in err and "0123456789abcdef" not in err
    assert not logs.exists()  # the body never ran


def test_a_conf_with_the_scripts_banner_but_no_body_is_read(tmp_path):
    """The top copied with the banner under it, as users do: still a config."""
    text = (PUBLISHED / "dt-cf-backup.sh").read_text()
    top = text.split("if [[ -e ~/.dt-cf-backup.conf", 1)[0]  # never the real home's file
    banner = "#" * 62 + "\n# Script Happens Below This Line - Shouldn't Require Editing #\n"
    conf = tmp_path / "dt-cf-backup.conf"
    conf.write_text(top + banner + "#" * 62 + "\n")
    raw, _ = legacy.load_legacy(conf)
    assert raw["profiles"]["dt-cf-backup"]["swift"]["username"] == "myrackuser"


def test_swift_credentials_left_in_the_environment_are_named_not_read(tmp_path, monkeypatch):
    """duplicity-backup.sh's duplicity inherited SWIFT_* exported in ~/.bash_profile; cfbackup
    does not read them (a stray variable in its own environment is no config), and says so."""
    from cfbackup import swift as swift_module
    from cfbackup.duplicity.environment import swift_environment
    from cfbackup.errors import ConfigError

    for name in ("SWIFT_USERNAME", "SWIFT_PASSWORD", "SWIFT_AUTHURL", "CLOUDFILES_APIKEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWIFT_USERNAME", "alice")
    monkeypatch.setenv("SWIFT_PASSWORD", "s3cret-env-pass")
    monkeypatch.setenv("SWIFT_AUTHURL", "https://keystone.invalid/v1.0")
    raw, warnings = legacy.load_legacy(copy(tmp_path, "imagescape-swift.conf"))
    profile = built(raw)
    assert not profile["swift"].get("password") and not profile["swift"].get("username")
    said = [w for w in warnings if "SWIFT_USERNAME" in w]
    assert len(said) == 1 and "SWIFT_PASSWORD" in said[0] and "legacy file" in said[0]
    for call in (swift_environment, swift_module.connect):
        with pytest.raises(ConfigError) as error:
            call(profile)
        message = str(error.value)
        assert "SWIFT_AUTHURL, SWIFT_USERNAME, SWIFT_PASSWORD are set in the environment" in message
        assert "put them in the legacy file" in message
        assert "s3cret-env-pass" not in message and "alice" not in message
    monkeypatch.delenv("SWIFT_PASSWORD")
    monkeypatch.delenv("SWIFT_USERNAME")
    monkeypatch.delenv("SWIFT_AUTHURL")
    with pytest.raises(ConfigError) as error:
        swift_environment(profile)
    assert "environment" not in str(error.value)  # nothing to name: the plain error


def test_a_command_word_in_static_options_is_named_as_one(tmp_path):
    raw, warnings = legacy.load_legacy(copy(tmp_path, "internal77.conf"))
    assert raw["profiles"]["dt-cf-backup"]["full_if_older_than"] == "1D"
    said = [w for w in warnings if w.startswith("incremental in STATIC_OPTIONS")]
    assert said and "is a duplicity command, not an option" in said[0], warnings
    assert not any("is not a duplicity 3 option" in w for w in warnings)


@pytest.mark.parametrize(
    "mail, said", [("mailx", "the old script ran MAIL=mailx"), ("", "as the old script did")]
)
def test_the_no_sendmail_warning_says_what_the_old_script_ran(mail, said, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    if Path("/usr/sbin/sendmail").exists() or Path("/usr/lib/sendmail").exists():
        pytest.skip("this machine has an MTA: the fallback cannot be seen here")
    variables = {"ROOT": "/", "DEST": "swift://c", "EMAIL_TO": "ops@x.invalid"}
    _, warnings = normalize({**variables, **({"MAIL": mail} if mail else {})})
    line = next(w for w in warnings if w.startswith("EMAIL_TO: there is no sendmail"))
    assert said in line, line
    if mail:
        assert "as the old script did" not in line


def test_user_and_hostname_expansions_are_the_readers_and_noted(tmp_path):
    """cron and login set USER and LOGNAME for the old script: ROOT="/home/$USER" was the
    user's home, never /home/ (the whole of it)."""
    import getpass

    conf = copy(tmp_path, "user.conf")
    read = legacy.read_file(conf)
    user = getpass.getuser()
    assert read.variables["ROOT"] == f"/home/{user}"
    assert read.variables["LOGDIR"] == f"/home/{user}/logs"
    note = next(n for n in read.notes() if n.startswith("line(s)"))
    assert note.startswith("line(s) 1, 3, 4, 5 compute values") and "$USER" in note, note
