"""The pure parts of ``recovery-kit import``: pointing gpg_home at the new keyring without
losing the config's comments, and listing the secrets a config reads from this machine."""

from __future__ import annotations

import re
import shutil
import tempfile
import textwrap
import tomllib
from pathlib import Path

import pytest
from support.cli import KEY_PASSPHRASE, stop_gpg_agent

from cfbackup.actions.recovery_import import secret_needs, set_gpg_home
from cfbackup.config.schema import PROFILE

TEXT = """\
# web1's backups
[defaults.encryption]
gpg_home = '/root/.gnupg-old'   # the old keyring

[profiles.web1]
source = "/"
target = "swift://b/web1"

[profiles.web1.encryption]
gpg_home = "/srv/keys"
passphrase_file = "/root/pass"
"""


def test_every_gpg_home_points_at_the_new_keyring_and_comments_stay():
    text, old = set_gpg_home(TEXT, tomllib.loads(TEXT), '/home/new "q"/.gnupg')
    assert old == {
        "defaults.encryption.gpg_home": "/root/.gnupg-old",
        "profiles.web1.encryption.gpg_home": "/srv/keys",
    }
    data = tomllib.loads(text)
    assert data["defaults"]["encryption"]["gpg_home"] == '/home/new "q"/.gnupg'
    assert data["profiles"]["web1"]["encryption"]["gpg_home"] == '/home/new "q"/.gnupg'
    assert "# web1's backups" in text and "# the old keyring" in text


def test_an_inline_table_is_written_out_again_and_no_gpg_home_is_left_alone():
    inline = 'profiles.web1 = { source = "/", encryption = { gpg_home = "/x" } }\n'
    text, old = set_gpg_home(inline, tomllib.loads(inline), "/new")
    assert old == {"profiles.web1.encryption.gpg_home": "/x"}
    assert tomllib.loads(text)["profiles"]["web1"]["encryption"]["gpg_home"] == "/new"
    assert text.startswith("# written by cfbackup recovery-kit import")
    plain = '[profiles.web1]\nsource = "/"\ntarget = "file:///t"\n'
    assert set_gpg_home(plain, tomllib.loads(plain), "/new") == (plain, {})


def test_secret_needs_name_each_variable_file_and_command(tmp_path):
    present = tmp_path / "present"
    present.write_text("s\n")
    raw = {
        "profiles": {
            "web1": {
                "encryption": {"passphrase_file": str(present)},
                "swift": {"password_env": "OS_PASSWORD"},
            },
            "db1": {"encryption": {"passphrase_command": "pass show db1"}},
        }
    }
    needs = {n.key: n for n in secret_needs(raw, PROFILE, {"OS_PASSWORD": "x"})}
    assert needs["profiles.web1.encryption.passphrase_file"].present is True
    assert needs["profiles.web1.swift.password_env"].advice() == (
        "profiles.web1.swift.password_env: export OS_PASSWORD holding the password (set here)"
    )
    assert "make sure the command pass show db1 prints the passphrase" in (
        needs["profiles.db1.encryption.passphrase_command"].advice()
    )
    gone = secret_needs(
        {"profiles": {"w": {"swift": {"password_file": "/nonexistent/pw"}}}}, PROFILE, {}
    )
    assert gone[0].advice() == (
        "profiles.w.swift.password_file: re-create /nonexistent/pw holding the password "
        "(mkdir -p -m 700 /nonexistent && install -m 600 /dev/null /nonexistent/pw)"
    )


@pytest.fixture
def short_home():
    """A new machine's HOME, short: gpg-agent's socket lives in its keyring."""
    folder = Path(tempfile.mkdtemp(prefix="cf-", dir="/tmp"))
    yield folder
    stop_gpg_agent(folder / ".gnupg")
    shutil.rmtree(folder, ignore_errors=True)


