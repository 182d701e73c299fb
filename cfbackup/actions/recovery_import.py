"""``cfbackup recovery-kit import KIT``: from the kit alone to a machine that can restore.

The kit (``recovery_kit.export_kit``) is a tar archive encrypted with the profile's passphrase
holding the config and, for public-key encryption, the keys. :func:`import_kit` decrypts it,
installs the config for the user it is given (``HOME``), imports the keys into the keyring it is
given (``GNUPGHOME``), points ``gpg_home`` there, and lists what the config still needs from
this machine: secrets read from the environment, files or commands are never in the kit. It
takes its HOME and keyring as arguments, so a drill can run it in a throw-away HOME.

Nothing is half-done: every check (passphrase, archive, config, the file already there) runs
before the first change, and the config is written last, atomically.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import tarfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cfbackup.config.model import Config
from cfbackup.config.schema import Option, with_plugin_sections
from cfbackup.errors import ConfigError, CryptoError, RunRefused

NATIVE, LEGACY, KEYS = "config.toml", "dt-cf-backup.conf", "keys.asc"
MEMBERS = (NATIVE, LEGACY, KEYS, "README.txt")
MAX_MEMBER = 10_000_000  # a config, keys and a README: anything larger is not a kit
DEFAULT_PLACES = {NATIVE: ".config/cfbackup/config.toml", LEGACY: ".dt-cf-backup.conf"}
SECRET_HOW = {"_env": "env", "_file": "file", "_command": "command"}


class WrongKitPassphrase(CryptoError):
    """The passphrase does not open the kit (exit 11)."""


@dataclasses.dataclass
class SecretNeed:
    """One secret the installed config reads from this machine."""

    key: str  # the dotted key, e.g. profiles.web1.swift.password_file
    how: str  # env, file or command
    value: str  # the variable, the path or the command
    present: bool | None  # the variable is set / the file exists (None: a command, untested)

    def advice(self) -> str:
        name = self.key.rsplit(".", 1)[-1].rsplit("_", 1)[0]
        if self.how == "env":
            state = "set here" if self.present else "not set here"
            return f"{self.key}: export {self.value} holding the {name} ({state})"
        if self.how == "file":
            if self.present:
                return f"{self.key}: {self.value} exists here"
            return f"{self.key}: re-create {self.value} holding the {name} (chmod 600 {self.value})"
        return f"{self.key}: make sure the command {self.value} prints the {name} on this machine"


@dataclasses.dataclass
class ImportedKit:
    config_path: Path
    kind: str  # "native" or "legacy"
    profiles: list[str]
    keyring: Path
    keys: list[str]  # fingerprints imported
    gpg_home_was: dict[str, str]  # dotted key -> the old value, for each gpg_home rewritten
    secrets: list[SecretNeed]
    missing_sources: list[tuple[str, str]]  # (profile, source) that do not exist here yet
    config: Config | None = None  # the installed config, loaded


def import_kit(
    kit: Path,
    passphrase: str,
    *,
    home: Path,
    gnupghome: Path | None = None,
    to: Path | None = None,
    force: bool = False,
    plugin_sections: dict[str, tuple[Option, ...]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ImportedKit:
    """Install the kit's config for the user whose home is ``home`` (at ``to``, else the
    default place under ``home``), mode 0600, and import its keys into ``gnupghome`` (else
    ``home/.gnupg``). Refuses to overwrite an existing config unless ``force``."""
    environ = os.environ if environ is None else environ
    members = _open_kit(kit, passphrase)
    kind = NATIVE if NATIVE in members else LEGACY
    if kind not in members:
        raise ConfigError(f"{kit}: the recovery kit holds no config: make a new kit.")
    text = members[kind].decode("utf-8")
    keyring = Path(gnupghome or home / ".gnupg").expanduser()
    destination = Path(to).expanduser() if to else home / DEFAULT_PLACES[kind]
    if destination.exists() and not force:
        raise RunRefused(
            f"{destination} already exists; nothing was changed: move it away, or add --force "
            "to overwrite it with the kit's config."
        )
    from cfbackup.config.load import build_config, read_raw

    rewritten: dict[str, str] = {}
    if kind == NATIVE:  # valid before anything changes (a legacy file is read by bash: after)
        text, rewritten = set_gpg_home(text, _parse(text, kit), str(keyring))
        build_config(tomllib.loads(text), path=None, plugin_sections=plugin_sections or {})
    keys = _import_keys(members.get(KEYS), passphrase, keyring) if KEYS in members else []
    if rewritten and not keyring.is_dir():  # symmetric kits: gpg needs the directory anyway
        keyring.mkdir(parents=True, mode=0o700)
    _write_private(destination, text)
    raw, config_kind, _warnings = read_raw(destination)
    config = build_config(
        raw, path=destination, kind=config_kind, plugin_sections=plugin_sections or {}
    )
    schema = with_plugin_sections(plugin_sections or {})
    return ImportedKit(
        config_path=destination,
        kind=config_kind,
        profiles=list(config.profiles),
        keyring=keyring,
        keys=keys,
        gpg_home_was=rewritten,
        secrets=secret_needs(raw, schema, environ),
        missing_sources=[
            (name, str(p.source)) for name, p in config.profiles.items() if not p.source.is_dir()
        ],
        config=config,
    )


def _open_kit(kit: Path, passphrase: str) -> dict[str, bytes]:
    """The kit's members, decrypted in a throw-away keyring (no agent caches its passphrase)."""
    try:
        data = kit.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{kit}: no such file: give the path of the recovery kit.") from None
    except OSError as error:
        raise ConfigError(f"cannot read the recovery kit {kit} ({error.strerror}).") from None
    from cfbackup.passcheck import empty_keyring

    with empty_keyring() as gpg:
        result = gpg.decrypt(
            data, passphrase=passphrase, extra_args=["--pinentry-mode", "loopback"]
        )
    if not result.ok:
        if "no valid OpenPGP data" in (result.stderr or "") or "NODATA" in (result.stderr or ""):
            raise ConfigError(
                f"{kit} is not a cfbackup recovery kit (it is not gpg-encrypted): give the "
                "*.tar.gpg file cfbackup recovery-kit export wrote."
            )
        raise WrongKitPassphrase(
            f"the passphrase does not decrypt the recovery kit {kit}: give the passphrase of "
            "the profile the kit was made for (its README names it)."
        )
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(result.data), mode="r:") as tar:
            for info in tar.getmembers():
                if info.name in MEMBERS and info.isfile() and info.size <= MAX_MEMBER:
                    handle = tar.extractfile(info)
                    if handle is not None:
                        members[info.name] = handle.read()
    except tarfile.TarError:
        raise ConfigError(
            f"{kit} decrypts, but is not a cfbackup recovery kit (no tar archive inside)."
        ) from None
    return members


