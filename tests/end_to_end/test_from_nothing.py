"""A restore on a new machine from the recovery kit alone, as docs/runbook-restore.md walks it:
a fresh HOME and GNUPGHOME, no archive-dir cache, nothing left of the old machine but the
backups in the real local Swift. What comes back is compared with the original tree (content,
modes, symlinks, empty dirs: ``diff -r`` and more)."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap

import pytest
from support.cli import KEY_PASSPHRASE, stop_gpg_agent
from support.trees import assert_same_tree, make_awkward_tree

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift


def _keyring_copy(source: str, destination) -> None:
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("S.*", "*.lock"))
    destination.chmod(0o700)


def test_from_the_kit_alone_to_a_full_restore(tmp_path, cfbackup, gpg_keys, local_swift, container):
    # --- the old machine: public-key encryption, secrets in files, its own keyring ---------
    old = tmp_path / "old"
    old_home = old / "home"
    old_home.mkdir(parents=True)
    source = make_awkward_tree(old / "srv", big_mb=1)
    original = tmp_path / "original"
    shutil.copytree(source, original, symlinks=True)
    _keyring_copy(gpg_keys["home"], old / "gnupg")
    user, key = local_swift.users["admin"]
    for name, secret in (("key-passphrase", KEY_PASSPHRASE), ("swift-password", key)):
        (old / name).write_text(secret + "\n")
        (old / name).chmod(0o600)
    config = old / "config.toml"
    config.write_text(
        textwrap.dedent(f"""\
        # web1: everything under {source}
        state_dir = "{old}/state"

        [profiles.web1]
        source = "{source}"
        target = "swift://{container}/web1"
        archive_dir = "{old}/archive"   # duplicity's cache: gone with the machine

        [profiles.web1.encryption]
        mode = "pubkey"
        encrypt_keys = ["{gpg_keys["fingerprint"]}"]
        gpg_home = "{old}/gnupg"        # rewritten by recovery-kit import
        passphrase_file = "{old}/key-passphrase"

        [profiles.web1.swift]
        auth_url = "{local_swift.auth_url}"
        username = "{user}"
        password_file = "{old}/swift-password"
        """)
    )
    config.chmod(0o600)
    on_old = {"HOME": str(old_home), "GNUPGHOME": str(old / "gnupg")}
    backup = cfbackup("-c", config, "backup", env=on_old)
    assert backup.returncode == 0, backup
    check = cfbackup("-c", config, "check", "web1", env=on_old)
    assert "[note] recovery kit: none made from this machine yet" in check.stdout, check
    assert check.returncode == 0, check  # a note is not a failure
    exported = cfbackup("-c", config, "recovery-kit", "export", old / "kit", env=on_old)
    assert exported.returncode == 0, exported
    (kit,) = (old / "kit").glob("*.tar.gpg")
    check = cfbackup("-c", config, "check", "web1", env=on_old)
    assert "[ok] recovery kit: made on" in check.stdout, check
    assert f"prove it with cfbackup -c {config} drill web1 --from-nothing" in check.stdout
    kit = shutil.copy(kit, tmp_path / kit.name)  # the copy kept away from the server
    stop_gpg_agent(old / "gnupg")
    shutil.rmtree(old)  # the machine is gone: config, keys, secrets, cache, data

    # --- the new machine: nothing but cfbackup, the kit and the passphrase -----------------
    new_home, new_gnupg = tmp_path / "new" / "home", tmp_path / "new" / "gnupg"
    new_home.mkdir(parents=True)
    on_new = {"HOME": str(new_home), "GNUPGHOME": str(new_gnupg)}
    passphrase_file = tmp_path / "new" / "kit-passphrase"
    passphrase_file.write_text(KEY_PASSPHRASE + "\n")
    try:
        asked = cfbackup("recovery-kit", "import", kit, env=on_new)  # no terminal, no file
        assert asked.returncode == ExitCode.USAGE and "--passphrase-file" in asked.stderr, asked
        wrong = tmp_path / "new" / "wrong"
        wrong.write_text("not-the-passphrase\n")
        refused = cfbackup("recovery-kit", "import", kit, "--passphrase-file", wrong, env=on_new)
        assert refused.returncode == ExitCode.CRYPTO, refused
        assert "does not decrypt the recovery kit" in refused.stderr
        assert not (new_home / ".config").exists() and not new_gnupg.exists()  # nothing done
        elsewhere = tmp_path / "new" / "elsewhere.toml"
        moved = cfbackup("recovery-kit", "import", kit, "--passphrase-file", passphrase_file,
                         "--to", elsewhere, env=on_new)  # fmt: skip
        assert moved.returncode == 0, moved
        assert f"cfbackup -c {elsewhere} check web1 --for-restore" in moved.stdout  # as it runs
        imported = cfbackup(
            "recovery-kit", "import", kit, "--passphrase-file", passphrase_file, env=on_new
        )
        assert imported.returncode == 0, imported
        installed = new_home / ".config" / "cfbackup" / "config.toml"
        assert oct(installed.stat().st_mode & 0o777) == "0o600"
        text = installed.read_text()
        assert f'gpg_home = "{new_gnupg}"' in text and "# rewritten by" in text  # comments kept
        assert f"into {new_gnupg}" in imported.stdout
        assert f"profiles.web1.encryption.gpg_home now points at {new_gnupg}" in imported.stdout
        assert f"re-create {old}/key-passphrase" in imported.stdout
        assert f"re-create {old}/swift-password" in imported.stdout
        again = cfbackup("recovery-kit", "import", kit, "--passphrase-file", passphrase_file,
                         env=on_new)  # fmt: skip
        assert again.returncode == 0 and "kept the config already at" in again.stdout, again
        assert installed.read_text() == text  # kept as it was: --force replaces it

        # check says what is missing, each in one line with its fix
        check = cfbackup("check", "web1", "--for-restore", env=on_new)
        assert check.returncode == ExitCode.REFUSED, check
        assert f"the secret file {old}/key-passphrase does not exist" in check.stdout
        assert f"the secret file {old}/swift-password does not exist" in check.stdout
        assert "[note] source:" in check.stdout and "expected before a restore" in check.stdout

        # re-create the secret files where the config reads them, as import said
        for line in imported.stdout.splitlines():
            found = re.search(r"re-create (\S+) holding the (passphrase|password) \((.*)\)$", line)
            if found:  # the command it prints makes the folder, gone with the old machine
                made = subprocess.run(["sh", "-c", found[3]], capture_output=True, text=True)
                assert made.returncode == 0, made.stderr
                path = tmp_path / found[1].removeprefix(f"{tmp_path}/")
                assert oct(path.stat().st_mode & 0o777) == "0o600", found[3]
                path.write_text((KEY_PASSPHRASE if found[2] == "passphrase" else key) + "\n")
        check = cfbackup("check", "web1", "--for-restore", env=on_new)
        assert check.returncode == 0, check
        proven = "[ok] passphrase test: unlocks the secret key; opens the newest backup"
        assert proven in check.stdout, check

        restored = tmp_path / "new" / "restore"
        done = cfbackup("restore", "web1", restored, env=on_new)
        assert done.returncode == 0, done
        assert_same_tree(original, restored)
        diff = subprocess.run(["diff", "-r", "--no-dereference", original, restored],
                              capture_output=True, text=True)  # fmt: skip
        assert diff.returncode == 0, diff.stdout + diff.stderr
    finally:
        stop_gpg_agent(new_gnupg)
