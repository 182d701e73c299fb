"""Wrong passphrase, missing or expired key, files the backup cannot read: each is a clear error
with its exit code, and nothing reaches the target that only the mistake could restore."""

from __future__ import annotations

import os
import subprocess

import pytest
from faultkit import FRONT_ENDS, error_line, write_tree
from support.cli import WRONG_PASSPHRASE, stop_gpg_agent

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.faults, pytest.mark.swift]



@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_wrong_passphrase(front_end, make_setup, tmp_path):
    setup = make_setup(front_end)
    write_tree(setup.source, mb=0)
    assert setup.run("backup").returncode == 0
    before = setup.remote_objects()
    (setup.source / "plain.txt").write_text("changed\n")
    env = {"T_PASSPHRASE": WRONG_PASSPHRASE}
    if setup.legacy:  # the old config file with a mistyped PASSPHRASE
        setup.config.write_text(
            setup.config.read_text().replace("PASSPHRASE='", f"PASSPHRASE='{WRONG_PASSPHRASE}")
        )

    for action in ("backup", "full"):
        result = setup.run(action, env=env)
        assert result.returncode == ExitCode.CRYPTO, result
        assert "does not decrypt the backups" in error_line(result)
    assert setup.remote_objects() == before  # no chain only the wrong passphrase could restore
    out = tmp_path / "restored"
    result = setup.run("restore", out, env=env)
    assert result.returncode == ExitCode.CRYPTO, result
    assert "with the passphrase of profile" in error_line(result)
    assert not out.exists()
    result = setup.run("verify", env=env)  # verify starts duplicity without the pre-check
    assert result.returncode == ExitCode.CRYPTO, result
    assert "gpg could not decrypt" in error_line(result)
    setup.assert_history(ExitCode.OK, ExitCode.CRYPTO)


def _gpg(home, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", *args],
        check=True,
        capture_output=True,
        **kwargs,
    )


@pytest.fixture
def keyrings(tmp_path, gpg_keys):
    """An expired key pair (created "in 2020" for one day) and a keyring holding only the
    public part of the session's key (the secret one stays in the recovery kit)."""
    expired, public = tmp_path / "gnupg-expired", tmp_path / "gnupg-public"
    for home in (expired, public):
        home.mkdir(mode=0o700)
    _gpg(
        expired,
        "--passphrase",
        "",
        "--faked-system-time",
        "20200101T000000",
        "--quick-gen-key",
        "expired <expired@cfbackup.invalid>",
        "future-default",
        "default",
        "1d",
    )
    listing = _gpg(expired, "--with-colons", "--list-keys").stdout.decode()
    expired_fpr = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr")
    )
    fpr = gpg_keys["fingerprint"]
    exported = _gpg(gpg_keys["home"], "--export", fpr).stdout
    _gpg(public, "--import", input=exported)
    _gpg(public, "--import-ownertrust", input=f"{fpr}:6:\n".encode())
    yield {"expired": (expired, expired_fpr), "public": (public, fpr)}
    for home in (expired, public):
        stop_gpg_agent(home)


def test_missing_and_expired_keys(make_setup, keyrings, tmp_path):
    def pubkey(home, key: str) -> str:
        return f'mode = "pubkey"\nencrypt_keys = ["{key}"]\ngpg_home = "{home}"\n'

    home, key = keyrings["expired"]
    setup = make_setup(encryption=pubkey(home, key))
    write_tree(setup.source, mb=0)
    result = setup.run("backup")
    assert result.returncode == ExitCode.CRYPTO, result
    assert f"key {key} expired" in error_line(result)
    assert not setup.remote_objects()

    # a backup needs only the public key; its restore needs the secret key, absent here
    home, key = keyrings["public"]
    setup = make_setup(encryption=pubkey(home, key))
    assert setup.run("backup").returncode == 0
    result = setup.run("restore", tmp_path / "restored")
    assert result.returncode == ExitCode.CRYPTO, result
    assert "secret key" in error_line(result) and "missing" in error_line(result)
    setup.assert_history(ExitCode.CRYPTO, ExitCode.OK)


def test_unreadable_files_are_named_and_the_run_is_partial(make_setup, tmp_path):
    """Permission denied for real: cfbackup runs as root without CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH (dropped from the bounding set, so duplicity cannot regain them), and
    the files belong to another user, mode 0600/0700. (An unprivileged uid cannot run this
    venv: its interpreter lives under /root, mode 0700.)"""
    setup = make_setup()
    write_tree(setup.source, mb=0)
    secret_file, secret_dir = setup.source / "not yours.txt", setup.source / "closed dir"
    secret_file.write_text("someone else's\n")
    secret_dir.mkdir()
    (secret_dir / "inside").write_text("x\n")
    for path, mode in ((secret_file, 0o600), (secret_dir, 0o700)):
        os.chown(path, 65534, 65534)
        path.chmod(mode)
    no_dac = ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")

    result = setup.run("backup", prefix=no_dac)
    assert result.returncode == ExitCode.PARTIAL, result
    line = error_line(result)
    assert str(secret_file) in line and str(secret_dir) in line
    assert "2 file(s) could not be read" in line  # each named once
    out = tmp_path / "restored"
    assert setup.run("restore", out).returncode == 0
    assert (out / "plain.txt").read_text() == "plain file\n"
    assert not (out / "not yours.txt").exists()
    setup.assert_history(ExitCode.PARTIAL)