def test_a_kit_prepares_its_own_profile_and_a_second_kit_adds_its_keys(
    tmp_path, short_home, gpg_keys, capsys, monkeypatch
):
    """One config, two profiles, a kit each: the web1 kit prepares web1 only (no next step
    nor gpg_home for profile keys, whose keys are in its own kit); the keys kit, imported
    next, keeps the config, imports its keys, points keys' gpg_home at them; no gpg-agent
    is left serving the new keyring. Another profile's kit import is named only where that
    profile needs a key not here: not for keys while its keyring is still here, nor for
    web1 (a passphrase only) after the keys kit."""
    from cfbackup.cli import main
    from cfbackup.gpgkeys import agent_running

    old = tmp_path / "old"
    old.mkdir()
    keyring = old / "gnupg"
    shutil.copytree(gpg_keys["home"], keyring, ignore=shutil.ignore_patterns("S.*", "*.lock"))
    keyring.chmod(0o700)
    for name in ("pass-web1", "key-passphrase"):
        (old / name).write_text((KEY_PASSPHRASE if name == "key-passphrase" else "web1-pw") + "\n")
        (old / name).chmod(0o600)
    config = old / "config.toml"
    config.write_text(
        textwrap.dedent(f"""\
        state_dir = "{old}/state"

        [profiles.web1]
        source = "{old}/src"
        target = "file://{old}/t/web1"

        [profiles.web1.encryption]
        passphrase_file = "{old}/pass-web1"

        [profiles.keys]
        source = "{old}/src"
        target = "file://{old}/t/keys"

        [profiles.keys.encryption]
        mode = "pubkey"
        encrypt_keys = ["{gpg_keys["fingerprint"]}"]
        gpg_home = "{keyring}"   # the old machine's
        passphrase_file = "{old}/key-passphrase"
        """)
    )
    config.chmod(0o600)
    monkeypatch.setenv("GNUPGHOME", str(keyring))
    try:
        for name in ("web1", "keys"):
            assert main(["-c", str(config), "recovery-kit", "export", str(old / name),
                         "--profile", name]) == 0  # fmt: skip
    finally:
        stop_gpg_agent(keyring)
    (web1_kit,) = (old / "web1").glob("*.tar.gpg")
    (keys_kit,) = (old / "keys").glob("*.tar.gpg")
    capsys.readouterr()

    monkeypatch.setenv("HOME", str(short_home))
    monkeypatch.delenv("GNUPGHOME")
    new_keyring = short_home / ".gnupg"
    installed = short_home / ".config" / "cfbackup" / "config.toml"
    assert main(["recovery-kit", "import", str(web1_kit), "--passphrase-file",
                 str(old / "pass-web1")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "profile keys: not prepared" not in out, out  # its keyring, with its key, is here
    assert not agent_running(keyring)  # the look at it left no agent behind

    keyring.rename(old / "gone")  # a new machine: the old keyring is not there
    assert main(["recovery-kit", "import", str(web1_kit), "--passphrase-file",
                 str(old / "pass-web1"), "--force"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "next, for profile web1: cfbackup check web1 --for-restore" in out, out
    assert "next, for profile keys" not in out and "profiles.keys" not in out, out
    assert (
        "profile keys: not prepared by this kit (made for web1): import its own kit with "
        "cfbackup recovery-kit import cfbackup-recovery-kit-"
    ) in out, out
    assert tomllib.loads(installed.read_text())["profiles"]["keys"]["encryption"]["gpg_home"] == (
        str(keyring)
    )

    assert main(["recovery-kit", "import", str(keys_kit), "--passphrase-file",
                 str(old / "key-passphrase")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert f"kept the config already at {installed} (add --force" in out, out
    assert f"into {new_keyring}: {gpg_keys['fingerprint']}" in out, out
    assert f"profiles.keys.encryption.gpg_home now points at {new_keyring}" in out, out
    assert "next, for profile keys: cfbackup check keys --for-restore" in out, out
    assert "next, for profile web1" not in out, out
    assert "profile web1: not prepared" not in out, out  # a passphrase only: no kit to import
    text = installed.read_text()
    assert f'gpg_home = "{new_keyring}"   # the old machine\'s' in text  # the line kept
    assert "[profiles.web1.encryption]" in text and oct(installed.stat().st_mode & 0o777) == (
        "0o600"
    )
    assert not agent_running(new_keyring)  # the import's agent was stopped


def test_a_legacy_kits_readme_names_its_member_and_its_commands_run_as_printed(tmp_path):
    """A kit of a ~/.dt-cf-backup.conf holds dt-cf-backup.conf, not config.toml: its README
    says so, names where import installs it, and its by-hand check runs as printed in the
    folder the kit was extracted into (it said ``-c config.toml``: exit 3, no such file)."""
    import os
    import re
    import shlex
    import subprocess
    import sys
    import tarfile

    from cfbackup.cli import main

    conf = tmp_path / "dt.conf"
    conf.write_text(f"ROOT={tmp_path}/src\nDEST=file://{tmp_path}/t\nPASSPHRASE=pass-words\n")
    conf.chmod(0o600)
    assert main(["-c", str(conf), "recovery-kit", "export", str(tmp_path / "kit")]) == 0
    (kit,) = (tmp_path / "kit").glob("*.tar.gpg")
    scratch = Path(tempfile.mkdtemp(prefix="cf-", dir="/tmp"))
    try:
        decrypted = subprocess.run(
            ["gpg", "--homedir", str(scratch), "--batch", "--pinentry-mode", "loopback",
             "--passphrase-fd", "0", "--decrypt", str(kit)],
            input=b"pass-words\n", capture_output=True, check=True,
        )  # fmt: skip
    finally:
        stop_gpg_agent(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
    extracted = tmp_path / "extracted"
    extracted.mkdir()
    with tarfile.open(fileobj=__import__("io").BytesIO(decrypted.stdout)) as tar:
        tar.extractall(extracted, filter="data")
    readme = (extracted / "README.txt").read_text()
    assert sorted(p.name for p in extracted.iterdir()) == ["README.txt", "dt-cf-backup.conf"]
    assert "config.toml" not in readme, readme
    assert "installs the config at ~/.dt-cf-backup.conf" in readme, readme
    printed = re.search(r"^(cfbackup -c \S+ check \S+ --for-restore)\.$", readme, re.M)
    assert printed, readme
    argv = shlex.split(printed[1])
    done = subprocess.run(
        [str(Path(sys.executable).parent / argv[0]), *argv[1:]],
        cwd=extracted,
        env={**os.environ, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done
    assert "[ok] config: dt-cf-backup.conf is valid" in done.stdout, done


def test_only_the_gpg_homes_named_are_repointed_and_the_others_stay_as_written():
    """A kit of web1 repoints web1's keyring (and the defaults' it inherits), never another
    profile's: that one's keys are in its own kit."""
    text = TEXT + '\n[profiles.keys.encryption]\ngpg_home = "/srv/other"  # keys\n'
    only = {("profiles", "web1", "encryption", "gpg_home")}
    edited, old = set_gpg_home(text, tomllib.loads(text), "/new", only=only)
    assert old == {"profiles.web1.encryption.gpg_home": "/srv/keys"}
    data = tomllib.loads(edited)
    assert data["profiles"]["web1"]["encryption"]["gpg_home"] == "/new"
    assert data["profiles"]["keys"]["encryption"]["gpg_home"] == "/srv/other"
    assert data["defaults"]["encryption"]["gpg_home"] == "/root/.gnupg-old"
    assert "# keys" in edited and "# the old keyring" in edited  # the line edit, not a rewrite


def _fake_kit(monkeypatch, kit_text: str, profile: str) -> None:
    """import_kit's kit: this config, a README naming ``profile``, keys gpg 'imports'."""
    from cfbackup.actions import recovery_import

    readme = (
        "cfbackup recovery kit for oldhost, made 2026-12-06\n\ncfbackup-recovery-kit-oldhost-"
        f"{profile}-1.tar.gpg is a tar archive encrypted with the passphrase of profile "
        f"{profile}\n"
    ).encode()
    members = {"config.toml": kit_text.encode(), "README.txt": readme, "keys.asc": b"k"}
    monkeypatch.setattr(recovery_import, "_open_kit", lambda kit, passphrase: members)
    monkeypatch.setattr(recovery_import, "_import_keys", lambda data, p, keyring: ["FPR"])


def test_a_config_that_is_not_the_kits_is_never_edited_nor_its_secrets_listed(
    tmp_path, monkeypatch
):
    """The machine's own config (profile db1) shares the kit's defaults gpg_home: a kit of
    web1 imports its keys and leaves that config byte for byte (db1's keyring was repointed
    at one without its keys), and lists none of its secrets."""
    from cfbackup.actions.recovery_import import import_kit

    shared = '[defaults.encryption]\ngpg_home = "/root/.gnupg"\npassphrase_file = "/root/p"\n'
    _fake_kit(monkeypatch, shared + '[profiles.web1]\nsource = "/srv/web"\ntarget = "file:///w"\n',
              "web1")  # fmt: skip
    here = (
        "# this machine's own\n" + shared + '[profiles.db1]\nsource = "/d"\ntarget = "file:///d"\n'
    )
    destination = tmp_path / ".config/cfbackup/config.toml"
    destination.parent.mkdir(parents=True)
    destination.write_text(here)
    kit = import_kit(Path("k"), "pw", home=tmp_path, gnupghome=tmp_path / "restore-gnupg")
    assert (kit.kept, kit.own, kit.gpg_home_was, kit.secrets) == (True, [], {}, [])
    assert destination.read_text() == here


DOTTED = """\
# who to call: ops
[profiles.site]
source = "/srv/site"
target = "file:///b/site"
[profiles.site.encryption]
gpg_home = "/root/.gnupg-site"
passphrase_file = "/root/site-pass"

[profiles."site.old"]   # the archive
source = "/srv/old"
target = "file:///b/old"
[profiles."site.old".encryption]
gpg_home = "/root/.gnupg-site"
passphrase_file = "/root/old-pass"
"""


def test_a_profile_named_like_another_plus_a_dot_is_not_the_kits(tmp_path, monkeypatch):
    """Keys compare as table paths: a kit of ``site`` repoints site's gpg_home only (not
    "site.old"'s), lists site's secrets only, and edits the lines (comments kept)."""
    from cfbackup.actions.recovery_import import import_kit

    _fake_kit(monkeypatch, DOTTED, "site")
    kit = import_kit(Path("k"), "pw", home=tmp_path, gnupghome=tmp_path / "g")
    assert kit.gpg_home_was == {"profiles.site.encryption.gpg_home": "/root/.gnupg-site"}
    assert [need.value for need in kit.secrets] == ["/root/site-pass"]
    text = kit.config_path.read_text()
    data = tomllib.loads(text)
    assert data["profiles"]["site"]["encryption"]["gpg_home"] == str(tmp_path / "g")
    assert data["profiles"]["site.old"]["encryption"]["gpg_home"] == "/root/.gnupg-site"
    assert "# who to call: ops" in text and "# the archive" in text


def test_a_quoted_profile_name_is_edited_in_its_line_in_a_kept_config(tmp_path, monkeypatch):
    """[profiles."app.prod".encryption] is a table header the line edit follows: a second
    kit's import repoints that gpg_home in the config already there, comments kept."""
    from cfbackup.actions.recovery_import import import_kit

    text = DOTTED.replace("site.old", "app.prod")
    _fake_kit(monkeypatch, text, "app.prod")
    destination = tmp_path / ".config/cfbackup/config.toml"
    destination.parent.mkdir(parents=True)
    destination.write_text(text)
    kit = import_kit(Path("k"), "pw", home=tmp_path, gnupghome=tmp_path / "g")
    assert kit.kept and kit.own == ["app.prod"]
    assert kit.gpg_home_was == {'profiles."app.prod".encryption.gpg_home': "/root/.gnupg-site"}
    edited = destination.read_text()
    assert edited == text.replace(
        '[profiles."app.prod".encryption]\ngpg_home = "/root/.gnupg-site"',
        f'[profiles."app.prod".encryption]\ngpg_home = "{tmp_path / "g"}"',
    )


def test_a_kept_config_the_line_edit_cannot_follow_is_refused_not_rewritten(tmp_path, monkeypatch):
    """An inline table in the user's config: no rewrite that drops its comments, one
    sentence naming the setting to change by hand, nothing changed."""
    from cfbackup.actions.recovery_import import import_kit
    from cfbackup.errors import ConfigError

    text = (
        '# mine\nprofiles.web1 = { source = "/s", target = "file:///t", '
        'encryption = { gpg_home = "/root/.gnupg-old" } }\n'
    )
    _fake_kit(monkeypatch, text, "web1")
    destination = tmp_path / "cfbackup.toml"
    destination.write_text(text)
    with pytest.raises(ConfigError) as refused:
        import_kit(Path("k"), "pw", home=tmp_path, gnupghome=tmp_path / "g", to=destination)
    assert destination.read_text() == text
    assert (
        f'set profiles.web1.encryption.gpg_home to "{tmp_path / "g"}" in {destination} by hand'
    ) in refused.value.message
    assert not (tmp_path / "g").exists()


def test_the_next_kits_import_command_runs_as_printed(tmp_path, monkeypatch, capsys):
    """After --to FILE (and with GNUPGHOME set), the advice to import the other profile's
    kit carries the config and the keyring: followed as printed, it keeps that config and
    repoints that profile's gpg_home."""
    import shlex

    from cfbackup.cli import main

    text = DOTTED.replace("site.old", "db1")
    to = tmp_path / "etc" / "cfbackup.toml"
    keyring = tmp_path / "gnupg restore"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GNUPGHOME", str(keyring))
    (tmp_path / "pw").write_text("pw\n")
    (tmp_path / "pw").chmod(0o600)
    _fake_kit(monkeypatch, text, "site")
    assert main(["recovery-kit", "import", "k1", "--passphrase-file", str(tmp_path / "pw"),
                 "--to", str(to)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    found = re.search(r"import its own kit with (.*) \(it keeps", out)
    assert found, out
    argv = shlex.split(found[1])
    assert argv[0] == f"GNUPGHOME={keyring}", argv
    assert argv[1:5] == ["cfbackup", "-c", str(to), "recovery-kit"], argv
    assert argv[5:] == ["import", "cfbackup-recovery-kit-oldhost-db1-*.tar.gpg"], argv

    _fake_kit(monkeypatch, text, "db1")
    monkeypatch.delenv("GNUPGHOME")
    monkeypatch.setenv(*argv[0].split("=", 1))
    assert main([*argv[2:5], "import", "k2", "--passphrase-file", str(tmp_path / "pw")]) == 0
    assert "kept the config already at" in capsys.readouterr().out
    assert tomllib.loads(to.read_text())["profiles"]["db1"]["encryption"]["gpg_home"] == str(
        keyring
    )
