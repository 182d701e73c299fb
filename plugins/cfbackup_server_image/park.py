"""Park a server: optional final backup, stop, snapshot, wait for the image, record, then
delete.

The order of ``park`` is the safety argument: the server is deleted only after its image is
``active`` and the record is stored in Swift and locally. Real Nova lets a server be deleted
while its snapshot is still saving (DESIGN.md section 5), so nothing here relies on Nova to
refuse. An ACTIVE server is stopped (SHUTOFF) before the snapshot, as Nova's own shelve does:
what a running server writes while it is imaged (up to ``image_timeout``) would not be in the
image and would be lost with the server. ``--live`` images it running, with a warning.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import time
import uuid
from collections.abc import Callable
from typing import Any

from cfbackup import suggest
from cfbackup.config.model import Config, Profile
from cfbackup.errors import BackendError, CfbackupError, Interrupted, LockHeld, RunRefused

from . import records
from .cloud import WaitFailed, WaitTimedOut, cloud_errors, connect, wait_for

SNAPSHOT_STATES = ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED")
UNPARK_MARKER = "cfbackup_unparked_from"  # server metadata unpark sets: the park image id
GONE = ("DELETED", "SOFT_DELETED")  # servers that no longer count
Progress = Callable[[str], None]


@contextlib.contextmanager
def server_lock(config: Config, server: str, action: str):
    from cfbackup import lock

    try:
        with lock.profile_lock(
            config.state_dir, "server-" + records.file_name(server)[:-5], action
        ):
            yield
    except LockHeld:
        raise LockHeld(
            f"another cfbackup run is parking or unparking {server}: wait for it to finish."
        ) from None


def settings_of(profile: Profile) -> dict[str, Any]:
    return profile.plugin_config("server_image")


def flat_ips(addresses: dict[str, list[dict]] | None) -> list[str]:
    """Every address of a server (fixed and floating, v4 and v6), in Nova's order, once."""
    seen: list[str] = []
    for entries in (addresses or {}).values():
        for entry in entries:
            if entry.get("addr") and entry["addr"] not in seen:
                seen.append(entry["addr"])
    return seen


def servers_named(conn, name: str) -> list:
    """Every server named exactly ``name``; deleted ones do not count. Nova's ``name`` filter
    is a regular expression search (case-insensitive under MySQL's collation): the name goes
    escaped and anchored, so that ``db+1`` or ``web (old)`` finds itself and ``*web`` is not a
    400, and the answer is narrowed here to the exact name. ``|`` goes as ``[|]``: Nova's MySQL
    path escapes every ``|`` itself (``_safe_regex_mysql``), which would turn ``\\|`` into a
    backslash then an alternation matching every server."""
    pattern = re.escape(name).replace("\\|", "[|]")
    with cloud_errors(f"looking up servers named {name}"):
        found = list(conn.compute.servers(name=f"^{pattern}$"))
    return [s for s in found if s.name == name and s.status not in GONE]


def find_server(conn, name: str):
    """The server with the id ``name``, else the one named exactly ``name``, or None; deleted
    ones do not count. Not openstacksdk's ``find_server``: it passes the name to Nova's
    filter as a regular expression."""
    from openstack import exceptions as sdk

    if _is_uuid(name):  # Nova's server ids are UUIDs
        with cloud_errors(f"looking up server {name}"):
            try:
                server = conn.compute.get_server(name)
            except sdk.NotFoundException:
                server = None
        if server is not None and server.status not in GONE:
            return server
    named = servers_named(conn, name)
    if len(named) > 1:
        raise RunRefused(
            f"several servers are named {name}: give the server's id instead of its name."
        )
    return named[0] if named else None


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _flavor_record(conn, server) -> dict[str, Any]:
    """Compute >= 2.47 returns the flavor by name and properties, older ones by id."""
    flavor = server.flavor
    if getattr(flavor, "original_name", None):
        record = {"id": None, "name": flavor.original_name}
    else:
        with cloud_errors(f"reading flavor {flavor.id}"):
            flavor = conn.compute.get_flavor(flavor.id)
        record = {"id": flavor.id, "name": flavor.name}
    for key in ("vcpus", "ram", "disk", "ephemeral", "swap"):
        record[key] = getattr(flavor, key, None)
    record["extra_specs"] = dict(getattr(flavor, "extra_specs", None) or {})
    return record


