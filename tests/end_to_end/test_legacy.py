"""An existing ~/.dt-cf-backup.conf keeps working: read by bash itself, driven through both the
dt-cf-backup compatibility script and cfbackup -c, and migrated to an equivalent native config."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest
from support.cli import BIN, PASSPHRASE
from support.trees import make_awkward_tree

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift


def _legacy_conf(path, src, local_swift, container, mode=0o600):
    user, key = local_swift.users["admin"]
    path.write_text(
        textwrap.dedent(f"""\
        # dt-cf-backup configuration, as the old script's users wrote it
        ROOT="{src}"
        DEST="cf+http://{container}"   # Cloud Files container

        INCLIST=( "{src}/dir one" \\
                  '{src}/with space.txt'   # a comment inside the array
                  "{src}/naïve ünïcode — ✓.txt"
                  "$(printf '%s' "{src}")/plain.txt" )
        EXCLIST=( "{src}/dir one/nested/deeper" )

        GPG_KEY=""
        PASSPHRASE='{PASSPHRASE}'
        CLOUDFILES_USERNAME="{user}"
        CLOUDFILES_APIKEY="{key}"
        CLOUDFILES_AUTHURL="{local_swift.auth_url}"
        STATIC_OPTIONS="--full-if-older-than 7D --s3-use-new-style"
        # CLEAN_UP_TYPE and CLEAN_UP_VARIABLE omitted: the old defaults apply
        LOGDIR="{path.parent}/logs"
        VERBOSITY="-v3"
        """)
    )
    path.chmod(mode)
    return path


EXPECTED = [
    ".",
    "dir one",
    "dir one/nested",
    "naïve ünïcode — ✓.txt",
    "plain.txt",
    "with space.txt",
]


def test_dt_cf_backup_flags_drive_backup_restore_and_list(
    tmp_path, cfbackup, local_swift, container, cli_env
):
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    conf = _legacy_conf(tmp_path / "home" / ".dt-cf-backup.conf", src, local_swift, container)
    result = cfbackup("--backup", program="dt-cf-backup")
    assert result.returncode == 0, result
    assert "--s3-use-new-style" in result.stderr  # reported as not carried over
    listing = cfbackup("-c", conf, "list", "--json")
    assert listing.returncode == 0, listing
    assert sorted(e["path"] for e in json.loads(listing.stdout)) == EXPECTED
    plain = cfbackup("--list-current-files", program="dt-cf-backup")
    assert plain.returncode == 0 and "with space.txt" in plain.stdout

    out = tmp_path / "restored"
    result = cfbackup("--restore", out, program="dt-cf-backup")
    assert result.returncode == 0, result
    assert (out / "dir one" / "nested").is_dir()
    assert not (out / "dir one" / "nested" / "deeper").exists()
    assert (out / "plain.txt").read_text() == "plain file\n"

    dest = tmp_path / "single.txt"
    result = cfbackup("--restore-file", "with space.txt", dest, program="dt-cf-backup")
    assert result.returncode == 0, result
    assert dest.read_text() == "spaces in the name\n"

    assert cfbackup("--verify", program="dt-cf-backup").returncode == 0
    assert (tmp_path / "home" / "logs").is_dir()  # LOGDIR is honoured

    # --backup-script still writes the recovery kit (into the current directory), and the
    # kit brings the legacy file to a new HOME, where the old flags work again
    kit_dir = tmp_path / "kit"
    kit_dir.mkdir()
    made = subprocess.run([str(BIN / "dt-cf-backup"), "--backup-script"], cwd=kit_dir,
                          env=cli_env, capture_output=True, text=True)  # fmt: skip
    assert made.returncode == 0, made.stderr
    (kit,) = kit_dir.glob("*.tar.gpg")
    new_home = tmp_path / "new-home"
    new_home.mkdir()
    secret = tmp_path / "kit-passphrase"
    secret.write_text(PASSPHRASE + "\n")
    on_new = {"HOME": str(new_home)}
    imported = cfbackup("recovery-kit", "import", kit, "--passphrase-file", secret, env=on_new)
    assert imported.returncode == 0, imported
    installed = new_home / ".dt-cf-backup.conf"
    assert installed.read_bytes() == conf.read_bytes()
    assert oct(installed.stat().st_mode & 0o777) == "0o600"
    again = cfbackup("--list-current-files", program="dt-cf-backup", env=on_new)
    assert again.returncode == 0 and "with space.txt" in again.stdout, again


def test_migrated_config_backs_up_the_same_files(tmp_path, cfbackup, local_swift, container):
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    conf = _legacy_conf(tmp_path / "legacy.conf", src, local_swift, container)
    printed = cfbackup("config", "migrate", conf)
    assert printed.returncode == 0, printed
    assert "CFBACKUP_ENCRYPTION_PASSPHRASE" in printed.stdout  # secrets are not printed
    assert "--s3-use-new-style" in printed.stdout  # listed as not carried over
    native = tmp_path / "native.toml"
    written = cfbackup("config", "migrate", conf, "-o", native)
    assert written.returncode == 0, written
    assert oct(native.stat().st_mode & 0o777) == "0o600"
    text = native.read_text()
    assert 'target = "swift://' in text and 'auth_version = "1"' in text
    assert 'full_if_older_than = "7D"' in text
    # the migrated config backs up the same selection as the legacy one
    legacy_run = cfbackup("-c", conf, "backup")
    assert legacy_run.returncode == 0, legacy_run
    native_text = text.replace(f"swift://{container}", f"swift://{container}-native")
    native.write_text(native_text)
    native_run = cfbackup("-c", native, "backup")
    assert native_run.returncode == 0, native_run
    lists = [
        sorted(e["path"] for e in json.loads(cfbackup("-c", c, "list", "--json").stdout))
        for c in (conf, native)
    ]
    assert lists[0] == lists[1] == EXPECTED
    out = tmp_path / "out"
    assert cfbackup("-c", native, "restore", "dt-cf-backup", out).returncode == 0
    assert (out / "dir one" / "nested").is_dir()
    assert not (out / "dir one" / "nested" / "deeper").exists()
    assert not (out / "empty dir").exists()  # not selected
    assert (out / "naïve ünïcode — ✓.txt").read_text() == "non-ASCII name\n"


def test_legacy_file_with_inline_secret_must_be_private(tmp_path, cfbackup, local_swift, container):
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    conf = _legacy_conf(tmp_path / "legacy.conf", src, local_swift, container, mode=0o644)
    result = cfbackup("-c", conf, "backup")
    assert result.returncode == ExitCode.CONFIG, result
    assert "chmod 600" in result.stderr


def test_dt_cf_backup_without_config_says_where_it_looked(tmp_path, cfbackup):
    result = cfbackup("--backup", program="dt-cf-backup")
    assert result.returncode == ExitCode.CONFIG, result
    assert ".dt-cf-backup.conf" in result.stderr
    assert os.path.basename(str(tmp_path)) in result.stderr or "no such file" in result.stderr
