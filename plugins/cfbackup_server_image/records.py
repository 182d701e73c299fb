"""Park records: what re-creating a parked server needs, kept twice.

Locally in ``STATE_DIR/parked/SERVER.json`` (mode 0600, written atomically) and in Swift next to
the backups, ``<prefix>/cfbackup-parked/SERVER.json`` in the profile's container, so a server
can be unparked from another machine that has only the config. duplicity ignores objects whose
names it does not recognise, so the record does not disturb the backup chains. When both
copies exist, the one with the later ``updated_at`` wins.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from cfbackup.config.model import Config, Profile
from cfbackup.duplicity.target import swift_target
from cfbackup.errors import BackendError

FORMAT = 1
FOLDER = "cfbackup-parked"


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_name(server: str) -> str:
    """A file and object name for a server name (Nova allows almost any character)."""
    return urllib.parse.quote(server, safe="") + ".json"


def local_path(config: Config, server: str) -> Path:
    return config.state_dir / "parked" / file_name(server)


def stores_in_swift(profile: Profile) -> bool:
    section = profile.plugin_config("server_image")
    return bool(section.get("record_in_swift", True)) and swift_target(profile.target) is not None


def swift_location(profile: Profile, server: str) -> tuple[str, str]:
    """(container, object name) of the record in Swift."""
    target = swift_target(profile.target)
    assert target is not None
    return target.container, f"{target.object_prefix}{FOLDER}/{file_name(server)}"


def describe_locations(config: Config, profile: Profile, server: str) -> str:
    places = []
    if stores_in_swift(profile):
        container, name = swift_location(profile, server)
        places.append(f"swift://{container}/{name}")
    places.append(str(local_path(config, server)))
    return " and ".join(places)


def save(config: Config, profile: Profile, record: dict[str, Any]) -> None:
    """Store ``record`` in Swift (when the target is swift://) and locally; Swift first, so a
    record that exists locally also exists next to the backups."""
    record.pop("_source", None)
    record["format"] = FORMAT
    record["updated_at"] = utc_now()
    data = json.dumps(record, indent=2, sort_keys=True).encode()
    server = record["server"]["name"]
    if stores_in_swift(profile):
        from cfbackup import swift

        container, name = swift_location(profile, server)
        with swift.swift_errors(profile):
            conn = swift.connect(profile)
            conn.put_container(container)
            conn.put_object(container, name, data, content_type="application/json")
    path = local_path(config, server)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as error:
        raise BackendError(
            f"cannot write the park record {path}: {error.strerror}: check "
            "state_dir and its permissions."
        ) from None


def _parse(data: bytes, where: str) -> dict[str, Any] | None:
    try:
        record = json.loads(data)
    except ValueError:
        return None
    if not isinstance(record, dict) or "server" not in record:
        return None
    record.setdefault("_source", where)
    return record


def load_local(config: Config, server: str) -> dict[str, Any] | None:
    path = local_path(config, server)
    try:
        return _parse(path.read_bytes(), str(path))
    except FileNotFoundError:
        return None
    except OSError as error:
        raise BackendError(f"cannot read the park record {path}: {error.strerror}.") from None


def load_swift(profile: Profile, server: str) -> dict[str, Any] | None:
    from cfbackup import swift

    ClientException = swift.load_client().ClientException  # noqa: N806

    container, name = swift_location(profile, server)
    with swift.swift_errors(profile):
        conn = swift.connect(profile)
        try:
            _headers, body = conn.get_object(container, name)
        except ClientException as error:
            if error.http_status == 404:
                return None
            raise
    return _parse(body, f"swift://{container}/{name}")


def load(config: Config, profile: Profile, server: str) -> dict[str, Any] | None:
    """The newest record of ``server`` from Swift and the local state dir, or None."""
    candidates = [load_local(config, server)]
    if stores_in_swift(profile):
        candidates.append(load_swift(profile, server))
    found = [c for c in candidates if c]
    if not found:
        return None
    return max(found, key=lambda r: r.get("updated_at", ""))


def list_all(config: Config, profiles: list[Profile], warn=None) -> list[dict[str, Any]]:
    """Every record, local and in the Swift of ``profiles``, newest copy per server. A Swift
    that cannot be read is reported through ``warn(message)`` (raised when ``warn`` is None)."""
    from cfbackup.errors import CfbackupError

    records: dict[str, dict[str, Any]] = {}

    def offer(record: dict[str, Any] | None) -> None:
        if not record:
            return
        name = record["server"]["name"]
        if name not in records or record.get("updated_at", "") > records[name].get(
            "updated_at", ""
        ):
            records[name] = record

    folder = config.state_dir / "parked"
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            offer(_parse(path.read_bytes(), str(path)))
    for profile in profiles:
        if not stores_in_swift(profile):
            continue
        try:
            for record in _swift_records(profile):
                offer(record)
        except CfbackupError as error:
            if warn is None:
                raise
            warn(f"profile {profile.name}: park records in Swift not read: {error.message}")
    return sorted(records.values(), key=lambda r: r["server"]["name"])


def _swift_records(profile: Profile) -> list[dict[str, Any]]:
    from cfbackup import swift

    ClientException = swift.load_client().ClientException  # noqa: N806

    target = swift_target(profile.target)
    prefix = f"{target.object_prefix}{FOLDER}/"
    found = []
    with swift.swift_errors(profile):
        conn = swift.connect(profile)
        try:
            _h, objects = conn.get_container(target.container, prefix=prefix, full_listing=True)
        except ClientException as error:
            if error.http_status == 404:
                return []
            raise
        for obj in objects:
            if obj["name"].endswith(".json"):
                _h, body = conn.get_object(target.container, obj["name"])
                found.append(_parse(body, f"swift://{target.container}/{obj['name']}"))
    return found
