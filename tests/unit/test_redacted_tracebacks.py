"""What cfbackup logs and prints stays masked where the masking came too late: a traceback
logged with ``log.exception`` (the logging Formatter formats it only after the handler's
filters ran, so RedactingFilter formats it itself; the scheduler daemon and the firewall
dead-man log so), and ``--json`` output (masked before json.dumps escapes a secret)."""

from __future__ import annotations

import logging

import pytest

from cfbackup import redact

SECRET = "FAKE-traceback-secret-7"


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setattr(redact, "_values", set())
    redact.register(SECRET)


def test_a_logged_traceback_is_masked(secret, tmp_path):
    log = logging.getLogger("cfbackup.test_redacted_tracebacks")
    handler = logging.FileHandler(tmp_path / "run.log", encoding="utf-8")
    handler.addFilter(redact.RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise RuntimeError(f"login with {SECRET} refused; password=hunter2-FAKE")
        except RuntimeError:
            log.exception("handling %s failed", "SIGHUP")
        handler.flush()
    finally:
        log.removeHandler(handler)
        handler.close()
    text = (tmp_path / "run.log").read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "RuntimeError: login with ***" in text
    assert SECRET not in text and "hunter2-FAKE" not in text, text


def test_the_deadman_log_masks_a_traceback(secret, monkeypatch, capsys, tmp_path):
    from cfbackup_firewall_lockdown import deadman

    def fails(state_dir, token):
        raise RuntimeError(f"nft said: {SECRET}")

    monkeypatch.setattr(deadman, "watch", fails)
    # the dead-man's own process has no "cfbackup" handler: none left by another test either
    monkeypatch.setattr(logging.getLogger("cfbackup"), "handlers", [])
    monkeypatch.setattr(logging.getLogger("cfbackup"), "propagate", True)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert deadman.main(["--state-dir", str(tmp_path), "--token", "t1"]) == 1
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
    err = capsys.readouterr().err
    assert "the dead-man failed" in err and "RuntimeError: nft said: ***" in err, err
    assert SECRET not in err


@pytest.mark.parametrize("value", ["pässwört-FAKE", 'quo"te-FAKE', "back\\slash-FAKE"])
def test_json_output_masks_a_secret_json_would_escape(value, monkeypatch, capsys):
    """``--json`` output: json.dumps writes ``pässwört`` as ``p\\u00e4ssw\\u00f6rt`` (and
    escapes ``"`` and ``\\``), which redact no longer found after it; masked before it."""
    import json

    from cfbackup.cli import output

    monkeypatch.setattr(redact, "_values", set())
    redact.register(value)
    output.print_json({"message": f"auth with {value} failed", value: [value, 3, None]})
    out = capsys.readouterr().out
    assert json.loads(out) == {"message": "auth with *** failed", "***": ["***", 3, None]}
    assert value not in out and json.dumps(value)[1:-1] not in out
