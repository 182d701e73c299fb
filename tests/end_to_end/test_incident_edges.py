"""Rough edges found on the incident path (issue 19), each through the installed CLI against
the real local Swift, gpg and duplicity: what a sysadmin meets at 3 a.m. must read right."""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from support.cli import (
    BIN,
    KEY_PASSPHRASE,
    WRONG_PASSPHRASE,
    CliResult,
    assert_no_secret,
    stop_gpg_agent,
)
from support.trees import make_awkward_tree

from cfbackup.errors import ExitCode
from cfbackup.progress import human_bytes

pytestmark = pytest.mark.swift


def _pubkey(home, fingerprint: str) -> str:
    return (
        f'mode = "pubkey"\nencrypt_keys = ["{fingerprint}"]\n'
        f'gpg_home = "{home}"\npassphrase_env = "T_KEY_PASSPHRASE"\n'
    )


def _keyring_copy(source: str, destination) -> str:
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("S.*", "*.lock"))
    destination.chmod(0o700)
    return str(destination)


def _kill_agent(home) -> None:
    stop_gpg_agent(home)


def test_progress_line_shows_what_was_uploaded(tmp_path, make_config, cfbackup):
    """duplicity's swift backend reports no transfer: the lines said "0 B uploaded, 100%"."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "random.bin").write_bytes(__import__("os").urandom(3_000_000))
    config = make_config(source=src)
    result = cfbackup("-c", config, "backup")
    assert result.returncode == 0, result
    uploaded = int(re.search(r"(\d+) bytes uploaded", result.stdout)[1])
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("cfbackup: backup main:")]
    assert lines and lines[-1].startswith(
        f"cfbackup: backup main: {human_bytes(uploaded)} uploaded, 100%"
    ), result


def test_output_to_a_closed_pipe_exits_quietly(tmp_path, make_config, cfbackup, cli_env):
    """``cfbackup list PROFILE | head``: the reader leaves, cfbackup stops without a word."""
    make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(target=f"file://{tmp_path}/target", encryption='mode = "none"')
    assert cfbackup("-c", config, "backup").returncode == 0
    for args in (["list", "main"], ["status", "main"], ["history"], ["check", "main", "--json"]):
        child = subprocess.Popen(
            [str(BIN / "cfbackup"), "-c", str(config), *args],
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        child.stdout.close()  # before it writes a byte: like head, gone early
        stderr = child.stderr.read()
        assert child.wait(timeout=120) == 0, (args, stderr)
        assert stderr == "", (args, stderr)


def test_wrong_passphrase_fails_check_even_with_a_warm_agent(
    tmp_path, make_config, cfbackup, gpg_keys
):
    """While gpg-agent holds the secret key unlocked, gpg decrypts whatever passphrase it is
    given (a restore with the wrong one succeeds here); check tests the passphrase itself."""
    home = _keyring_copy(gpg_keys["home"], tmp_path / "gnupg")
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src, encryption=_pubkey(home, gpg_keys["fingerprint"]))
    right, wrong = {"T_KEY_PASSPHRASE": KEY_PASSPHRASE}, {"T_KEY_PASSPHRASE": WRONG_PASSPHRASE}
    try:
        assert cfbackup("-c", config, "backup", env=right).returncode == 0
        assert cfbackup("-c", config, "restore", "main", tmp_path / "r1", env=right).returncode == 0
        warm = cfbackup("-c", config, "restore", "main", tmp_path / "r2", env=wrong)
        assert warm.returncode == 0, warm  # the agent's cache answered for the wrong passphrase
        bad = cfbackup("-c", config, "check", "main", env=wrong)
        assert bad.returncode == ExitCode.REFUSED, bad
        row = next(ln for ln in bad.stdout.splitlines() if "passphrase test" in ln)
        assert row.startswith("  [FAIL] passphrase test: the passphrase of profile main"), bad
        assert "does not unlock" in row and "fix the passphrase in $T_KEY_PASSPHRASE, or" in row
        good = cfbackup("-c", config, "check", "main", env=right)
        assert good.returncode == 0, good
        assert "[ok] passphrase test: unlocks the secret key; opens the newest backup" in (
            good.stdout
        )
    finally:
        _kill_agent(home)


def test_key_without_an_encryption_subkey_is_named_with_the_fix(tmp_path, make_config, cfbackup):
    """``gpg --quick-gen-key NAME ALGO`` makes a key that can certify and sign, no more."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    batch = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
             "--passphrase", ""]  # fmt: skip
    made = subprocess.run([*batch, "--quick-gen-key", "Signing Only <s@cfbackup.invalid>",
                           "ed25519"], capture_output=True, text=True)  # fmt: skip
    assert made.returncode == 0, made.stderr
    listed = subprocess.run(["gpg", "--homedir", str(home), "--with-colons", "-k"],
                            capture_output=True, text=True).stdout  # fmt: skip
    fingerprint = re.search(r"^fpr:+([0-9A-F]{40}):", listed, re.M)[1]
    assert re.search(r"^pub:(?:[^:]*:){10}scSC:", listed, re.M), listed  # certify+sign only
    config = make_config(encryption=_pubkey(home, fingerprint))
    try:
        result = cfbackup("-c", config, "check", "main", env={"T_KEY_PASSPHRASE": KEY_PASSPHRASE})
        assert result.returncode == ExitCode.REFUSED, result
        row = next(ln for ln in result.stdout.splitlines() if "[FAIL] gpg keys" in ln)
        assert "has no encryption subkey (it can only sign and certify)" in row, row
        # the fix as printed, on the profile's own keyring (gpg_home), runs as it is
        fix = f"gpg --homedir {shlex.quote(str(home))} --quick-add-key {fingerprint} rsa3072 encr"
        assert f"add one with {fix}," in row, row
        added = subprocess.run([*batch, *shlex.split(fix)[1:]], capture_output=True, text=True)
        assert added.returncode == 0, added.stderr
        fixed = cfbackup("-c", config, "check", "main", env={"T_KEY_PASSPHRASE": KEY_PASSPHRASE})
        assert "[ok] gpg keys: usable" in fixed.stdout, fixed
    finally:
        _kill_agent(home)


