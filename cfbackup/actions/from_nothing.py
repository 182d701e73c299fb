"""``cfbackup drill PROFILE --from-nothing``: the drill as a new machine would run it, from the
recovery kit alone.

The kit (``--kit KIT``, else the newest one this profile exported: the run history records
where) is opened with ``--passphrase-file F``, else with the profile's passphrase as this
machine's config reads it (the kit is encrypted with it, so a kit it no longer opens is stale).
:func:`recovery_import.import_kit` installs it in a throw-away HOME with its own GNUPGHOME, and
the drill runs on the kit's profile pointed there: the kit's config, the kit's keys, duplicity's
archive dir inside that HOME. This machine's config only says where the result goes (run
history, metrics, notifications), which kit is the newest and where the passphrase is; its
archive-dir cache and keyring are never read. The secrets the kit's config reads from the
environment, files or commands still come from there: the drill names them, and refuses with
every missing one named, since a restore from the kit would need them too.

The throw-away HOME is made in the temp dir under a short name (gpg-agent's socket path must
fit in 107 bytes). It, its gpg-agent and the drill's scratch folder are removed on every way
out, Ctrl-C included; one left by a drill killed with -9 is removed, its agent stopped, by the
next drill.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cfbackup import gpgkeys, history, redact
from cfbackup.actions.recovery_import import (
    SecretNeed,
    WrongKitPassphrase,
    import_kit,
    secret_needs,
)
from cfbackup.actions.recovery_kit import KIT_ACTION, export_command
from cfbackup.config.model import Profile
from cfbackup.config.schema import PROFILE
from cfbackup.config.secrets import read_secret_file, resolve_secret
from cfbackup.errors import CfbackupError, ConfigError, CryptoError, ExitCode, RunRefused
from cfbackup.lock import pid_alive
from cfbackup.runtypes import Run

log = logging.getLogger("cfbackup")

PREFIX = "cfbackup-home-"  # then the pid, a dash and mkdtemp's random part
# TMPDIR + /cfbackup-home-PID-XXXXXXXX/.gnupg/S.gpg-agent.browser must fit in 107 bytes
MAX_TEMP_BASE = 44
KIT_OPTIONS = ("kit", "passphrase_file")


@dataclasses.dataclass
class Sandbox:
    """The kit's profile as a new machine sees it, and what it read from this machine."""

    kit: Path
    home: Path
    profile: Profile
    env: dict[str, str]
    secrets: list[SecretNeed]

    def facts(self) -> dict[str, Any]:
        """What the run history keeps: the kit, the secrets read here, the throw-away paths."""
        return {
            "kit": str(self.kit),
            "secrets_from_this_machine": [f"{s.key} ({s.how})" for s in self.secrets],
            "sandbox": {
                "home": str(self.home),
                "gnupghome": self.profile["encryption"]["gpg_home"],
                "archive_dir": str(self.profile.archive_dir),
            },
        }

    def describe(self) -> str:
        """``from the recovery kit K alone, secrets read here: ...``"""
        used = ", ".join(f"{s.key} ({s.how})" for s in self.secrets) or "none"
        return f"from the recovery kit {self.kit.name} alone; secrets read here: {used}"


def refuse_kit_options(run: Run) -> None:
    """``--kit`` and ``--passphrase-file`` belong to ``--from-nothing``."""
    given = [f"--{k.replace('_', '-')}" for k in KIT_OPTIONS if run.options.get(k)]
    if given:
        go, them = ("go", "them") if len(given) > 1 else ("goes", "it")
        raise CfbackupError(
            f"{' and '.join(given)} {go} with --from-nothing: add --from-nothing to drill from "
            f"the recovery kit, or leave {them} out.",
            exit_code=ExitCode.USAGE,
        )


@contextlib.contextmanager
def sandbox(run: Run, facts: dict[str, Any]) -> Iterator[Sandbox]:
    """The kit of ``run``'s profile installed in a throw-away HOME, removed on the way out;
    ``facts`` gets what the history should keep as soon as it is known. A CryptoError inside
    (the kit's keys do not open the backup) becomes the stale-kit error."""
    kit = choose_kit(run)
    facts["kit"] = str(kit)
    passphrase = kit_passphrase(run)
    with throwaway_home() as home:
        box = _install(run, kit, passphrase, home)
        facts.update(box.facts())
        log.info("drill from nothing: %s, in the throw-away HOME %s", box.describe(), home)
        try:
            yield box
        except CryptoError as error:
            raise _stale(run, kit, error) from None


def choose_kit(run: Run) -> Path:
    """``--kit``, else the newest kit this profile exported (its path is in the history)."""
    given = run.options.get("kit")
    if given:
        return Path(given).expanduser().absolute()
    name = run.profile.name
    made = history.last(run.config.state_dir, name, KIT_ACTION, "success")
    if made is None:
        raise ConfigError(
            f"profile {name} has no recovery kit to drill from (none was exported on this "
            f"machine): make one with {_export(run)}, or give --kit KIT."
        )
    path = made["stats"].get("kit")
    if not path:  # exported before the history recorded where
        raise ConfigError(
            f"the run history names the newest recovery kit of profile {name} ({made['message']}) "
            f"but not where it was written: give --kit KIT, or make a new kit with {_export(run)}."
        )
    if not Path(path).is_file():
        raise ConfigError(
            f"the newest recovery kit of profile {name}, {path}, is no longer there: give --kit "
            f"KIT (a copy of it), or make a new kit with {_export(run)}."
        )
    return Path(path)


