"""Configuration: the schema, loading and validation, and the legacy dt-cf-backup reader."""

from cfbackup.config.load import build_config, load_config
from cfbackup.config.model import Config, Profile

__all__ = ["Config", "Profile", "build_config", "load_config"]
