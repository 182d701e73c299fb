"""The manifest a backup hands its duplicity (``environment.manifest_slot``): a 0600 file in the
run's private folder, named in duplicity's environment before the check has run and filled
after it; no file when the check opened no manifest, nothing at all when the hand-over is
switched off. The folder is the run's ``scratch``, removed at its end or by the next run."""

from __future__ import annotations

import os
import stat

from cfbackup.duplicity.environment import NO_MANIFEST_HANDOVER, manifest_slot
from cfbackup.duplicity.patches import handed_manifest
from cfbackup.passcheck import Manifest

OPENED = Manifest("duplicity-full.20261205T061242Z.manifest.gpg", b"Hostname vm\nVolume 1:\n")


def test_the_plaintext_is_private(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    slot = manifest_slot(folder)
    path = slot.env[handed_manifest.FILE]
    assert not os.path.exists(path)  # named before the check, filled after it
    slot.put(OPENED)
    assert handed_manifest.read(path) == (OPENED.name, OPENED.data)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.path.dirname(path) == str(folder)


def test_nothing_to_hand_over(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    slot = manifest_slot(folder)  # the check opened no manifest: no file, nothing read
    assert handed_manifest.read(slot.env[handed_manifest.FILE]) is None
    monkeypatch.setenv(NO_MANIFEST_HANDOVER, "1")
    slot = manifest_slot(folder)
    slot.put(OPENED)
    assert slot.env == {} and list(folder.iterdir()) == []
