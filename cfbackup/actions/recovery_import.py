"""``cfbackup recovery-kit import KIT``: from the kit alone to a machine that can restore.

The kit (``recovery_kit.export_kit``) is a tar archive encrypted with the profile's passphrase
holding the config and, for public-key encryption, the keys. :func:`import_kit` decrypts it,
installs the config for the user it is given (``HOME``) (a config already there is kept),
imports the keys into the keyring it is given (``GNUPGHOME``), points the kit's own profile's
``gpg_home`` there (its README names the profile: another profile's keys are in its own kit),
and lists what that profile still needs from this machine: secrets read from the
environment, files or commands are never in the kit. It
takes its HOME and keyring as arguments, so a drill can run it in a throw-away HOME.

Nothing is half-done: every check (passphrase, archive, config, the file already there) runs
before the first change, and the config is written last, atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import shlex
import tarfile
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cfbackup import execute
from cfbackup.config.model import Config
from cfbackup.config.schema import Option, with_plugin_sections
from cfbackup.errors import CfbackupError, ConfigError, CryptoError

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
            path = Path(self.value).expanduser()
            folder, file = shlex.quote(str(path.parent)), shlex.quote(str(path))
            return (
                f"{self.key}: re-create {self.value} holding the {name} (mkdir -p -m 700 "
                f"{folder} && install -m 600 /dev/null {file})"
            )
        return f"{self.key}: make sure the command {self.value} prints the {name} on this machine"


@dataclasses.dataclass
class ImportedKit:
    config_path: Path
    kind: str  # "native" or "legacy"
    profiles: list[str]
    keyring: Path
    keys: list[str]  # fingerprints imported
    gpg_home_was: dict[str, str]  # key (as TOML spells it) -> the old value, each one rewritten
    secrets: list[SecretNeed]
    missing_sources: list[tuple[str, str]]  # (profile, source) that do not exist here yet
    config: Config | None = None  # the installed config, loaded
    own: list[str] = dataclasses.field(default_factory=list)  # the profile(s) the kit is for
    host: str = ""  # the machine the kit was made on (its README says), else ""
    kept: bool = False  # a config was already there: kept, only the keys imported
    gpg_home_elsewhere: dict[str, str] = dataclasses.field(default_factory=dict)  # kept config


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
    ``home/.gnupg``). Only the kit's own profile (its README names it) is prepared: its
    ``gpg_home`` points at the keys, its secrets are listed. A config already there is kept
    unless ``force`` (the kit's keys are imported all the same: a second kit, of another
    profile of that config, adds its keys); its own profile's ``gpg_home`` is repointed only
    where it still names the old machine's keyring, as the kit's config does."""
    environ = os.environ if environ is None else environ
    members = _open_kit(kit, passphrase)
    kind = NATIVE if NATIVE in members else LEGACY
    if kind not in members:
        raise ConfigError(f"{kit}: the recovery kit holds no config: make a new kit.")
    text = members[kind].decode("utf-8")
    host, named = _made_for(members.get("README.txt", b""))
    keyring = Path(gnupghome or home / ".gnupg").expanduser()
    destination = Path(to).expanduser() if to else home / DEFAULT_PLACES[kind]
    kept = destination.exists() and not force
    from cfbackup.config.load import build_config, read_raw

    schema = with_plugin_sections(plugin_sections or {})
    if kind == NATIVE:  # valid before anything changes (a legacy file is read by bash: after)
        kit_raw = _parse(text, kit)
        own = _own(kit_raw, named)
        text, rewritten = set_gpg_home(text, kit_raw, str(keyring), only=_gpg_homes(kit_raw, own))
        build_config(tomllib.loads(text), path=None, plugin_sections=plugin_sections or {})
    else:
        kit_raw, own, rewritten = {}, [], {}
    elsewhere: dict[str, str] = {}
    if kept:  # the kit's config is not installed: the one there must load, before any change
        raw, config_kind, _warnings = read_raw(destination)
        here = build_config(
            raw, path=destination, kind=config_kind, plugin_sections=plugin_sections or {}
        )
        if named and named not in here.profiles:
            own = []  # the config there is another one: nothing in it is this kit's
        elif own:
            own = [name for name in own if name in here.profiles]
        else:  # a legacy kit: its one profile
            own = list(here.profiles)
        text, rewritten, elsewhere = _kept_config(destination, kit_raw, own, str(keyring))
    keys = _import_keys(members.get(KEYS), passphrase, keyring) if KEYS in members else []
    if rewritten and not keyring.is_dir():  # symmetric kits: gpg needs the directory anyway
        keyring.mkdir(parents=True, mode=0o700)
    if kept and not rewritten:  # the file there, as loaded above
        config = here
    else:
        _write_private(destination, text)
        raw, config_kind, _warnings = read_raw(destination)
        config = build_config(
            raw, path=destination, kind=config_kind, plugin_sections=plugin_sections or {}
        )
    if not kept:
        own = own or list(config.profiles)
    profiles = raw.get("profiles") if isinstance(raw.get("profiles"), dict) else {}
    mine = {"profiles": {name: profiles[name] for name in own if name in profiles}}
    if own:  # the defaults are the kit's profile's too; a config that is not the kit's: none
        mine["defaults"] = raw.get("defaults")
    return ImportedKit(
        config_path=destination,
        kind=config_kind,
        profiles=list(config.profiles),
        keyring=keyring,
        keys=keys,
        gpg_home_was=rewritten,
        secrets=secret_needs(mine, schema, environ),
        missing_sources=[
            (name, str(config.profiles[name].source))
            for name in own
            if not config.profiles[name].source.is_dir()
        ],
        config=config,
        own=own,
        host=host,
        kept=kept,
        gpg_home_elsewhere=elsewhere,
    )


