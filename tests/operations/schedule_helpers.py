"""Helpers of the schedule tests: reading what ``schedule install --systemd`` writes."""

from __future__ import annotations

import configparser


def unit(text: str) -> configparser.ConfigParser:
    """A unit file as systemd reads its sections (case kept, no interpolation)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(text)
    return parser