def kit_passphrase(run: Run) -> str:
    """``--passphrase-file``, else the profile's passphrase (the one the kit is encrypted with)."""
    path = run.options.get("passphrase_file")
    if path:
        value = read_secret_file(path, "--passphrase-file", "passphrase", warn_loose=True)
        redact.register(value)
        return value
    where = f"profiles.{run.profile.name}.encryption"
    value = resolve_secret(run.profile["encryption"], "passphrase", where)
    if not value:
        raise CfbackupError(
            f"{where} sets no passphrase to open the recovery kit with: give --passphrase-file F "
            "(a file holding the kit's passphrase, mode 0600).",
            exit_code=ExitCode.USAGE,
        )
    return value


def _install(run: Run, kit: Path, passphrase: str, home: Path) -> Sandbox:
    """Import the kit into ``home`` and check what the drill needs, before any download."""
    name = run.profile.name
    gnupghome = home / ".gnupg"
    try:
        imported = import_kit(
            kit,
            passphrase,
            home=home,
            gnupghome=gnupghome,
            plugin_sections=run.config.plugin_sections,
        )
    except WrongKitPassphrase:
        if run.options.get("passphrase_file"):
            raise
        raise CryptoError(
            f"the passphrase of profile {name} does not open the recovery kit {kit}: the kit is "
            f"stale (made before the passphrase changed) or another profile's: make a new kit "
            f"with {_export(run)}, or give --passphrase-file F."
        ) from None
    config = imported.config
    assert config is not None
    if name not in config.profiles:
        raise ConfigError(
            f"the recovery kit {kit} holds no profile {name} (it holds "
            f"{', '.join(config.profiles)}): give the kit of profile {name} with --kit KIT."
        )
    profile = _on_throwaway_home(config.profiles[name], home)
    if profile.target != run.profile.target:
        raise RunRefused(
            f"the recovery kit {kit} is stale: its config backs up profile {name} to "
            f"{profile.target}, this machine's to {run.profile.target}: make a new kit with "
            f"{_export(run)}."
        )
    needs = secret_needs({"profiles": {name: profile.data}}, PROFILE, os.environ)
    missing = [need for need in needs if need.present is False]
    if missing:
        raise ConfigError(
            f"the recovery kit's config of profile {name} reads secrets that are missing on this "
            "machine (a restore from the kit needs them too): "
            + "; ".join(need.advice() for need in missing)
            + "."
        )
    from cfbackup.duplicity.environment import duplicity_environment

    env = duplicity_environment(profile)
    env["HOME"] = str(home)
    gpgkeys.check_keys(profile, need_secret=True)
    return Sandbox(kit=kit, home=home, profile=profile, env=env, secrets=needs)


def _on_throwaway_home(profile: Profile, home: Path) -> Profile:
    """The kit's profile with duplicity's archive dir and the keyring inside ``home``, whatever
    the kit's config says (its paths are the old machine's, or this one's)."""
    data = copy.deepcopy(profile.data)
    data["archive_dir"] = str(home / ".cache" / "cfbackup" / "duplicity")
    data["encryption"]["gpg_home"] = str(home / ".gnupg")
    return dataclasses.replace(profile, data=data)


def _stale(run: Run, kit: Path, error: CryptoError) -> CryptoError:
    log.info("the recovery kit's keys failed: %s", error.message)
    return CryptoError(
        f"the keys in the recovery kit {kit}, with the passphrase its config reads on this "
        f"machine, do not decrypt the backup of profile {run.profile.name} at "
        f"{run.profile.target}: the kit is stale (the keys or the passphrase changed after it "
        f"was made): make a new kit with {_export(run)} (the run log has gpg's words)."
    )


def _export(run: Run) -> str:
    return export_command(run.config, run.profile.name)


@contextlib.contextmanager
def throwaway_home() -> Iterator[Path]:
    """An empty private HOME with an empty ``.gnupg``, removed (its gpg-agent stopped) on
    every way out; ones that drills killed with -9 left behind are removed first."""
    base = Path(tempfile.gettempdir())
    if len(str(base)) > MAX_TEMP_BASE:
        base = Path("/tmp")
    for old in base.glob(f"{PREFIX}*"):
        pid = old.name.removeprefix(PREFIX).split("-", 1)[0]
        with contextlib.suppress(OSError):
            mine = old.lstat().st_uid == os.getuid() and old.is_dir() and not old.is_symlink()
            if mine and pid.isdigit() and not pid_alive(int(pid)):
                _remove(old)
    home = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))
    try:
        (home / ".gnupg").mkdir(mode=0o700)
        yield home
    finally:
        _remove(home)


def _remove(home: Path) -> None:
    if (home / ".gnupg").is_dir():
        with contextlib.suppress(CfbackupError):  # no gpgconf: no agent was started either
            gpgkeys.stop_agent(home / ".gnupg")
    shutil.rmtree(home, ignore_errors=True)
