"""duplicity's own decryptions under the gpg-session-keys patch (cfbackup/duplicity/patches/
gpg_session_keys.py), with real duplicity and gpg through cfbackup's launcher on a file://
target. A restore into an empty archive dir (a new machine) decrypts the chain's manifests,
signatures and volumes itself: each gpg gets the file's key on a pipe and the tree comes back;
switched off, or with a wrong passphrase, gpg derives and judges as duplicity has it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.cli import PASSPHRASE, stop_gpg_agent
from support.exectrace import run_traced
from support.trees import assert_same_tree

from cfbackup.duplicity import launcher
from cfbackup.duplicity.patches import gpg_session_keys

OVERRIDE = "--override-session-key-fd"


@pytest.fixture
def gnupghome(empty_gnupghome):
    return empty_gnupghome


def _env(gnupghome: Path, passphrase: str = PASSPHRASE) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CFBACKUP_", "SWIFT_"))}
    return {**env, "PASSPHRASE": passphrase, "GNUPGHOME": str(gnupghome)}


def _duplicity(archive: Path, *args: str) -> list[str]:
    return [*launcher.command(), *args, "--name", "keys", "--archive-dir", str(archive)]


def _decrypting_gpgs(traced) -> list[list[str]]:
    return [e.argv for e in traced.execs if e.program == "gpg" and "--decrypt" in e.argv]


@pytest.fixture
def chain(tmp_path, gnupghome):
    """A full and an incremental at a file:// target, made with the passphrase."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("session keys\n" * 5000)
    (src / "b.bin").write_bytes(os.urandom(200_000))
    target = f"file://{tmp_path / 'target'}"
    for n, action in enumerate(("full", "incremental")):
        (src / f"c{n}.txt").write_text(f"change {n}\n")
        traced = run_traced(
            _duplicity(tmp_path / "archive", action, str(src), target), env=_env(gnupghome),
            log=tmp_path / f"backup-{n}.log", after_exit=lambda: stop_gpg_agent(gnupghome),
        )  # fmt: skip
        assert traced.returncode == 0, traced.stdout[-2000:] + traced.stderr[-2000:]
    return src, target


def test_a_restore_on_a_new_machine_gives_every_gpg_its_key(tmp_path, gnupghome, chain):
    src, target = chain
    traced = run_traced(
        _duplicity(tmp_path / "new-archive", "restore", target, str(tmp_path / "restored")),
        env=_env(gnupghome), log=tmp_path / "restore.log",
        after_exit=lambda: stop_gpg_agent(gnupghome),
    )  # fmt: skip
    assert traced.returncode == 0, traced.stdout[-2000:] + traced.stderr[-2000:]
    assert_same_tree(src, tmp_path / "restored")
    gpgs = _decrypting_gpgs(traced)
    # two manifests, two signature files, at least one volume of each set
    assert len(gpgs) >= 6, gpgs
    assert all(OVERRIDE in argv for argv in gpgs), gpgs
    assert not any(PASSPHRASE in part for argv in gpgs for part in argv)


def test_switched_off_or_a_wrong_passphrase_gpg_derives_and_judges(tmp_path, gnupghome, chain):
    src, target = chain
    env = {**_env(gnupghome), gpg_session_keys.OFF: "1"}
    traced = run_traced(
        _duplicity(tmp_path / "off-archive", "restore", target, str(tmp_path / "off")),
        env=env, log=tmp_path / "off.log", after_exit=lambda: stop_gpg_agent(gnupghome),
    )  # fmt: skip
    assert traced.returncode == 0, traced.stdout[-2000:] + traced.stderr[-2000:]
    assert_same_tree(src, tmp_path / "off")
    assert _decrypting_gpgs(traced) and not any(OVERRIDE in a for a in _decrypting_gpgs(traced))

    traced = run_traced(
        _duplicity(tmp_path / "wrong-archive", "restore", target, str(tmp_path / "wrong")),
        env=_env(gnupghome, "not the passphrase"), log=tmp_path / "wrong.log",
        after_exit=lambda: stop_gpg_agent(gnupghome),
    )  # fmt: skip
    assert traced.returncode != 0
    assert "Bad session key" in traced.stdout + traced.stderr  # gpg's own verdict, as before
    assert not any(OVERRIDE in argv for argv in _decrypting_gpgs(traced))


def test_a_damaged_file_given_its_key_fails_without_showing_the_key(tmp_path, gnupghome, chain):
    """gpg 2.2 prints the key it is given ("gpg: DBG: seskey: ..."), and duplicity's GPGError
    quotes gpg's stderr: a signature file cut short past its head must fail without it."""
    _src, target = chain
    folder = Path(target.removeprefix("file://"))
    (signatures,) = folder.glob("duplicity-full-signatures.*.sigtar.gpg")
    data = signatures.read_bytes()
    # cut short past its head: duplicity's gpg runs with --ignore-mdc-error, so bytes changed in
    # the middle of uncompressed data may decrypt to a warning only; an early end never does
    signatures.write_bytes(data[: len(data) // 2])
    traced = run_traced(
        _duplicity(tmp_path / "new-archive", "restore", target, str(tmp_path / "restored")),
        env=_env(gnupghome), log=tmp_path / "damaged.log",
        after_exit=lambda: stop_gpg_agent(gnupghome),
    )  # fmt: skip
    said = traced.stdout + traced.stderr
    assert traced.returncode != 0, said[-2000:]
    assert "GPG Failed" in said  # duplicity's own report of gpg's failure, with gpg's lines
    assert any(OVERRIDE in argv for argv in _decrypting_gpgs(traced))
    assert "seskey" not in said and "DBG" not in said, said[-2000:]
