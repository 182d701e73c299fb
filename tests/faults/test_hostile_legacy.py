"""Hostile ~/.dt-cf-backup.conf files: odd quoting, huge values, non-UTF-8, shell code.

The file is bash, as it was for dt-cf-backup.sh (which sourced it): what bash runs when the
user's own file is sourced runs, exactly as bash would run it, and nothing else (a quoted
``$(...)`` stays text, and no value ever reaches a shell again). Every file ends in a working
config or one clear ConfigError, never a traceback. Native TOML: tests/unit/test_hostile_config.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from faultkit import assert_clean
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.cli import BIN, PASSPHRASE

from cfbackup.config.load import build_config, read_raw
from cfbackup.errors import ConfigError, ExitCode

pytestmark = pytest.mark.faults

NAMES = (
    "ROOT",
    "DEST",
    "INCLIST",
    "EXCLIST",
    "PASSPHRASE",
    "STATIC_OPTIONS",
    "VERBOSITY",
    "CLEAN_UP_TYPE",
    "CLEAN_UP_VARIABLE",
    "GPG_KEY",
    "LOGDIR",
    "CLOUDFILES_AUTHURL",
    "SWIFT_AUTHVERSION",
    "ENCRYPTION",
    "EMAIL_TO",
    "OTHER",
)

# Lines a hostile or careless file may hold; {q} is replaced by the quoted-sentinel marker path.
SNIPPETS = (
    "INCLIST=( '{root}/$(touch {q})' '{root}/`touch {q}`' )",  # quoted: text, never run
    "EXCLIST='$(touch {q})'",
    "STATIC_OPTIONS='--volsize $(touch {q}) --full-if-older-than 7D'",
    "BIG=$(head -c 200000 /dev/zero | tr '\\0' a); ROOT=\"/$BIG\"",  # huge value
    "INCLIST=( $(seq 1 300 | sed 's#^#{root}/#') )",  # a long array
    "ROOT=$'/tmp/\\xff\\xfe'",  # bytes that are not UTF-8, from a UTF-8 file
    "ROOT=\"/tmp/$(head -c 300 /dev/zero | tr '\\0' a)\"",  # a name longer than NAME_MAX
    "printf() { command printf 'ROOT\\0a\\0zz\\0'; }",  # breaks the reader's own printf
    "declare() { :; }",
    "exec >/dev/null",
    "exit 0",
    "return 3",
    "false",
    "read -r LINE",  # reads end-of-file, never the terminal
    "set -u; echo $UNSET_VARIABLE",
    "if then",
    'ROOT="unterminated',
    "unset PATH",
    "IFS=/",
    "trap 'echo junk' EXIT",
    "VERBOSITY=-v9000",
    "CLEAN_UP_TYPE=remove-everything; CLEAN_UP_VARIABLE=many",
    "DEST=cf+http://",
    "GPG_KEY=foobar_gpg_key",
    "ENCRYPTION=no",
    "SWIFT_AUTHVERSION=2",
    "export PASSPHRASE=",
)

text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)


@st.composite
def quoted(draw) -> str:
    value = draw(text)
    style = draw(st.sampled_from(["double", "single", "ansi", "bare", "array"]))
    if style == "double":
        return '"' + "".join("\\" + c if c in '"\\$`' else c for c in value) + '"'
    if style == "single":
        return "'" + value.replace("'", "'\\''") + "'"
    if style == "ansi":
        return "$'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if style == "array":
        return "( " + " ".join("'" + v.replace("'", "'\\''") + "'" for v in value.split()) + " )"
    return value  # unquoted: may well be a syntax error, as a careless edit makes


@st.composite
def legacy_files(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["assign", "snippet", "bytes"]))
        if kind == "assign":
            lines.append(f"{draw(st.sampled_from(NAMES))}={draw(quoted())}".encode())
        elif kind == "snippet":
            lines.append(draw(st.sampled_from(SNIPPETS)).encode())
        else:
            lines.append(draw(st.binary(max_size=20)).replace(b"\0", b""))
    return b"\n".join(lines)


@settings(
    max_examples=40,  # each example runs bash twice
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=legacy_files())
@example(body=b"printf() { command printf 'ROOT\\0a\\0zz\\0'; }")  # was a ValueError traceback
@example(body=b"read -r LINE")  # was refused: a false last command (dt-cf-backup.sh went on)
@example(body=b"if then")
def test_hostile_legacy_files_read_safely(tmp_path, body):
    root, marker = tmp_path / "root", tmp_path / "quoted-ran"
    root.mkdir(exist_ok=True)
    marker.unlink(missing_ok=True)  # tmp_path is shared by the examples
    head = f'ROOT="{root}"\nDEST="file://{tmp_path}/target"\nPASSPHRASE=x\n'.encode()
    body = body.replace(b"{root}", str(root).encode()).replace(b"{q}", str(marker).encode())
    path = tmp_path / "dt-cf-backup.conf"
    path.write_bytes(head + body + b"\n")
    path.chmod(0o600)
    try:
        raw, kind, _warnings = read_raw(path)
        assert kind == "legacy"
        config = build_config(raw, path=path, kind=kind)
    except ConfigError as error:
        assert error.message.startswith(str(path)), error.message
    else:
        assert config.profiles
    assert not marker.exists(), "a quoted $(...) or `...` was run"


def _dt_cf_backup(tmp_path, *args: str) -> subprocess.CompletedProcess:
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home)}
    completed = subprocess.run(
        [str(BIN / "dt-cf-backup"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    output = completed.stdout + completed.stderr
    assert "Traceback" not in output, output
    assert_clean(output)
    return completed


def test_quoted_shell_code_in_patterns_is_backed_up_as_text(tmp_path):
    """A file literally named ``$(touch ...)`` is included by its name: the pattern goes to
    duplicity in argv, never through a shell."""
    src, marker = tmp_path / "src", tmp_path / "ran"  # dt-cf-backup runs in tmp_path
    odd = src / f"$(touch {marker.name})"
    odd.mkdir(parents=True)
    (src / "plain.txt").write_text("plain\n")
    (odd / "f").write_text("inside\n")
    conf = tmp_path / "dt.conf"
    conf.write_text(
        f"ROOT='{src}'\nDEST='file://{tmp_path}/target'\nPASSPHRASE='{PASSPHRASE}'\n"
        f"INCLIST=( '{odd}' '{src}/plain.txt' )\nEXCLIST=( '{src}/`touch {marker.name}`' )\n"
        "CLEAN_UP_TYPE=none\n"
    )
    conf.chmod(0o600)
    result = _dt_cf_backup(tmp_path, "--config", str(conf), "--backup")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    result = _dt_cf_backup(tmp_path, "--config", str(conf), "--restore", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / odd.name / "f").read_text() == "inside\n"
    assert not marker.exists()


@pytest.mark.parametrize(
    "line",
    [
        "ROOT=\"/tmp/$(head -c 300 /dev/zero | tr '\\0' a)\"",  # longer than NAME_MAX
        "INCLIST=( $(seq 1 300) )",  # not under ROOT: 300 problems in one message
        "ROOT=$'/tmp/\\xff'",  # not UTF-8, does not exist
    ],
)
def test_hostile_values_end_in_one_clear_error(tmp_path, line):
    conf = tmp_path / "dt.conf"
    conf.write_text(f"ROOT=/tmp\nDEST='file://{tmp_path}/target'\nPASSPHRASE=x\n{line}\n")
    conf.chmod(0o600)
    result = _dt_cf_backup(tmp_path, "--config", str(conf), "--backup")
    assert result.returncode == ExitCode.CONFIG, result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("cfbackup: error:")]
    assert len(errors) == 1, result.stderr
    assert not Path(f"{tmp_path}/target").exists()