def _network_record(conn, server, progress: Progress) -> list[dict[str, Any]]:
    """The networks by id (from the server's ports), so unpark can pass them to Nova."""
    names_by_ip = {
        a["addr"]: net for net, entries in (server.addresses or {}).items() for a in entries
    }
    try:
        with cloud_errors("listing the server's ports"):
            ports = list(conn.compute.server_interfaces(server))
    except BackendError as error:
        progress(f"warning: {error.message} Networks are recorded by name only.")
        return [{"id": None, "name": name} for name in (server.addresses or {})]
    networks: list[dict[str, Any]] = []
    for port in ports:
        ips = [f.get("ip_address") for f in port.fixed_ips or []]
        name = next((names_by_ip[ip] for ip in ips if ip in names_by_ip), None)
        if all(n["id"] != port.net_id for n in networks):
            networks.append({"id": port.net_id, "name": name, "fixed_ips": ips})
    return networks


def build_record(conn, server, profile: Profile, progress: Progress) -> dict[str, Any]:
    groups: list[str] = []
    for group in server.security_groups or []:
        if group.get("name") and group["name"] not in groups:
            groups.append(group["name"])
    return {
        "state": "parking",
        "profile": profile.name,
        "server": {"name": server.name, "id": server.id},
        "flavor": _flavor_record(conn, server),
        "networks": _network_record(conn, server, progress),
        "security_groups": groups,
        "key_name": server.key_name,
        # the user's metadata, without the marker an earlier unpark set
        "metadata": {k: v for k, v in (server.metadata or {}).items() if k != UNPARK_MARKER},
        "addresses": server.addresses or {},
        "ips": flat_ips(server.addresses),
        "availability_zone": server.availability_zone,
    }


def _final_backup(config: Config, name: str, pm, progress: Progress, again: str) -> dict[str, Any]:
    from cfbackup.actions.backup import run_backup
    from cfbackup.runner import execute_run

    profile = config.profile(name)
    progress(f"final backup of profile {profile.name}")
    options = {"profiles": [profile.name], "full": False, "dry_run": False}
    result = execute_run(config, profile, "backup", options, pm, run_backup)
    if not result.ok:
        raise CfbackupError(
            f"the final backup of profile {profile.name} failed ({result.message}):"
            f" nothing was parked; fix the backup and {again}.",
            exit_code=result.exit_code,
        )
    progress(result.message)
    return {"profile": profile.name, "message": result.message, "at": records.utc_now()}


def park(
    config: Config,
    profile: Profile,
    name: str,
    *,
    pm=None,
    final_backup: str | None = None,
    live: bool = False,
    progress: Progress = print,
    conn=None,
) -> dict[str, Any]:
    """Stop server ``name`` (unless ``live``), image it, wait for the image, store the record,
    then delete the server."""
    settings = settings_of(profile)
    again = _again(profile, name, final_backup, live)
    return _park(config, profile, name, pm, final_backup, live, progress, conn, settings, again)


def _again(profile: Profile, name: str, final_backup: str | None, live: bool) -> str:
    """The end of a message whose fix is to run park again: "run park again (COMMAND)", the
    command as the user ran it (their ``-c FILE``, ``--profile``, ``--live``), so that it
    runs as printed. The message builders below take it as ``again``."""
    words = ["server", "park", name, "--profile", profile.name]
    words += ["--final-backup", final_backup] if final_backup else []
    words += ["--live"] if live else []
    return f"run park again ({suggest.command(*words)})"