_MADE_FOR = re.compile(
    rb"^cfbackup recovery kit for (\S+), made .*?passphrase of profile (\S+)", re.S
)


def _made_for(readme: bytes) -> tuple[str, str | None]:
    """The host and the profile the kit was made for, as its README (``recovery_kit.README``)
    names them; ("", None) for a README that does not."""
    found = _MADE_FOR.match(readme)
    if not found:
        return "", None
    return found[1].decode("utf-8", "replace"), found[2].decode("utf-8", "replace")


def _own(raw: dict[str, Any], named: str | None) -> list[str]:
    """The profile(s) of the kit's config the kit is for: the one it names, else all."""
    profiles = list(raw.get("profiles") or {})
    return [named] if named in profiles else profiles


Key = tuple[str, ...]  # a key's table path, e.g. ("profiles", "site.old", "encryption", ...)


def _gpg_homes(raw: dict[str, Any], own: list[str]) -> set[Key]:
    """The ``gpg_home`` keys that ``own`` profiles use: their own, and the defaults' when one
    of them has none of its own."""
    keys = {key for key, _ in _find_key(raw, "gpg_home")}
    mine = {key for key in keys if key[:2] in {("profiles", n) for n in own}}
    if any(not any(key[:2] == ("profiles", n) for key in mine) for n in own):
        mine |= {key for key in keys if key[0] == "defaults"}  # one inherits it
    return mine


def dotted(key: Key) -> str:
    """``key`` as TOML spells it: profiles."site.old".encryption.gpg_home."""
    return ".".join(part if _BARE.fullmatch(part) else _toml_string(part) for part in key)


def _kept_config(
    destination: Path, kit_raw: dict[str, Any], own: list[str], keyring: str
) -> tuple[str, dict[str, str], dict[str, str]]:
    """The config already at ``destination`` (kept), with the ``own`` profiles' ``gpg_home``
    repointed at ``keyring`` where it still names what the kit's config names (the old
    machine's keyring); and those left pointing elsewhere (key -> value). ``own`` are the
    kit's profiles this config has (none: it is another config, left as it is). The user's
    file is only ever edited line by line: a layout that needs more is refused (ConfigError),
    with the setting to change by hand."""
    try:
        text = destination.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "", {}, {}  # a legacy file, or one read_raw reports on
    if not own:
        return text, {}, {}
    kit_values = dict(_find_key(kit_raw, "gpg_home"))
    here = dict(_find_key(raw, "gpg_home"))
    wanted = _gpg_homes(raw, own)
    stale = {key for key in wanted if here[key] == kit_values.get(key) and here[key] != keyring}
    elsewhere = {dotted(k): here[k] for k in sorted(wanted - stale) if here[k] != keyring}
    if not stale:
        return text, {}, elsewhere
    edited = _line_edit(text, raw, keyring, stale)
    if edited is None:
        key = dotted(min(stale))
        raise ConfigError(
            f"{destination} is laid out in a way recovery-kit import cannot edit line by line "
            f"(an inline table or a dotted key), and it will not rewrite it: set {key} to "
            f"{_toml_string(keyring)} in {destination} by hand, then import the kit again "
            "(nothing was changed)."
        )
    return edited, {dotted(k): here[k] for k in sorted(stale)}, elsewhere


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
    keyring.mkdir(parents=True, exist_ok=True, mode=0o700)
    gpg = execute.gnupg_client(str(keyring))
    with _agent_as_found(keyring):
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


@contextlib.contextmanager
def _agent_as_found(keyring: Path) -> Iterator[None]:
    """gpg-agent as it was for ``keyring`` once the block is done: one the block started
    (gpg starts one to import or list secret keys) is not left serving a new HOME."""
    from cfbackup import gpgkeys

    running = False
    with contextlib.suppress(CfbackupError):  # no gpgconf: stop_agent fails quietly too
        running = gpgkeys.agent_running(keyring)
    try:
        yield
    finally:
        if not running:
            with contextlib.suppress(CfbackupError):
                gpgkeys.stop_agent(keyring)


