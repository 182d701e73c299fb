"""Every error a user can cause ends in one clear line, a documented exit code, no traceback."""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket

import pytest

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift


def _one_line(result):
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("cfbackup: error:")]
    assert len(lines) == 1, result
    return lines[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_swift_unreachable(tmp_path, make_config, cfbackup):
    """backup meets it in cfbackup's own client, restore and status in duplicity's: one
    wording, with the URL and the cause in plain words, never urllib3's text cut mid-word."""
    config = make_config()
    text = config.read_text()

    text = re.sub(
        r'auth_url = "[^"]+"', f'auth_url = "http://127.0.0.1:{_closed_port()}/auth/v1.0"', text
    )
    config.write_text(text)
    (tmp_path / "src" / "f").write_text("x")
    url = re.search(r'auth_url = "([^"]+)"', text)[1]
    wording = f"cannot reach Swift at {url} (connection failed: connection refused): check "
    for args in (("backup",), ("status", "main"), ("restore", "main", tmp_path / "r")):
        result = cfbackup("-c", config, *args, timeout=200)
        assert result.returncode == ExitCode.BACKEND, result
        assert wording in _one_line(result), result  # one wording, whichever client met the failure
        assert "HTTPConnectionPool" not in result.output and "Max retries" not in result.output


def test_wrong_credentials(tmp_path, make_config, cfbackup):
    config = make_config()
    (tmp_path / "src" / "f").write_text("x")
    result = cfbackup("-c", config, "backup", env={"T_SWIFT_KEY": "wrong-key-123"})
    assert result.returncode == ExitCode.BACKEND, result
    assert "rejected the credentials" in _one_line(result)
    assert "the password in $T_SWIFT_KEY" in _one_line(result)
    result = cfbackup("-c", config, "check", env={"T_SWIFT_KEY": "wrong-key-123"})
    assert result.returncode == ExitCode.REFUSED, result
    assert "rejected the credentials" in result.stdout


def test_rejected_password_names_the_file_it_was_read_from(tmp_path, make_config, cfbackup):
    secret = tmp_path / "swift-password"
    secret.write_text("wrong-key-123\n")
    config = make_config()
    config.write_text(
        config.read_text().replace('password_env = "T_SWIFT_KEY"', f'password_file = "{secret}"')
    )
    (tmp_path / "src" / "f").write_text("x")
    for args in (("backup",), ("restore", "main", tmp_path / "r")):  # cfbackup's, duplicity's
        result = cfbackup("-c", config, *args)
        assert result.returncode == ExitCode.BACKEND, result
        line = _one_line(result)
        assert "rejected the credentials" in line, result
        assert f"check swift.username and the password read from {secret}" in line, result


def test_lock_held_names_the_holder(tmp_path, make_config, cfbackup):
    config = make_config()
    lock_dir = tmp_path / "state" / "locks"
    lock_dir.mkdir(parents=True)
    with open(lock_dir / "main.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps({"pid": os.getpid(), "action": "backup", "since": 0}))
        handle.flush()
        result = cfbackup("-c", config, "backup")
    assert result.returncode == ExitCode.LOCKED, result
    assert f"PID {os.getpid()}" in _one_line(result)


def test_stale_lock_file_is_taken_over(tmp_path, make_config, cfbackup):
    config = make_config()
    (tmp_path / "src" / "f").write_text("x")
    lock_dir = tmp_path / "state" / "locks"
    lock_dir.mkdir(parents=True)
    (lock_dir / "main.lock").write_text(json.dumps({"pid": 999999, "action": "backup"}))
    result = cfbackup("-c", config, "backup")
    assert result.returncode == 0, result


BAD_CONFIGS = {
    "not toml": ("profiles = [[[", "not valid TOML"),
    "no profiles": ('state_dir = "/tmp"\n', "at least one [profiles.NAME]"),
    "missing source": ('[profiles.a]\ntarget = "file:///tmp/x"\n', "profiles.a.source"),
    "wrong type": (
        '[profiles.a]\nsource = "/tmp"\ntarget = "file:///tmp/x"\nrestore_prefetch = "big"\n',
        "profiles.a.restore_prefetch: expected an integer",
    ),
    "unknown key": (
        '[profiles.a]\nsource = "/tmp"\ntarget = "file:///tmp/x"\nvolsise = 3\n',
        "profiles.a.volsise: unknown key",
    ),
    "bad choice": (
        '[profiles.a]\nsource = "/tmp"\ntarget = "file:///tmp/x"\n'
        '[profiles.a.encryption]\nmode = "rot13"\n',
        "is not one of",
    ),
    "bad time": (
        '[profiles.a]\nsource = "/tmp"\ntarget = "file:///tmp/x"\n'
        'full_if_older_than = "fortnight"\n',
        "'fortnight' is not a time duplicity reads",
    ),
    "target not url": ('[profiles.a]\nsource = "/tmp"\ntarget = "/srv/backup"\n', "is not a URL"),
    "non utf8": (b"# \xff\xfe\n[profiles.a]\n", "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config(tmp_path, cfbackup, case):
    content, expected = BAD_CONFIGS[case]
    path = tmp_path / "bad.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    result = cfbackup("-c", path, "backup")
    assert result.returncode == ExitCode.CONFIG, result
    line = _one_line(result)
    assert str(path) in line and expected in line


def test_several_problems_are_reported_at_once(tmp_path, cfbackup):
    path = tmp_path / "bad.toml"
    path.write_text("[profiles.a]\ntarget = 3\nvolsize = -1\n")
    result = cfbackup("-c", path, "check")
    assert result.returncode == ExitCode.CONFIG
    line = _one_line(result)
    assert "3 problem(s)" in line and "profiles.a.source" in line and "profiles.a.target" in line


def test_inline_secret_needs_mode_600(tmp_path, make_config, cfbackup):
    config = make_config(encryption='passphrase = "inline-Secret-99"', mode=0o644)
    result = cfbackup("-c", config, "backup")
    assert result.returncode == ExitCode.CONFIG, result
    assert "chmod 600" in _one_line(result)
    assert "inline-Secret-99" not in result.output


def test_missing_config_file(tmp_path, cfbackup):
    result = cfbackup("-c", tmp_path / "nope.toml", "backup")
    assert result.returncode == ExitCode.CONFIG
    assert "no such file" in _one_line(result)


def test_unknown_profile(tmp_path, make_config, cfbackup):
    result = cfbackup("-c", make_config(), "backup", "nosuch")
    assert result.returncode == ExitCode.CONFIG
    assert "no profile named 'nosuch'" in _one_line(result)


def test_source_missing(tmp_path, make_config, cfbackup):
    config = make_config(source=tmp_path / "gone")
    (tmp_path / "gone").rmdir()
    result = cfbackup("-c", config, "backup")
    assert result.returncode == ExitCode.CONFIG
    assert "is not a directory" in _one_line(result)


def test_pattern_is_never_run_by_a_shell(tmp_path, make_config, cfbackup):
    marker = tmp_path / "pwned"
    config = make_config(extra=f'exclude = ["$(touch {marker})", "`touch {marker}`"]\n')
    (tmp_path / "src" / "f").write_text("x")
    result = cfbackup("-c", config, "backup")
    assert result.returncode == ExitCode.CONFIG, result
    assert "$(touch" in _one_line(result) and "is not under source" in result.stderr
    assert not marker.exists()
    src = tmp_path / "src"
    (src / "$(id)").write_text("a file named like a command substitution\n")
    inside = make_config(
        extra=f'exclude = ["{src}/$(touch {marker})", "{src}/`touch {marker}`"]\n'
        f'include = ["{src}/f", "{src}/$(id)", "{src}/*$(touch {marker})*"]\n'
    )
    result = cfbackup("-c", inside, "backup")
    assert result.returncode == 0, result
    listed = cfbackup("-c", inside, "list", "main")
    assert "$(id)" in listed.stdout, listed
    restored = tmp_path / "restored"
    result = cfbackup("-c", inside, "restore", "main", restored)
    assert result.returncode == 0, result
    assert sorted(p.name for p in restored.iterdir()) == ["$(id)", "f"]
    assert not marker.exists()


def test_several_profiles_the_first_failure_decides_and_the_others_still_run(
    tmp_path, make_config, cfbackup, local_swift, container
):
    """docs/exit-codes.md: every profile is attempted; the exit code is that of the first
    profile that failed (here REFUSED by a hook), not the last (BACKEND)."""

    def profile(name: str, extra: str, password_env: str) -> str:
        return (
            f'[profiles.{name}]\nsource = "{tmp_path / "src"}"\n'
            f'target = "swift://{container}-{name}"\narchive_dir = "{tmp_path}/archive"\n'
            f'{extra}[profiles.{name}.swift]\nauth_url = "{local_swift.auth_url}"\n'
            f'username = "{local_swift.users["admin"][0]}"\npassword_env = "{password_env}"\n'
            f'[profiles.{name}.encryption]\npassphrase_env = "T_PASSPHRASE"\n'
        )

    refused = profile("refused", "", "T_SWIFT_KEY") + (
        '[profiles.refused.command_hooks]\nbefore_backup = ["exit 3"]\n'
    )
    config = make_config(more=refused + profile("unreachable", "", "T_WRONG_KEY"))
    (tmp_path / "src" / "f").write_text("x")
    result = cfbackup("-c", config, "backup", env={"T_WRONG_KEY": "wrong-key-123"})
    assert result.returncode == ExitCode.REFUSED, result
    history = cfbackup("-c", config, "history", "--json")
    codes = {row["profile"]: row["exit_code"] for row in json.loads(history.stdout)}
    assert codes == {"main": 0, "refused": ExitCode.REFUSED, "unreachable": ExitCode.BACKEND}
    assert "before_backup command 'exit 3' exited with code 3" in result.stderr
    assert "rejected the credentials" in result.stderr