def test_a_crash_is_one_line_and_recorded_as_a_failure(tmp_path, make_config, monkeypatch,
                                                       capsys):  # fmt: skip
    """A bug (here: a plugin raising in its check) must not be recorded as a success."""
    from cfbackup import history
    from cfbackup import plugins as plugin_module
    from cfbackup.cli import main
    from cfbackup.hookspecs import hookimpl

    class Buggy:
        @hookimpl
        def cfbackup_check(self, run):
            raise ValueError("gnupghome should be a directory (it isn't): /gone")

    original = plugin_module.make_plugin_manager

    def with_bug(load_entry_points=True):
        pm = original(load_entry_points=False)
        pm.register(Buggy(), name="buggy")
        return pm

    monkeypatch.setattr(plugin_module, "make_plugin_manager", with_bug)
    config = make_config(target=f"file://{tmp_path}/target", encryption='mode = "none"')
    logger = logging.getLogger("cfbackup")
    handlers = list(logger.handlers)
    try:
        assert main(["-c", str(config), "check", "main"]) == ExitCode.INTERNAL
    finally:
        for handler in logger.handlers[:]:
            if handler not in handlers:
                logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and "internal error (ValueError: gnupghome" in err, err
    # the sentence names the run log, and the log holds the traceback to report
    log_file = re.search(r"please report it with the run log (\S+), which holds", err)[1]
    logged = Path(log_file).read_text()
    assert "Traceback" in logged and "in cfbackup_check" in logged, logged
    (row,) = history.runs(tmp_path / "state", "main")
    assert row["result"] == "internal" and row["exit_code"] == ExitCode.INTERNAL, row
    assert log_file in row["message"], row


