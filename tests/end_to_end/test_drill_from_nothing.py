"""``cfbackup drill --from-nothing``: the drill from the recovery kit alone, against the real
local Swift, gpg and duplicity.

The proof that nothing local is used: the profile's keyring (``gpg_home`` and ``GNUPGHOME``)
and its duplicity archive dir are moved away for the drill and are still absent after it (a
drill that used them would fail, or re-create them), HOME is a file (nothing can be read or
made under it), the drill restores every file of the backup, the history shows its archive dir
and keyring inside its throw-away HOME, and that HOME is gone afterwards (TMPDIR is left empty,
no gpg-agent is left serving it), also after Ctrl-C. A stale kit (a wrong passphrase, keys
rotated since it was made) fails in one line with exit 11.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import gnupg
import pytest
from support.cli import BIN, KEY_PASSPHRASE, stop_gpg_agent
from support.trees import make_awkward_tree

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift


@pytest.fixture
def short_tmpdir():
    """The TMPDIR cfbackup makes its throw-away HOME in: short (gpg-agent's socket path must
    fit), private to the test, so that what is left in it is this test's."""
    folder = Path(tempfile.mkdtemp(prefix="cf-", dir="/tmp"))
    yield folder
    for home in folder.glob("cfbackup-home-*"):  # only when the test failed
        stop_gpg_agent(home / ".gnupg")
    shutil.rmtree(folder, ignore_errors=True)


def _pubkey_profile(tmp_path, make_config, gpg_keys, *, fingerprint=None, more=""):
    """A public-key profile with its own keyring (a copy) and its passphrase in a file."""
    keyring = tmp_path / "gnupg"
    if not keyring.exists():
        shutil.copytree(gpg_keys["home"], keyring, ignore=shutil.ignore_patterns("S.*", "*.lock"))
        keyring.chmod(0o700)
    secret = tmp_path / "key-passphrase"
    secret.write_text(KEY_PASSPHRASE + "\n")
    secret.chmod(0o600)
    encryption = textwrap.dedent(f"""\
        mode = "pubkey"
        encrypt_keys = ["{fingerprint or gpg_keys["fingerprint"]}"]
        gpg_home = "{keyring}"
        passphrase_file = "{secret}"
        """)
    source = tmp_path / "src"
    if not source.exists():
        make_awkward_tree(source, big_mb=0)
    return make_config(source=source, encryption=encryption, more=more), keyring


def _stop_agent(keyring: Path) -> None:
    stop_gpg_agent(keyring)


