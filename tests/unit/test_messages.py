"""Masking never changes cfbackup's own sentences: every user-facing message in the code,
rendered, comes out of every output path (error line, warning line, run log, run history,
notification text) exactly as written when it holds no secret.

The messages are found in the source (raised errors, warnings, config problems, results, log
templates) and rendered with a neutral word in each placeholder. Credential-shaped text is
masked where other programs' output enters cfbackup (``redact.redact_output``); run over these
sentences, that masking would mangle some ("needs a passphrase: set ..."), which the last
assertion shows.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

import pytest

from cfbackup import redact
from cfbackup.cli import output
from cfbackup.errors import CfbackupError

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = "X1"
SINKS = {"warn", "print_error", "append", "info", "warning", "error", "exception"}


def _render(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = [
            PLACEHOLDER if isinstance(v, ast.FormattedValue) else _render(v) for v in node.values
        ]
        return None if None in parts else "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _render(node.left), _render(node.right)
        return None if left is None or right is None else left + right
    return None


def _messages() -> list[tuple[str, str]]:
    """(where, rendered message) for every message the code raises, warns, logs or returns."""
    found = []
    for path in sorted([*REPO.glob("cfbackup/**/*.py"), *REPO.glob("plugins/**/*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            candidates: list[ast.AST] = []
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                candidates.append(node.exc.args[0])
            elif isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in SINKS and node.args:
                    candidates.append(node.args[0])
                candidates += [k.value for k in node.keywords if k.arg == "message"]
            for candidate in candidates:
                text = _render(candidate)
                if text and len(text) > 12 and " " in text:
                    text = re.sub(r"%(\.\d+)?[sdfr]", PLACEHOLDER, text).replace("%%", "%")
                    found.append((f"{path.relative_to(REPO)}:{candidate.lineno}", text))
    return found


MESSAGES = _messages()


@pytest.fixture
def no_secrets(monkeypatch):
    monkeypatch.setattr(redact, "_values", set())


def test_every_message_comes_out_as_written(no_secrets, capsys, tmp_path):
    log = logging.getLogger("cfbackup.test_messages")
    handler = logging.FileHandler(tmp_path / "run.log", encoding="utf-8")
    handler.addFilter(redact.RedactingFilter())
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        for where, message in MESSAGES:
            assert redact.redact(message) == message, where
            output.print_error(CfbackupError(message), debug=False)
            output.warn(message)
            assert capsys.readouterr().err == (
                f"cfbackup: error: {message}\ncfbackup: warning: {message}\n"
            ), where
            log.info(message)  # as the template (no arguments: no % formatting)
            log.info("run failed: %s", message)  # as an argument (runner.py)
        handler.flush()
        written = (tmp_path / "run.log").read_text(encoding="utf-8").split("\n")
        expected = [line for _, m in MESSAGES for line in (m, f"run failed: {m}")]
        assert "\n".join(written[:-1]) == "\n".join(expected)
    finally:
        log.removeHandler(handler)
        handler.close()


def test_notifications_carry_messages_as_written(no_secrets):
    from cfbackup_notify import summary

    for where, message in MESSAGES:
        assert summary.scrub({"message": message}) == {"message": message}, where


def test_the_scan_finds_the_messages_that_patterns_once_mangled():
    assert len(MESSAGES) > 300
    mangled = [m for _, m in MESSAGES if redact.redact_output(m) != m]
    assert any("needs a passphrase: set" in m for m in mangled), mangled[:5]


def test_other_programs_output_is_still_masked(no_secrets):
    line = "connection arguments:'{'key': 'hunter22', 'X-Auth-Token': 'AUTH_tk0123456789ab'}'"
    masked = redact.redact_output(line)
    assert "hunter22" not in masked and "AUTH_tk0123456789ab" not in masked
    redact.register("a-registered-secret")
    assert redact.redact("it is a-registered-secret here") == "it is *** here"