def _parse(text: str, kit: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{kit}: the kit's config.toml is not valid TOML ({error}).") from None


def _import_keys(data: bytes | None, passphrase: str, keyring: Path) -> list[str]:
    import gnupg

    keyring.mkdir(parents=True, exist_ok=True, mode=0o700)
    gpg = gnupg.GPG(gnupghome=str(keyring))
    result = gpg.import_keys(
        (data or b"").decode("utf-8", "replace"),
        passphrase=passphrase,
        extra_args=["--pinentry-mode", "loopback"],
    )
    fingerprints = list(dict.fromkeys(f for f in result.fingerprints if f))
    if not fingerprints:
        raise CryptoError(
            f"gpg imported no key from the kit into {keyring} ({result.summary()}): check "
            "that the directory is yours and writable."
        )
    return fingerprints


_GPG_HOME_LINE = re.compile(r"""^(\s*gpg_home\s*=\s*)("(?:[^"\\]|\\.)*"|'[^']*')(.*)$""", re.M)


def set_gpg_home(text: str, raw: dict[str, Any], keyring: str) -> tuple[str, dict[str, str]]:
    """``text`` with every ``gpg_home`` set to ``keyring`` (comments and layout kept), and the
    old values by dotted key. A layout the line edit cannot handle (an inline table) is
    written out again in full, with a comment saying so."""
    import tomli_w

    old = dict(_find_key(raw, "gpg_home", ""))
    if not old:
        return text, {}
    value = tomli_w.dumps({"v": keyring}).split("=", 1)[1].strip()
    edited = _GPG_HOME_LINE.sub(lambda m: m[1] + value + m[3], text)
    wanted = _replace_key(raw, "gpg_home", keyring)
    try:
        if tomllib.loads(edited) == wanted:
            return edited, old
    except tomllib.TOMLDecodeError:
        pass
    header = "# written by cfbackup recovery-kit import (gpg_home points at the imported keys)\n"
    return header + tomli_w.dumps(wanted), old


def _find_key(node: Any, key: str, path: str):
    if isinstance(node, dict):
        for k, v in node.items():
            here = f"{path}.{k}" if path else k
            if k == key and isinstance(v, str):
                yield here, v
            else:
                yield from _find_key(v, key, here)


def _replace_key(node: Any, key: str, value: str) -> Any:
    if isinstance(node, dict):
        return {
            k: value if k == key and isinstance(v, str) else _replace_key(v, key, value)
            for k, v in node.items()
        }
    return node


def secret_needs(
    raw: dict[str, Any], schema: tuple[Option, ...], environ: Mapping[str, str]
) -> list[SecretNeed]:
    """Each secret the config reads from the environment, a file or a command."""
    needs: list[SecretNeed] = []
    tables = [("defaults", raw.get("defaults"))]
    tables += [(f"profiles.{n}", t) for n, t in (raw.get("profiles") or {}).items()]
    for where, table in tables:
        if isinstance(table, dict):
            _walk_secrets(table, schema, where, environ, needs)
    return needs


def _walk_secrets(table, options, where, environ, needs) -> None:
    for option in options:
        if option.kind == "table" and isinstance(table.get(option.name), dict):
            _walk_secrets(table[option.name], option.children, f"{where}.{option.name}",
                          environ, needs)  # fmt: skip
        if option.kind != "secret":
            continue
        for suffix, how in SECRET_HOW.items():
            value = table.get(option.name + suffix)
            if not isinstance(value, str) or not value:
                continue
            present = {
                "env": lambda v: bool(environ.get(v)),
                "file": lambda v: Path(v).expanduser().is_file(),
                "command": lambda v: None,
            }[how](value)
            needs.append(SecretNeed(f"{where}.{option.name}{suffix}", how, value, present))


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, mode 0600 (it may hold secrets), creating its
    directory (mode 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.cfbackup-{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
