"""The manifest a backup hands its duplicity (``environment.manifest_handover``): a 0600 file in
a private folder named in duplicity's environment before the check has run, filled after it,
gone when duplicity has ended, failed included; no file when the check opened no manifest,
nothing at all when the hand-over is switched off."""

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
    with pytest.raises(RuntimeError), manifest_handover() as slot:
        path = slot.env[handed_manifest.FILE]
        assert not os.path.exists(path)  # named before the check, filled after it
        slot.put(OPENED)
        assert handed_manifest.read(path) == (OPENED.name, OPENED.data)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        assert os.path.dirname(os.path.dirname(path)) == str(temp)
        raise RuntimeError("duplicity failed")
    assert list(temp.iterdir()) == []


def test_nothing_to_hand_over(temp, monkeypatch):
    with manifest_handover() as slot:  # the check opened no manifest: no file, nothing read
        assert handed_manifest.read(slot.env[handed_manifest.FILE]) is None
    monkeypatch.setenv(NO_MANIFEST_HANDOVER, "1")
    with manifest_handover() as slot:
        slot.put(OPENED)
        assert slot.env == {} and list(temp.iterdir()) == []
