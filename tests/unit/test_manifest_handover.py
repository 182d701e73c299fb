"""The manifest a backup hands its duplicity (``environment.manifest_handover``): a 0600 file in
a private folder named in duplicity's environment, gone when duplicity has ended, failed
included; nothing when the check opened no manifest or the hand-over is switched off."""

from __future__ import annotations

import os
import stat
import tempfile

import pytest

from cfbackup.duplicity.environment import NO_MANIFEST_HANDOVER, manifest_handover
from cfbackup.duplicity.patches import handed_manifest
from cfbackup.passcheck import Manifest

OPENED = Manifest("duplicity-full.20261205T061242Z.manifest.gpg", b"Hostname vm\nVolume 1:\n")


@pytest.fixture
def temp(tmp_path, monkeypatch):
    """tempfile's folder for the test (it reads TMPDIR once)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_the_plaintext_is_private_and_gone_after_a_failed_run(temp):
    with pytest.raises(RuntimeError), manifest_handover(OPENED) as env:
        path = env[handed_manifest.FILE]
        assert env[handed_manifest.NAME] == OPENED.name
        assert open(path, "rb").read() == OPENED.data
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        assert os.path.dirname(os.path.dirname(path)) == str(temp)
        raise RuntimeError("duplicity failed")
    assert list(temp.iterdir()) == []


def test_nothing_to_hand_over(temp, monkeypatch):
    with manifest_handover(None) as env:
        assert env == {}
    monkeypatch.setenv(NO_MANIFEST_HANDOVER, "1")
    with manifest_handover(OPENED) as env:
        assert env == {} and list(temp.iterdir()) == []
