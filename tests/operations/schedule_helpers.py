"""Helpers of the schedule tests: reading what ``schedule install --systemd`` writes, and
what the scheduler daemon logs of a profile."""

from __future__ import annotations

import configparser


def unit(text: str) -> configparser.ConfigParser:
    """A unit file as systemd reads its sections (case kept, no interpolation)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(text)
    return parser


def profile_lines(caplog, profile: str) -> list[str]:
    """The daemon's log messages about ``profile`` (``profile NAME: ...``)."""
    return [
        r.getMessage() for r in caplog.records if r.getMessage().startswith(f"profile {profile}:")
    ]