def needing_own_kit(config: Config, own: list[str], home: Path) -> list[str]:
    """The profiles of ``config``, other than the kit's ``own``, that need their own kit
    imported: a keyring (``gpg_home``) that is not on this machine, or a public-key profile
    without the secret key a restore decrypts with (as ``check --for-restore`` finds them).
    A passphrase-only profile, or one whose keys are here already, needs none. ``home``: the
    user's, whose ``.gnupg`` is gpg's default keyring."""
    from cfbackup import gpgkeys

    needing = []
    for name, profile in config.profiles.items():
        if name in own:
            continue
        try:
            keyring = gpgkeys.gpg_home(profile)
            if profile["encryption"]["mode"] == "pubkey":
                with _agent_as_found(Path(keyring) if keyring else home / ".gnupg"):
                    gpgkeys.check_keys(profile, need_secret=True)
        except CfbackupError:
            needing.append(name)
    return needing


_GPG_HOME_LINE = re.compile(r"""^(\s*gpg_home\s*=\s*)("(?:[^"\\]|\\.)*"|'[^']*')(.*)$""")
_BARE = re.compile(r"[A-Za-z0-9_-]+")
_PART = r"""\s*([A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')\s*"""
_TABLE_LINE = re.compile(rf"^\s*\[({_PART}(?:\.{_PART})*)\]\s*(#.*)?$")
_ARRAY_LINE = re.compile(r"^\s*\[\[")


def set_gpg_home(
    text: str, raw: dict[str, Any], keyring: str, *, only: set[Key] | None = None
) -> tuple[str, dict[str, str]]:
    """The kit's config ``text`` with every ``gpg_home`` (or those whose key is in ``only``)
    set to ``keyring`` (comments and layout kept), and the old values by key. A layout the
    line edit cannot handle (an inline table) is written out again in full, with a comment
    saying so: never a config already on this machine (:func:`_kept_config` refuses)."""
    import tomli_w

    old = {k: v for k, v in _find_key(raw, "gpg_home") if only is None or k in only}
    if not old:
        return text, {}
    edited = _line_edit(text, raw, keyring, set(old))
    if edited is None:
        header = (
            "# written by cfbackup recovery-kit import (gpg_home points at the imported keys)\n"
        )
        edited = header + tomli_w.dumps(_replace_key(raw, "gpg_home", keyring, set(old)))
    return edited, {dotted(k): v for k, v in sorted(old.items())}


def _line_edit(text: str, raw: dict[str, Any], keyring: str, keys: set[Key]) -> str | None:
    """``text`` with the ``gpg_home`` lines of ``keys`` set to ``keyring``, every other byte
    as it was; None when the result is not exactly that (a layout lines cannot follow)."""
    value = _toml_string(keyring)
    lines: list[str] = []
    table: Key | None = ()
    for line in text.splitlines(keepends=True):
        header = _TABLE_LINE.match(line)
        if header:
            table = _key_of(header[1])
        elif _ARRAY_LINE.match(line):
            table = None  # an array of tables: no gpg_home of ours is in one
        found = _GPG_HOME_LINE.match(line.rstrip("\r\n"))
        if found and table is not None and (*table, "gpg_home") in keys:
            line = found[1] + value + found[3] + line[len(line.rstrip("\r\n")) :]
        lines.append(line)
    edited = "".join(lines)
    try:
        if tomllib.loads(edited) == _replace_key(raw, "gpg_home", keyring, keys):
            return edited
    except tomllib.TOMLDecodeError:
        pass
    return None


def _key_of(spelled: str) -> Key:
    """The table path a header spells (``profiles."app.prod".encryption``)."""
    data: Any = tomllib.loads(f"[{spelled}]\n")
    path: list[str] = []
    while isinstance(data, dict) and len(data) == 1:
        ((name, data),) = data.items()
        path.append(name)
    return tuple(path)


def _toml_string(value: str) -> str:
    import tomli_w

    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def _find_key(node: Any, key: str, path: Key = ()):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, str):
                yield (*path, k), v
            else:
                yield from _find_key(v, key, (*path, k))


def _replace_key(node: Any, key: str, value: str, only: set[Key], path: Key = ()) -> Any:
    if isinstance(node, dict):
        result = {}
        for k, v in node.items():
            if k == key and isinstance(v, str) and (*path, k) in only:
                result[k] = value
            else:
                result[k] = _replace_key(v, key, value, only, (*path, k))
        return result
    return node


def secret_needs(
    raw: dict[str, Any], schema: tuple[Option, ...], environ: Mapping[str, str]
) -> list[SecretNeed]:
    """Each secret the config reads from the environment, a file or a command."""
    needs: list[SecretNeed] = []
    tables = [("defaults", raw.get("defaults"))]
    tables += [(dotted(("profiles", n)), t) for n, t in (raw.get("profiles") or {}).items()]
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
