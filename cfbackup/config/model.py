"""The validated config as the rest of cfbackup sees it: a Config holding Profiles."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


@dataclasses.dataclass
class Profile:
    """One profile, validated, with every default filled in.

    ``data`` is the nested dict the schema describes (``data["swift"]["auth_url"]``);
    ``secrets_base`` is the folder relative ``*_file`` secrets are resolved against.
    """

    name: str
    data: dict[str, Any]
    source_file: Path | None = None
    legacy: bool = False  # read from a legacy (bash) file: its settings have the old names
    # its *_file secrets that other users can read (or that are not the user's): it runs,
    # and every run says so (stderr, run log, history, notification; check fails)
    secret_file_warnings: list[str] = dataclasses.field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def source(self) -> Path:
        return Path(self.data["source"]).expanduser()

    @property
    def target(self) -> str:
        return self.data["target"]

    @property
    def backup_name(self) -> str:
        return self.data.get("name") or self.name

    @property
    def archive_dir(self) -> Path:
        return Path(self.data["archive_dir"]).expanduser()

    def plugin_config(self, section: str) -> dict[str, Any]:
        return self.data.get(section) or {}


@dataclasses.dataclass
class Config:
    """A loaded config file: its profiles and the top-level settings."""

    path: Path | None
    kind: str  # "native" or "legacy"
    profiles: dict[str, Profile]
    state_dir: Path
    warnings: list[str] = dataclasses.field(default_factory=list)
    log_dir: Path | None = None
    # the plugins' sections it was validated with (a recovery kit's config is checked the same)
    plugin_sections: dict[str, Any] = dataclasses.field(default_factory=dict)
    # a legacy file holding secrets that others can read: it runs, and every run says so
    permission_warning: str | None = None
    # [environment]: proxy and CA variables the CLI sets for the run (execute.NETWORK_ENV)
    environment: dict[str, str] = dataclasses.field(default_factory=dict)

    def profile(self, name: str | None) -> Profile:
        from cfbackup.errors import ConfigError

        if name is None:
            if len(self.profiles) == 1:
                return next(iter(self.profiles.values()))
            raise ConfigError(
                f"{self.path}: several profiles ({', '.join(self.profiles)}); name the one to use."
            )
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(self.profiles) or "none"
            raise ConfigError(
                f"{self.path}: no profile named {name!r} (profiles: {known})"
                f"{self._legacy_file(name) or self._close(name)}"
            ) from None

    def _legacy_file(self, name: str) -> str | None:
        """ ": it is the profile of ~/.dt-cf-backup.conf ...": the old file's profile asked
        for while a native config was found first (both on a new machine: the config copied
        back, or a legacy recovery kit imported beside it), with the ``-c`` that reads it."""
        from cfbackup import suggest
        from cfbackup.config.legacy_vars import PROFILE_NAME
        from cfbackup.units import printable_name

        legacy = Path("~/.dt-cf-backup.conf").expanduser()
        if name != PROFILE_NAME or self.kind != "native" or not legacy.is_file():
            return None
        # the -c as one shell word: a HOME with a space or a byte that is not UTF-8 pastes
        return (
            f": it is the profile of {printable_name(str(legacy))}, which cfbackup reads only "
            f"when it finds no other config: add -c {suggest.word(str(legacy))} to the command."
        )

    def _close(self, name: str) -> str:
        """ ": did you mean web?" for a name that differs by case (Web) or a letter or two."""
        import difflib

        same = [known for known in self.profiles if known.lower() == name.lower()]
        close = same or difflib.get_close_matches(name, list(self.profiles), n=1, cutoff=0.75)
        return f": did you mean {close[0]}?" if close else "."

    def select(self, names: list[str] | None) -> list[Profile]:
        if not names:
            return list(self.profiles.values())
        return [self.profile(n) for n in names]
