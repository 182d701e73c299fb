"""Symmetric and public-key encryption round-trip; a wrong passphrase and a missing key fail
before anything is uploaded, with one clear line."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from support.cli import BIN, KEY_PASSPHRASE, WRONG_PASSPHRASE, stop_gpg_agent
from support.trees import assert_same_tree, make_awkward_tree
from swiftclient import client

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift


def _objects(local_swift, container):
    user, key = local_swift.users["admin"]
    conn = client.Connection(authurl=local_swift.auth_url, user=user, key=key, auth_version="1")
    try:
        return sorted(o["name"] for o in conn.get_container(container, full_listing=True)[1])
    except client.ClientException as error:
        assert error.http_status == 404
        return []


@pytest.mark.parametrize("signed", [False, True], ids=["encrypted", "encrypted-and-signed"])
def test_public_key_round_trip(
    tmp_path, make_config, cfbackup, gpg_keys, local_swift, container, signed
):
    # signed: what a legacy GPG_KEY (dt-cf-backup.sh) becomes, checked by every command here
    src = make_awkward_tree(tmp_path / "src", big_mb=1)
    enc = (
        f'mode = "pubkey"\nencrypt_keys = ["{gpg_keys["fingerprint"]}"]\n'
        f'gpg_home = "{gpg_keys["home"]}"\npassphrase_env = "T_KEY_PASSPHRASE"\n'
        # (written as the schema's example is: 0x, and here lower case; duplicity's restore
        # compares upper-case hex, so cfbackup hands it that)
        + (f'sign_key = "0x{gpg_keys["fingerprint"].lower()}"\n' if signed else "")
    )
    config = make_config(source=src, encryption=enc)
    env = {"T_KEY_PASSPHRASE": KEY_PASSPHRASE}
    assert cfbackup("-c", config, "backup", env=env).returncode == 0
    assert any(name.endswith(".difftar.gpg") for name in _objects(local_swift, container))
    out = tmp_path / "out"
    result = cfbackup("-c", config, "restore", "main", out, env=env)
    assert result.returncode == 0, result
    assert_same_tree(src, out)
    # cfbackup decrypts volumes itself too: with the secret key and its passphrase
    result = cfbackup("-c", config, "verify", "main", "--read-data", env=env)
    assert result.returncode == 0, result
    result = cfbackup("-c", config, "drill", "main", "--sample", "3 files", env=env)
    assert result.returncode == 0 and "3 match, 0 mismatch" in result.stdout, result
    if signed:  # volumes that decrypt but carry no good signature by sign_key do not pass
        home = tmp_path / "keyring"  # the suite's keyring and one more signing key
        shutil.copytree(gpg_keys["home"], home, ignore=shutil.ignore_patterns("S.*"))
        try:
            print(_read_data_with_another_sign_key(cfbackup, config, env, gpg_keys, home))
        finally:
            stop_gpg_agent(home)


def _read_data_with_another_sign_key(cfbackup, config, env, gpg_keys, home) -> str:
    """``verify --read-data`` of the signed backup with ``sign_key`` another key of ``home``
    (a copy of the suite's keyring, where that key is made): its output."""
    gpg = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback"]
    made = subprocess.run(
        [*gpg, "--passphrase", "", "--quick-gen-key", "other <other@cfbackup.invalid>",
         "ed25519", "sign", "never"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    listed = subprocess.run(
        [*gpg, "--with-colons", "--list-secret-keys", "other"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    other = next(line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr"))
    text = config.read_text().replace(gpg_keys["home"], str(home))
    config.write_text(
        text.replace(f'sign_key = "0x{gpg_keys["fingerprint"].lower()}"', f'sign_key = "{other}"')
    )
    result = cfbackup("-c", config, "verify", "main", "--read-data", env=env)
    assert result.returncode != 0, result
    out = result.stdout + result.stderr
    assert f"it decrypts, but with no good signature by sign_key {other}" in out, result
    assert f"signed by {gpg_keys['fingerprint'][-16:]}" in out, result
    return out


def test_wrong_passphrase_fails_before_upload(
    tmp_path, make_config, cfbackup, local_swift, container
):
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src)
    assert cfbackup("-c", config, "backup").returncode == 0
    before = _objects(local_swift, container)
    (src / "plain.txt").write_text("changed\n")
    for args in (("backup",), ("backup", "--full")):
        result = cfbackup("-c", config, *args, env={"T_PASSPHRASE": "not-the-passphrase"})
        assert result.returncode == ExitCode.CRYPTO, result
        assert "fix the passphrase in $T_PASSPHRASE, or" in result.stderr, result
        assert len(result.stderr.strip().splitlines()) <= 3, result
    assert _objects(local_swift, container) == before
    result = cfbackup(
        "-c", config, "restore", "main", tmp_path / "r", env={"T_PASSPHRASE": "not-the-passphrase"}
    )
    assert result.returncode == ExitCode.CRYPTO, result
    assert "check the passphrase in $T_PASSPHRASE." in result.stderr, result  # where it was read
    assert not (tmp_path / "r").exists()
    for args in (("verify", "main", "--read-data"), ("drill", "main")):
        result = cfbackup("-c", config, *args, env={"T_PASSPHRASE": "not-the-passphrase"})
        assert result.returncode == ExitCode.CRYPTO, result
        assert "Bad session key" in result.stderr, result
        assert "check the passphrase in $T_PASSPHRASE and the keys" in result.stderr, result
    occupied = tmp_path / "occupied"  # --force over files: they stay as they were
    occupied.mkdir()
    (occupied / "plain.txt").write_text("mine\n")
    result = cfbackup(
        "-c",
        config,
        "restore",
        "main",
        occupied,
        "--force",
        env={"T_PASSPHRASE": "not-the-passphrase"},
    )
    assert result.returncode == ExitCode.CRYPTO, result
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".cfbackup")) == []
    assert [p.name for p in occupied.iterdir()] == ["plain.txt"]
    assert (occupied / "plain.txt").read_text() == "mine\n"


def test_missing_key_fails_before_upload(
    tmp_path, make_config, cfbackup, gpg_keys, local_swift, container
):
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    enc = (
        f'mode = "pubkey"\nencrypt_keys = ["0xDEADBEEFDEADBEEF"]\ngpg_home = "{gpg_keys["home"]}"\n'
    )
    config = make_config(source=src, encryption=enc)
    result = cfbackup("-c", config, "backup")
    assert result.returncode == ExitCode.CRYPTO, result
    assert "DEADBEEFDEADBEEF" in result.stderr and "not in the keyring" in result.stderr
    assert _objects(local_swift, container) == []


def test_symmetric_without_passphrase_is_a_config_error(tmp_path, make_config, cfbackup):
    config = make_config(encryption="")
    result = cfbackup("-c", config, "backup")
    assert result.returncode == ExitCode.CONFIG, result
    assert "passphrase" in result.stderr


def test_an_escrow_backup_restores_from_one_secret_key_revoked_since(
    tmp_path, make_config, cfbackup, gpg_keys, local_swift, container
):
    """Backups encrypted to the own key and an offsite (escrow) key, signed by the own key; the
    restore machine holds only the offsite secret key, revoked since, and the own public key:
    gpg and duplicity restore from that, so cfbackup's checks must let it (with a warning)."""
    gpg = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    offsite_home, sender, kit = tmp_path / "offsite", tmp_path / "sender", tmp_path / "kit"
    for home in (offsite_home, sender, kit):
        home.mkdir(mode=0o700)
    try:
        subprocess.run(
            [*gpg, "--homedir", offsite_home, "--quick-gen-key",
             "offsite <offsite@cfbackup.invalid>", "future-default", "default", "never"],
            check=True, capture_output=True,
        )  # fmt: skip
        listed = subprocess.run(
            [*gpg, "--homedir", offsite_home, "--with-colons", "--list-keys"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        offsite = next(ln.split(":")[9] for ln in listed.splitlines() if ln.startswith("fpr"))

        def move(source, target, *export: str) -> None:
            exported = subprocess.run(
                [*gpg, "--homedir", source, *export], check=True, capture_output=True
            ).stdout
            subprocess.run(
                [*gpg, "--homedir", target, "--import"], input=exported, check=True,
                capture_output=True,
            )  # fmt: skip

        shutil.copytree(gpg_keys["home"], sender, ignore=shutil.ignore_patterns("S.*"),
                        dirs_exist_ok=True)  # fmt: skip
        move(offsite_home, sender, "--export", offsite)
        move(offsite_home, kit, "--export-secret-keys", offsite)
        move(gpg_keys["home"], kit, "--export", gpg_keys["fingerprint"])
        revocation = (offsite_home / "openpgp-revocs.d" / f"{offsite}.rev").read_text()
        subprocess.run(
            [*gpg, "--homedir", kit, "--import"],
            input=revocation.replace(":-----BEGIN", "-----BEGIN").encode(),
            check=True, capture_output=True,
        )  # fmt: skip

        src = make_awkward_tree(tmp_path / "src", big_mb=0)
        enc = (
            f'mode = "pubkey"\nencrypt_keys = ["{gpg_keys["fingerprint"]}", "{offsite}"]\n'
            f'sign_key = "{gpg_keys["fingerprint"]}"\ngpg_home = "{sender}"\n'
            'passphrase_env = "T_KEY_PASSPHRASE"\n'
        )
        config = make_config(source=src, encryption=enc)
        env = {"T_KEY_PASSPHRASE": KEY_PASSPHRASE}
        result = cfbackup("-c", config, "backup", env=env)
        assert result.returncode == 0, result
        config.write_text(config.read_text().replace(str(sender), str(kit)))
        result = cfbackup("-c", config, "check", "main", "--for-restore", env=env)
        assert "[FAIL]" not in result.stdout, result
        assert f"key {offsite} is revoked" in result.stdout, result
        out = tmp_path / "out"
        result = cfbackup("-c", config, "restore", "main", out, env=env)
        assert result.returncode == 0, result
        assert_same_tree(src, out)
        warned = [ln for ln in result.stderr.splitlines() if ln.startswith("warning: ")]
        assert len(warned) == 1 and f"key {offsite} is revoked" in warned[0], result
        assert "restores still decrypt with it" in warned[0], result
    finally:
        for home in (offsite_home, sender, kit):
            stop_gpg_agent(home)


def _unprotected_key(home) -> str:
    """A throw-away key pair (sign, encrypt) whose secret key has no passphrase; its
    fingerprint."""
    batch = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
             "--passphrase", ""]  # fmt: skip
    made = subprocess.run(
        [*batch, "--quick-gen-key", "Unprotected <u@cfbackup.invalid>", "ed25519", "sign,cert",
         "never"], capture_output=True, text=True,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    listed = subprocess.run(["gpg", "--homedir", str(home), "--with-colons", "-k"],
                            capture_output=True, text=True).stdout  # fmt: skip
    fingerprint = next(ln.split(":")[9] for ln in listed.splitlines() if ln.startswith("fpr"))
    added = subprocess.run([*batch, "--quick-add-key", fingerprint, "cv25519", "encr", "never"],
                           capture_output=True, text=True)  # fmt: skip
    assert added.returncode == 0, added.stderr
    return fingerprint


@pytest.mark.parametrize("front", ["cfbackup", "dt-cf-backup"])
def test_public_keys_without_a_passphrase_need_no_terminal(tmp_path, cli_env, front):
    """An unprotected secret key and no passphrase configured (a legacy GPG_KEY with
    PASSPHRASE="", which dt-cf-backup.sh exported as it was): from cron (no terminal, stdin
    not a tty) a signed incremental and a restore work. duplicity asked for the passphrase
    it was not given, and died with EOFError."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    fingerprint = _unprotected_key(home)
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    target = f"file://{tmp_path}/target"
    out = tmp_path / "out"
    if front == "cfbackup":
        config = tmp_path / "config.toml"
        config.write_text(
            f'state_dir = "{tmp_path}/state"\n[profiles.main]\nsource = "{src}"\n'
            f'target = "{target}"\narchive_dir = "{tmp_path}/archive"\n'
            f'[profiles.main.encryption]\nmode = "pubkey"\nencrypt_keys = ["{fingerprint}"]\n'
            f'sign_key = "{fingerprint}"\ngpg_home = "{home}"\n'
        )
        backup, restore = ("-c", config, "backup"), ("-c", config, "restore", "main", out)
    else:
        conf = tmp_path / "home" / ".dt-cf-backup.conf"  # the HOME the tests get
        conf.write_text(f'ROOT="{src}"\nDEST="{target}"\nGPG_KEY="{fingerprint}"\nPASSPHRASE=""\n')
        conf.chmod(0o600)
        backup, restore = ("--backup",), ("--restore", out)

    def from_cron(*args):
        completed = subprocess.run(
            [str(BIN / front), *map(str, args)], env={**cli_env, "GNUPGHOME": str(home)},
            capture_output=True, text=True, timeout=300,
            stdin=subprocess.DEVNULL, start_new_session=True,  # no controlling terminal
        )  # fmt: skip
        assert "Traceback" not in completed.stdout + completed.stderr, completed
        return completed

    try:
        first = from_cron(*backup)
        assert first.returncode == 0, first
        changed = src / "plain.txt"
        changed.write_text("changed for the incremental\n")
        later = int(changed.stat().st_mtime) + 60  # duplicity compares whole seconds
        os.utime(changed, (later, later))
        incremental = from_cron(*backup)  # signed: duplicity wants the signing passphrase
        assert incremental.returncode == 0, incremental
        restored = from_cron(*restore)
        assert restored.returncode == 0, restored
        assert_same_tree(src, out)
    finally:
        stop_gpg_agent(home)


def test_a_wrong_passphrase_on_a_new_machine_names_where_it_was_read(
    tmp_path, make_config, cfbackup, gpg_keys
):
    """Before: ``list`` and ``verify`` (and a public-key ``restore``) with a wrong passphrase
    said only "gpg could not decrypt: wrong passphrase or the secret key is missing from the
    keyring", naming no setting (and a secret key for a symmetric profile, which has none).
    On a new machine (no archive dir) each names the backups, the profile and where its
    passphrase was read, as a symmetric restore already did."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    symmetric = make_config(source=src, target=f"file://{tmp_path}/sym")
    assert cfbackup("-c", symmetric, "backup").returncode == 0
    wrong = {"T_PASSPHRASE": WRONG_PASSPHRASE}
    for args in (("list", "main"), ("verify", "main"), ("restore", "main", tmp_path / "r1")):
        shutil.rmtree(tmp_path / "archive", ignore_errors=True)
        result = cfbackup("-c", symmetric, *args, env=wrong)
        assert result.returncode == ExitCode.CRYPTO, result
        assert (
            f"gpg could not decrypt the backups at file://{tmp_path}/sym with the passphrase of "
            "profile main: check the passphrase in $T_PASSPHRASE" in result.stderr
        ), result.stderr
        assert "secret key" not in result.stderr, result.stderr

    # a keyring of its own: a gpg-agent that cached the key's passphrase would decrypt anyway
    home = tmp_path / "keyring"
    shutil.copytree(gpg_keys["home"], home, ignore=shutil.ignore_patterns("S.*", "*.lock"))
    enc = (
        f'mode = "pubkey"\nencrypt_keys = ["{gpg_keys["fingerprint"]}"]\n'
        f'gpg_home = "{home}"\npassphrase_env = "T_KEY_PASSPHRASE"\n'
    )
    pubkey = make_config(source=src, target=f"file://{tmp_path}/pub", encryption=enc,
                         name="pub.toml")  # fmt: skip
    right = {"T_KEY_PASSPHRASE": KEY_PASSPHRASE}
    try:
        assert cfbackup("-c", pubkey, "backup", env=right).returncode == 0
        stop_gpg_agent(home)  # a new machine's agent has cached nothing
        _refused_with_a_wrong_key_passphrase(tmp_path, cfbackup, pubkey)
    finally:
        stop_gpg_agent(home)
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def _refused_with_a_wrong_key_passphrase(tmp_path, cfbackup, pubkey) -> None:
    for args in (("list", "main"), ("verify", "main"), ("restore", "main", tmp_path / "r2")):
        shutil.rmtree(tmp_path / "archive", ignore_errors=True)
        result = cfbackup("-c", pubkey, *args, env={"T_KEY_PASSPHRASE": WRONG_PASSPHRASE})
        assert result.returncode == ExitCode.CRYPTO, result
        assert (
            f"gpg could not decrypt the backups at file://{tmp_path}/pub with the secret key of "
            "profile main: check the passphrase in $T_KEY_PASSPHRASE" in result.stderr
        ), result.stderr
        assert f"cfbackup -c {pubkey} check main --for-restore" in result.stderr, result.stderr