def test_a_sign_key_whose_signing_subkey_signs_is_named_with_the_fix(
    tmp_path, make_config, cfbackup
):
    """``gpg --quick-add-key FPR ed25519 sign`` (what "cannot sign" suggests, and how keys are
    often kept): gpg then signs with the subkey even when sign_key names the primary key, and
    duplicity's restore refuses every volume. check says so before a backup is made; with the
    subkey as sign_key a backup restores."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    batch = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
             "--passphrase", ""]  # fmt: skip
    made = subprocess.run([*batch, "--quick-gen-key", "Kept Keys <k@cfbackup.invalid>",
                           "ed25519", "cert", "never"], capture_output=True, text=True)  # fmt: skip
    assert made.returncode == 0, made.stderr
    listed = subprocess.run(["gpg", "--homedir", str(home), "--with-colons", "-k"],
                            capture_output=True, text=True).stdout  # fmt: skip
    primary = re.search(r"^fpr:+([0-9A-F]{40}):", listed, re.M)[1]
    for usage in (("cv25519", "encr"), ("ed25519", "sign")):
        added = subprocess.run([*batch, "--quick-add-key", primary, *usage, "never"],
                               capture_output=True, text=True)  # fmt: skip
        assert added.returncode == 0, added.stderr
    listed = subprocess.run(["gpg", "--homedir", str(home), "--with-colons", "-k"],
                            capture_output=True, text=True).stdout  # fmt: skip
    signing = re.findall(r"^sub:(?:[^:]*:){10}s:.*\n^fpr:+([0-9A-F]{40}):", listed, re.M)
    assert len(signing) == 1, listed
    env = {"T_KEY_PASSPHRASE": KEY_PASSPHRASE}  # (the throw-away keys have none)
    enc = _pubkey(home, primary) + f'sign_key = "{primary}"\n'
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("signed by the subkey\n")
    config = make_config(source=src, encryption=enc)
    try:
        result = cfbackup("-c", config, "check", "main", env=env)
        assert result.returncode == ExitCode.REFUSED, result
        row = next(ln for ln in result.stdout.splitlines() if "[FAIL] gpg keys" in ln)
        assert f"gpg signs with its subkey {signing[0]}" in row, row
        assert f'set sign_key = "{signing[0]}"' in row, row
        refused = cfbackup("-c", config, "backup", env=env)
        assert refused.returncode == ExitCode.CRYPTO, refused  # nothing unrestorable is made

        config.write_text(config.read_text().replace(f'sign_key = "{primary}"',
                                                     f'sign_key = "{signing[0]}"'))  # fmt: skip
        assert cfbackup("-c", config, "backup", env=env).returncode == 0
        out = tmp_path / "out"
        restored = cfbackup("-c", config, "restore", "main", out, env=env)
        assert restored.returncode == 0, restored  # duplicity's signature check passes
        assert (out / "a.txt").read_text() == "signed by the subkey\n"
    finally:
        _kill_agent(home)


def _on_another_host(cli_env, hostname: str, *args) -> CliResult:
    """``cfbackup ARGS`` on a machine called ``hostname``: in a UTS namespace of its own (root,
    as the firewall tests), so duplicity reads that name as it would on a new machine."""
    completed = subprocess.run(
        ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', hostname,
         str(BIN / "cfbackup"), *map(str, args)],
        env=cli_env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    result = CliResult(completed)
    assert "Traceback" not in result.output, result
    assert_no_secret(result.output)
    return result


def test_the_first_backup_after_a_move_names_the_fixes_that_work(
    tmp_path, make_config, cfbackup, cli_env
):
    """After a restore into another folder, or onto a machine with another hostname, duplicity
    refuses the next incremental ("Backup source directory/host has changed", exit 42 and 3)
    and its advice was cut off: one sentence naming what changed and both fixes, exit 5; the
    suggested full backup (run as printed) and --allow-source-mismatch then work."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("before the incident\n")
    target = f"file://{tmp_path}/target"
    config = make_config(source=src, target=target)
    assert cfbackup("-c", config, "backup").returncode == 0
    moved = tmp_path / "restored"
    shutil.copytree(src, moved)  # the restore, into another folder
    (moved / "b.txt").write_text("after it\n")
    other = make_config(source=moved, target=target, name="restored.toml")

    result = cfbackup("-c", other, "backup")
    assert result.returncode == ExitCode.REFUSED, result
    assert f"the backup source directory has changed (the source is {moved} now, the last " \
        f"backup read {src}); if " in result.stderr, result  # fmt: skip
    assert 'add extra_options = ["--allow-source-mismatch"] to the profile' in result.stderr
    assert "(duplicity exit code 42)." in result.stderr, result
    assert "if the backups at the target are of another source" in result.stderr, result
    suggested = re.search(r"otherwise run (cfbackup .+?) to start a new chain", result.stderr)[1]
    assert suggested == f"cfbackup -c {other} backup main --full", suggested
    assert cfbackup(*shlex.split(suggested)[1:]).returncode == 0  # as printed

    result = _on_another_host(cli_env, "restored-host", "-c", other, "backup")
    assert result.returncode == ExitCode.REFUSED, result
    assert "the backup source host has changed (this machine is restored-host, the last " \
        "backup came from " in result.stderr, result  # fmt: skip
    assert "(duplicity exit code 3)." in result.stderr, result
    allow = 'extra_options = ["--allow-source-mismatch"]\narchive_dir = '
    other.write_text(other.read_text().replace("archive_dir = ", allow))
    (moved / "c.txt").write_text("on the new machine\n")
    result = _on_another_host(cli_env, "restored-host", "-c", other, "backup")
    assert result.returncode == 0, result
    out = tmp_path / "out"
    assert cfbackup("-c", other, "restore", "main", out).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "b.txt", "c.txt"]