def _agents_serving(folder: Path) -> list[int]:
    """gpg-agent processes started for a keyring under ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "gpg-agent" in line and str(folder) in line:
            found.append(int(entry.name))
    return found


def _one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("cfbackup: error:")]
    assert len(lines) == 1, result
    return lines[0]


def test_drill_from_nothing_uses_the_kit_alone(
    tmp_path, make_config, cfbackup, cli_env, gpg_keys, short_tmpdir
):
    prom = tmp_path / "cfbackup.prom"
    notify = f'\n[profiles.main.notify]\nactions = ["drill"]\nmetrics_file = "{prom}"\n'
    config, keyring = _pubkey_profile(tmp_path, make_config, gpg_keys, more=notify)
    archive = tmp_path / "archive"
    env = {"GNUPGHOME": str(keyring), "TMPDIR": str(short_tmpdir)}
    assert cfbackup("-c", config, "backup", env=env).returncode == 0
    assert (archive / "main").is_dir()  # duplicity's cache, with the signatures

    # no kit yet; kit options without --from-nothing
    none = cfbackup("-c", config, "drill", "main", "--from-nothing", env=env)
    assert none.returncode == ExitCode.CONFIG, none
    assert "has no recovery kit to drill from" in _one_line(none)
    assert f"cfbackup -c {config} recovery-kit export" in none.stderr  # runs as printed
    usage = cfbackup("-c", config, "drill", "main", "--kit", tmp_path / "k", env=env)
    assert usage.returncode == ExitCode.USAGE, usage
    assert "--kit goes with --from-nothing: " in usage.stderr and "leave it out." in usage.stderr

    exported = cfbackup("-c", config, "recovery-kit", "export", tmp_path / "kits", env=env)
    assert exported.returncode == 0, exported
    (kit,) = (tmp_path / "kits").glob("*.tar.gpg")

    # this machine's keyring and duplicity cache are gone for the drill
    _stop_agent(keyring)
    keyring.rename(tmp_path / "gnupg-away")
    archive.rename(tmp_path / "archive-away")

    # a secret the kit's config reads is missing here: named, with its fix, before any work
    missing = cfbackup("-c", config, "drill", "main", "--from-nothing",
                       env={**env, "T_SWIFT_KEY": ""})  # fmt: skip
    assert missing.returncode == ExitCode.CONFIG, missing
    line = _one_line(missing)
    assert "reads secrets that are missing on this machine" in line
    assert "profiles.main.swift.password_env: export T_SWIFT_KEY" in line
    assert not list(short_tmpdir.iterdir())

    # and so is this machine's HOME: a file, so anything made or read under it fails
    no_home = tmp_path / "no-home"
    no_home.write_text("not a directory\n")
    started = time.time()
    drilled = cfbackup("-c", config, "drill", "main", "--from-nothing", "--sample", "100%",
                       "--json", env={**env, "HOME": str(no_home)})  # fmt: skip
    assert drilled.returncode == 0, drilled
    report = json.loads(drilled.stdout)
    stats = report["stats"]
    assert stats["from_nothing"] is True and stats["kit"] == str(kit)
    assert stats["files_checked"] == stats["files_sampled"] == stats["files_in_backup"] > 5
    assert stats["mismatches"] == stats["failures"] == 0
    assert stats["secrets_from_this_machine"] == [
        "profiles.main.encryption.passphrase_file (file)",
        "profiles.main.swift.password_env (env)",
    ]
    assert f"from the recovery kit {kit.name} alone" in report["message"]
    # duplicity's archive dir and the keyring were inside the throw-away HOME, now gone
    home = Path(stats["sandbox"]["home"])
    assert home.parent == short_tmpdir
    assert Path(stats["sandbox"]["archive_dir"]).is_relative_to(home)
    assert Path(stats["sandbox"]["gnupghome"]) == home / ".gnupg"
    assert not list(short_tmpdir.iterdir()) and not _agents_serving(short_tmpdir)
    assert not keyring.exists() and not archive.exists()  # not used, not re-created
    assert not list((tmp_path / "state" / "drill").iterdir())

    history = json.loads(cfbackup("-c", config, "history", "--json", env=env).stdout)
    row = next(r for r in history if r["action"] == "drill" and r["result"] == "success")
    assert row["stats"]["from_nothing"] is True and row["stats"]["kit"] == str(kit)
    text = prom.read_text()
    value = next(
        x
        for x in text.splitlines()
        if x.startswith("cfbackup_drill_from_nothing_last_success_timestamp{")
    )
    assert float(value.split()[-1]) >= started
    assert 'cfbackup_last_run_success{action="drill-from-nothing",profile="main"} 1' in text
    assert "cfbackup_drill_last_success_timestamp{" not in text  # no plain drill ran

    # Ctrl-C while the kit's keys are in use: no HOME, keyring, agent or scratch left
    with open(tmp_path / "interrupted.out", "wb") as out:
        run = subprocess.Popen(
            [BIN / "cfbackup", "-c", config, "drill", "main", "--from-nothing", "--sample",
             "100%"],
            env={**cli_env, **env}, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not list(short_tmpdir.glob("cfbackup-home-*/.gnupg/S.gpg-agent")):
            assert run.poll() is None and time.monotonic() < deadline, "no agent started"
            time.sleep(0.02)
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(60) == ExitCode.INTERRUPTED
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    output = (tmp_path / "interrupted.out").read_text()
    assert "Traceback" not in output, output
    assert "the drill --from-nothing of main was stopped" in output
    history = json.loads(cfbackup("-c", config, "history", "--json", env=env).stdout)
    newest = history[0]  # the history's kind: a drill --from-nothing, interrupted
    assert (newest["action"], newest["result"]) == ("drill", "interrupted")
    assert newest["stats"]["from_nothing"] is True
    assert not list(short_tmpdir.iterdir()) and not _agents_serving(short_tmpdir)
    assert not list((tmp_path / "state" / "drill").iterdir())


def test_a_stale_kit_fails_clearly(tmp_path, make_config, cfbackup, gpg_keys, short_tmpdir):
    config, keyring = _pubkey_profile(tmp_path, make_config, gpg_keys)
    env = {"GNUPGHOME": str(keyring), "TMPDIR": str(short_tmpdir)}
    assert cfbackup("-c", config, "backup", env=env).returncode == 0
    assert cfbackup("-c", config, "recovery-kit", "export", tmp_path / "kits",
                    env=env).returncode == 0  # fmt: skip
    (old_kit,) = (tmp_path / "kits").glob("*.tar.gpg")

    # a wrong passphrase
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-passphrase\n")
    refused = cfbackup("-c", config, "drill", "main", "--from-nothing", "--kit", old_kit,
                       "--passphrase-file", wrong, env=env)  # fmt: skip
    assert refused.returncode == ExitCode.CRYPTO, refused
    assert "does not decrypt the recovery kit" in _one_line(refused)

    # the profile's own passphrase changed since the kit was made (nothing downloaded yet)
    secret = tmp_path / "key-passphrase"
    secret.write_text("a-new-passphrase\n")
    changed = cfbackup("-c", config, "drill", "main", "--from-nothing", env=env)
    assert changed.returncode == ExitCode.CRYPTO, changed
    line = _one_line(changed)
    assert f"the passphrase of profile main does not open the recovery kit {old_kit}" in line
    assert f"cfbackup -c {config} recovery-kit export" in line
    secret.write_text(KEY_PASSPHRASE + "\n")

    # this machine backs up elsewhere now: the kit's config is stale
    encryption = config.read_text().split("[profiles.main.encryption]\n")[1]
    moved = make_config(source=tmp_path / "src", encryption=encryption,
                        target="swift://elsewhere/host1", name="moved.toml")  # fmt: skip
    elsewhere = cfbackup("-c", moved, "drill", "main", "--from-nothing", env=env)
    assert elsewhere.returncode == ExitCode.REFUSED, elsewhere
    assert "is stale: its config backs up profile main to swift://" in _one_line(elsewhere)

    # the kit the history names was moved away
    old_kit.rename(tmp_path / "kit-away")
    gone = cfbackup("-c", config, "drill", "main", "--from-nothing", env=env)
    assert gone.returncode == ExitCode.CONFIG, gone
    assert f"{old_kit}, is no longer there: give --kit KIT" in _one_line(gone)
    (tmp_path / "kit-away").rename(old_kit)
    assert not list(short_tmpdir.iterdir())

    # the keys rotated: a new key, a new chain encrypted to it; the old kit cannot open it
    gpg = gnupg.GPG(gnupghome=str(keyring))
    new_key = gpg.gen_key(
        gpg.gen_key_input(key_type="EDDSA", key_curve="ed25519", key_usage="sign",
                          subkey_type="ECDH", subkey_curve="cv25519", subkey_usage="encrypt",
                          name_real="rotated", name_email="rotated@cfbackup.invalid",
                          passphrase=KEY_PASSPHRASE, expire_date=0)
    )  # fmt: skip
    assert new_key.fingerprint, new_key.stderr
    config, _ = _pubkey_profile(tmp_path, make_config, gpg_keys, fingerprint=new_key.fingerprint)
    full = cfbackup("-c", config, "backup", "main", "--full", env=env)
    assert full.returncode == 0, full
    stale = cfbackup("-c", config, "drill", "main", "--from-nothing", env=env)
    assert stale.returncode == ExitCode.CRYPTO, stale
    line = _one_line(stale)
    assert f"the keys in the recovery kit {old_kit}," in line
    assert "do not decrypt the backup of profile main" in line
    assert "the kit is stale" in line and f"cfbackup -c {config} recovery-kit export" in line
    assert not list(short_tmpdir.iterdir()) and not _agents_serving(short_tmpdir)
    history = json.loads(cfbackup("-c", config, "history", "--json", env=env).stdout)
    row = next(r for r in history if r["action"] == "drill")
    assert row["exit_code"] == ExitCode.CRYPTO and row["stats"]["from_nothing"] is True
    assert row["stats"]["kit"] == str(old_kit)

    # a new kit: the newest one is drilled, and passes
    time.sleep(1)  # kit names carry the second they were made
    assert cfbackup("-c", config, "recovery-kit", "export", tmp_path / "kits",
                    env=env).returncode == 0  # fmt: skip
    (new_kit,) = set((tmp_path / "kits").glob("*.tar.gpg")) - {old_kit}
    passed = cfbackup("-c", config, "drill", "main", "--from-nothing", "--sample", "2 files",
                      "--json", env=env)  # fmt: skip
    assert passed.returncode == 0, passed
    assert json.loads(passed.stdout)["stats"]["kit"] == str(new_kit)
    _stop_agent(keyring)
