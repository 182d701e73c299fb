"""The pure parts of ``recovery-kit import``: pointing gpg_home at the new keyring without
losing the config's comments, and listing the secrets a config reads from this machine."""

from __future__ import annotations

import tomllib

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
        "(chmod 600 /nonexistent/pw)"
    )