def _park(config, profile, name, pm, final_backup, live, progress, conn, settings, again):
    with server_lock(config, name, "park"):
        conn = conn or connect(profile)
        server = find_server(conn, name)
        if server is None:
            known = records.load(config, profile, name)
            if known and known.get("state") == "parked":
                raise RunRefused(
                    f"server {name} is already parked (image {known['image']['id']}"
                    f" since {known.get('parked_at')}): to boot it again, run "
                    f"{suggest.command('server', 'unpark', name, '--profile', profile.name)}."
                )
            raise RunRefused(
                f"no server named {name} in this cloud: check the name "
                "(openstack server list) and the profile's credentials."
            )
        if server.status not in SNAPSHOT_STATES:
            raise RunRefused(
                f"server {name} is {server.status}: Nova snapshots only a server "
                f"that is {', '.join(SNAPSHOT_STATES)}; nothing was done."
            )
        volumes = [v.id for v in server.attached_volumes or []]
        if volumes:
            raise RunRefused(
                f"server {name} has volumes attached ({', '.join(volumes)}): a park image holds "
                "only the root disk and unpark would not attach them again; detach them first "
                "(they are kept, and billed, on their own); nothing was done."
            )
        if server.status == "ACTIVE" and not live and _runs_here(server):
            raise RunRefused(
                f"server {name} looks like the machine this cfbackup runs on (same host name): "
                "park stops the server before its snapshot, and this run with it; run park "
                "from another machine (with a swift:// target the record is found from "
                "anywhere), or add --live to image it running; nothing was done."
            )
        record = build_record(conn, server, profile, progress)
        if final_backup:
            record["final_backup"] = _final_backup(config, final_backup, pm, progress, again)
        record["status_before_park"] = server.status
        stopped = False
        if server.status == "ACTIVE" and live:
            progress(
                f"warning: --live: {name} keeps running while it is imaged; what it writes "
                "from now on is not in the image and is lost when the server is deleted"
            )
        elif server.status == "ACTIVE":
            try:
                _stop(conn, server, settings, progress, again)
            except KeyboardInterrupt:
                raise Interrupted(
                    f"interrupted while server {name} was stopping: it was NOT deleted and "
                    f"nothing was imaged (openstack server show {server.id}); {again}."
                ) from None
            stopped = True
        kept = _kept(server, stopped, again)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        image_name = f"cfbackup-park-{server.name}-{stamp}"
        metadata = {
            "cfbackup_parked_server": server.name,
            "cfbackup_profile": profile.name,
            "cfbackup_parked_at": stamp,
        }
        with (
            _not_deleted(kept),
            cloud_errors(
                f"snapshotting server {name}",
                conflict_fix="the server is busy (another "
                f"snapshot or task); wait until it is idle and {again}",
            ),
        ):
            # only the createImage POST: openstacksdk's create_server_image also reads the
            # image back, and a failure of that read would hide that the snapshot started
            image_id = server.create_image(conn.compute, image_name, metadata)
        progress(f"snapshot of {name} started: image {image_name} ({image_id})")
        with _not_deleted(kept):
            image = _wait_image(conn, image_id, name, settings, progress, again)
        record.update(
            state="parked",
            parked_at=records.utc_now(),
            server_deleted=False,
            image={"id": image.id, "name": image.name, "size": image.size},
        )
        with _not_deleted(kept):
            records.save(config, profile, record)
        progress(f"record stored in {records.describe_locations(config, profile, name)}")
        _delete_server(conn, server, image.id, settings, progress)
        record["server_deleted"] = True
        try:
            records.save(config, profile, record)
        except CfbackupError as error:  # the park is done: the stored record is complete
            progress(
                f"warning: the record could not be marked server_deleted "
                f"({error.message.rstrip('.')}); it still says the server was not deleted, "
                "which changes nothing for unpark"
            )
        progress(f"{name} parked: image {image.name} ({image.id}), server deleted")
        return record


def _runs_here(server) -> bool:
    """Whether ``server`` is probably this machine: Nova makes a server's host name from its
    name, and stopping the machine park runs on would end park before the snapshot."""
    import socket

    here = socket.gethostname().split(".")[0].lower()
    return bool(here) and here == str(server.name).split(".")[0].lower()


def _kept(server, stopped: bool, again: str) -> str:
    """What a park that stops before the deletion leaves, and how to get the server back."""
    if not stopped:
        return f"server {server.name} was NOT deleted"
    return (
        f"server {server.name} was NOT deleted but is stopped (SHUTOFF): start it again with "
        f"openstack server start {shlex.quote(server.name)}, or {again}"
    )


@contextlib.contextmanager
def _not_deleted(kept: str):
    """Errors before the deletion step say that the server is still there (and stopped)."""
    try:
        yield
    except CfbackupError as error:
        raise CfbackupError(
            f"{error.message.rstrip('.')}; {kept}.", exit_code=error.exit_code
        ) from None
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM in an hour-long wait
        raise Interrupted(f"interrupted; {kept}.") from None


