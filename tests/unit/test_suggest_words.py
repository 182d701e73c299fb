"""``suggest.command``: a command a message suggests runs as it is printed, whatever the words
hold. cfbackup's output spells out control characters and bytes that are not UTF-8
(``units.printable``), so such a word is written in bash's ``$'...'``, never dropped."""

from __future__ import annotations

import os
import subprocess

import pytest

from cfbackup import suggest
from cfbackup.cli import output
from cfbackup.errors import CfbackupError

WORDS = [
    "plain",
    "two words",
    "it's",
    "clear\x1b[2J",
    "new\nline",
    "tab\there",
    "caf\udce9",  # a byte that is not UTF-8, as os.fsdecode gives it
    "invoice\u202etxt.exe",
    " edge ",
    "$'x'",
    "café 日本",
]


def _argv_in_bash(printed: str) -> list[bytes]:
    """The words bash hands to ``cfbackup`` when ``printed`` is pasted into it."""
    script = f'cfbackup() {{ printf "%s\\0" "$@"; }}\n{printed}\n'
    ran = subprocess.run(["bash", "-c", script], capture_output=True, check=True)
    return ran.stdout.split(b"\0")[:-1]


@pytest.mark.parametrize("config", [None, "/tmp/c\x1bfg/base.toml"])
def test_a_suggested_command_runs_as_printed_whatever_its_words_hold(capsys, config):
    """Before: shlex.join wrote the raw ESC, newline or surrogate into the command; printed,
    they came out spelled as \\x1b, \\x0a, \\xe9, which bash passes on as those letters (and
    callers dropped the command for such a word)."""
    suggest.use_config(config)
    try:
        command = suggest.command("restore", "web", "/srv/r", "--path", *WORDS)
    finally:
        suggest.use_config(None)
    output.print_error(CfbackupError(f"run {command}."), debug=False)
    printed = capsys.readouterr().err.removeprefix("cfbackup: error: run ").removesuffix(".\n")
    assert printed == command and "\n" not in printed, printed
    expected = ["-c", config] if config else []
    expected += ["restore", "web", "/srv/r", "--path", *WORDS]
    assert _argv_in_bash(printed) == [os.fsencode(w) for w in expected]