def _stop(conn, server, settings, progress: Progress, again: str) -> None:
    """Stop an ACTIVE server and wait for SHUTOFF, so that nothing it writes is lost."""
    name = server.name
    left = f"server {name} was NOT deleted"
    progress(f"stopping {name} so that the image holds everything it wrote (--live does not)")
    with cloud_errors(
        f"stopping server {name}",
        conflict_fix=f"the server is busy (another task); {left}: wait until it is idle and "
        f"{again}.",
    ):
        conn.compute.stop_server(server)

    def fetch():
        with cloud_errors(f"checking server {name}"):
            return conn.compute.get_server(server.id)

    try:
        wait_for(
            fetch,
            what=f"server {name}",
            goal="SHUTOFF",
            ready=("SHUTOFF",),
            failures=("ERROR", "DELETED"),
            timeout=settings["server_timeout"],
            max_interval=settings["poll_interval"],
            progress=progress,
        )
    except WaitFailed as failed:
        raise BackendError(
            f"server {name} went to {failed.status} while stopping; it was NOT deleted and "
            f"nothing was imaged: check it (openstack server show {server.id}) and {again}."
        ) from None
    except WaitTimedOut as late:
        raise BackendError(
            f"server {name} did not stop within {late.waited:.0f} s (it is still "
            f"{late.status}); it was NOT deleted and nothing was imaged: check it (openstack "
            f"server show {server.id}) and {again}, or raise server_image.server_timeout."
        ) from None
    except CfbackupError as error:
        raise CfbackupError(
            f"{error.message.rstrip('.')}; server {name} was NOT deleted and nothing was "
            f"imaged (it may be stopping: openstack server show {server.id}); {again}.",
            exit_code=error.exit_code,
        ) from None


def _wait_image(conn, image_id: str, name: str, settings, progress: Progress, again: str):
    """The image once active; its failures say what to do about the image (the caller adds
    what became of the server)."""

    def fetch():
        with cloud_errors(f"checking image {image_id}"):
            return conn.image.get_image(image_id)

    try:
        return wait_for(
            fetch,
            what=f"the image of {name}",
            goal="active",
            ready=("active",),
            failures=("killed", "deleted", "deactivated"),
            timeout=settings["image_timeout"],
            max_interval=settings["poll_interval"],
            progress=progress,
        )
    except WaitFailed as failed:
        raise BackendError(
            f"the image {image_id} of {name} ended {failed.status} (the cloud could not save the "
            f"snapshot): remove it (openstack image delete {image_id}) and {again}"
        ) from None
    except WaitTimedOut as late:
        raise BackendError(
            f"the image {image_id} of {name} was still {late.status} after {late.waited:.0f} s: "
            f"check it (openstack image show {image_id}) and {again}, or raise "
            "server_image.image_timeout"
        ) from None


def _delete_server(conn, server, image_id: str, settings, progress: Progress) -> None:
    stored = f"the image {image_id} is active and the record is stored"
    with cloud_errors(
        f"deleting server {server.name}",
        conflict_fix=f"{stored}; unlock or stop what holds the server, then "
        "delete it by hand (openstack server delete).",
    ):
        conn.compute.delete_server(server)
    try:
        wait_gone(conn, server.id, server.name, settings, progress)
    except (WaitFailed, WaitTimedOut) as error:
        raise BackendError(
            f"server {server.name} was not deleted ({error.status}): {stored}; "
            "delete the server by hand (openstack server delete)."
        ) from None


def wait_gone(conn, server_id: str, name: str, settings, progress: Progress) -> None:
    from openstack import exceptions as sdk

    def fetch():
        with cloud_errors(f"checking the deletion of {name}"):
            try:
                return conn.compute.get_server(server_id)
            except sdk.NotFoundException:
                return None

    wait_for(
        fetch,
        what=f"server {name}",
        goal="deleted",
        ready=("gone",),
        failures=("error",),
        timeout=settings["server_timeout"],
        max_interval=settings["poll_interval"],
        progress=progress,
        status_of=lambda s: "gone" if s is None else str(s.status),
    )
