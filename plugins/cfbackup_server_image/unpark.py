"""Unpark: boot a parked server from its image with the recorded (or a given) flavor, networks,
key pair, security groups, metadata and availability zone; wait for ACTIVE; fire
``server_ip_changed`` with the old and new addresses.

Nova >= 2.37 requires ``networks`` on boot and openstacksdk's proxy does not add it
(DESIGN.md section 5): the recorded network ids are passed, or ``auto`` without them.

The new server carries the metadata ``cfbackup_unparked_from = IMAGE_ID``. Once it is booted,
every failure names it (id and state) and says what to do; and a rerun of ``unpark`` adopts the
server of that name that carries the record's image id (the one an earlier run booted, when that
run failed after the boot: an API outage, Swift down when the record was updated, a failed IP
fix-up) instead of refusing because "a server with that name exists" or booting a second one.
That holds whatever the record says: a ``--force`` run over a record already ``unparked`` that
fails after its boot leaves the record as it was, and its rerun must not boot again. Several such
servers stop the run (which one to keep is the user's call). A run deletes only a server it
booted itself (one that went to ERROR while booting): an adopted server may have been used
since, so one in ERROR is refused and left to the user.

The old addresses a fix-up is given (never one the new server has) stay in the record
(``fixup_old``) until a fix-up succeeds, unpark's own or ``cfbackup ip-fixup`` run by hand
(:func:`ip_fixup_done`): a ``--force`` rerun after a failed one, over a server booted since,
still moves DNS and hosts away from them.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from cfbackup import cloud, suggest
from cfbackup.config.model import Config, Profile
from cfbackup.errors import BackendError, CfbackupError, ExitCode, Interrupted, RunRefused

from . import records
from .cloud import WaitFailed, WaitTimedOut, cloud_errors, connect, wait_for
from .park import (
    UNPARK_MARKER,
    Progress,
    flat_ips,
    server_lock,
    servers_named,
    settings_of,
    wait_gone,
)

ADOPTABLE = ("BUILD", "ACTIVE")  # what a rerun can go on with


def _flavor_id(conn, record: dict[str, Any], wanted: str | None, progress: Progress) -> str:
    from openstack import exceptions as sdk

    def find(name_or_id: str):
        try:
            return conn.compute.find_flavor(name_or_id, ignore_missing=False)
        except sdk.NotFoundException:
            return None

    with cloud_errors("looking up the flavor"):
        if wanted:
            flavor = find(wanted)
            if flavor is None:
                raise CfbackupError(
                    f"no flavor named {wanted}: list them with openstack flavor list.",
                    exit_code=ExitCode.USAGE,
                )
            return flavor.id
        recorded = record["flavor"]
        flavor = None
        if recorded.get("id"):
            try:
                flavor = conn.compute.get_flavor(recorded["id"])
            except sdk.NotFoundException:
                flavor = None
        if flavor is None and recorded.get("name"):
            flavor = find(recorded["name"])
    if flavor is None:
        raise RunRefused(
            f"the recorded flavor {recorded.get('name') or recorded.get('id')} ({recorded['vcpus']}"
            f" vCPU, {recorded['ram']} MB RAM, {recorded['disk']} GB disk) no longer exists: "
            "give another with --flavor."
        )
    differs = [
        k for k in ("vcpus", "ram", "disk") if recorded.get(k) not in (None, getattr(flavor, k))
    ]
    if differs:
        progress(
            f"warning: flavor {flavor.name} differs from the recorded one in " + ", ".join(differs)
        )
    return flavor.id


def unpark(
    config: Config,
    profile: Profile,
    name: str,
    *,
    pm,
    flavor: str | None = None,
    force: bool = False,
    progress: Progress = print,
    conn=None,
) -> dict[str, Any]:
    """Boot ``name`` from its park image, wait for ACTIVE, fire ``server_ip_changed``."""
    settings = settings_of(profile)
    with server_lock(config, name, "unpark"):
        record = records.load(config, profile, name)
        if record is None:
            raise RunRefused(
                f"no park record for {name} (looked in "
                f"{records.describe_locations(config, profile, name)}): check the "
                f"name and --profile ({suggest.command('server', 'list-parked')} lists them)."
            )
        if record.get("state") != "parked" and not force:
            raise RunRefused(
                f"{name} was already unparked at {record.get('unparked_at')} as "
                f"server {record.get('new_server', {}).get('id')}: to boot it again from the "
                f"same image, run {_rerun(profile, name, flavor, True)} (a server named {name} "
                "that an earlier unpark booted from it, if one is left, is taken over instead)."
            )
        conn = conn or connect(profile)
        rerun = _rerun(profile, name, flavor, force)
        existing = _booted_earlier(conn, name, record, rerun)
        booted = existing is None  # only a server this run booted may be deleted by it
        if booted:
            server = _boot(conn, record, name, flavor, rerun, progress)
        else:
            server = _adopt(existing, name, flavor, rerun, progress)
        try:
            server = _wait_active(conn, server, name, settings, rerun, progress, booted=booted)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: say what was left behind
            raise _booted_but(
                Interrupted("this run was interrupted"),
                server,
                name,
                "not yet ACTIVE",
                rerun,
                when="",
            ) from None
        new_ips = flat_ips(server.addresses)
        old_ips = _old_ips(record, server.id, new_ips)
        record.update(
            state="unparked",
            unparked_at=records.utc_now(),
            new_server={"id": server.id, "ips": new_ips, "addresses": server.addresses or {}},
            # until the fix-up below succeeds: a rerun (--force) over a server booted since
            # still moves DNS and hosts away from these
            fixup_old=old_ips,
        )
        try:
            records.save(config, profile, record)
        except CfbackupError as error:
            fixup = _fixup_command(name, old_ips, new_ips)
            raise _booted_but(
                error,
                server,
                name,
                f"ACTIVE at {', '.join(new_ips) or 'no address'}",
                rerun,
                also=f"; to move DNS and hosts along before that, run {fixup}",
            ) from None
        progress(
            f"{name} is ACTIVE: addresses {', '.join(old_ips) or 'none'} -> "
            f"{', '.join(new_ips) or 'none'}"
        )
        if pm is not None:
            try:
                results = pm.hook.cfbackup_server_ip_changed(
                    server=name, old=old_ips, new=new_ips, config=config
                )
            except CfbackupError as error:
                fixup = _fixup_command(name, old_ips, new_ips)
                raise CfbackupError(
                    f"{name} is ACTIVE at {', '.join(new_ips)}, but the IP fix-up failed: "
                    f"{error.message.rstrip('.')}; once that is fixed, run {fixup}",
                    exit_code=error.exit_code,
                ) from None
            _report_fixups(results, progress)
            _fixup_done(config, profile, record, progress)
        return record


def _old_ips(record: dict[str, Any], server_id: str, new_ips: list[str]) -> list[str]:
    """The addresses DNS and hosts may hold for the server: the parked server's, those an
    earlier unpark's fix-up left pending (``fixup_old``: it failed, and the record names a
    server booted since), and after an earlier unpark (--force) that server's, unless it is
    the server this run goes on with (its addresses are the new ones). None of them is one
    the server has now (``new_ips``): a cloud may hand the same fixed or floating address
    back, and that one is current, not old."""
    current = {_normal(ip) for ip in new_ips}
    old_ips: list[str] = []
    earlier = record.get("new_server") or {}
    pending = [*(record.get("ips") or []), *(record.get("fixup_old") or [])]
    if earlier.get("id") != server_id:
        pending += earlier.get("ips") or []
    for ip in pending:
        if ip not in old_ips and _normal(ip) not in current:
            old_ips.append(ip)
    return old_ips


def _normal(ip: str) -> str:
    """One spelling per address (IPv6 has several), to compare them."""
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip


def _fixup_done(config: Config, profile: Profile, record: dict[str, Any], progress) -> None:
    """The fix-up succeeded: the record no longer keeps its old addresses pending."""
    pending = record.pop("fixup_old", None)
    if not pending:
        return
    try:
        records.save(config, profile, record)
    except CfbackupError as error:  # the unpark is done: a later --force only repeats them
        record["fixup_old"] = pending
        progress("warning: " + _still_pending("the record", error, pending))


def _still_pending(record: str, error: CfbackupError, pending: list[str]) -> str:
    """The warning when a fix-up succeeded but ``record`` could not drop its pending old
    addresses (``fixup_old``)."""
    return (
        f"{record} could not be updated after the IP fix-up ({error.message.rstrip('.')}); it "
        f"still lists {', '.join(pending)} as pending, which is harmless: a later unpark "
        "--force moves DNS and hosts away from them again, and finds nothing to change"
    )


def ip_fixup_done(config: Config, server: str, old: list[str]) -> list[str]:
    """``cfbackup ip-fixup`` (the command a failed fix-up prints) moved DNS and hosts of
    ``server`` away from ``old`` in every profile that follows it: those addresses are no
    longer pending in its park record (``fixup_old``); any others stay. Only a server parked
    from here counts (the state dir holds its record, naming the profile whose Swift holds
    the other copy): nothing is locked or read for one that never was. Returns warnings."""
    gone = {_normal(ip) for ip in old}
    kept = old  # what stays pending when the record cannot be updated
    try:
        local = records.load_local(config, server)
        profile = config.profiles.get((local or {}).get("profile") or "")
        if profile is None:
            return []
        with server_lock(config, server, "ip-fixup"):
            record = records.load(config, profile, server)  # the newer copy
            pending = (record or {}).get("fixup_old") or []
            left = [ip for ip in pending if _normal(ip) not in gone]
            kept = [ip for ip in pending if _normal(ip) in gone]
            if len(left) == len(pending) or record.get("profile") != profile.name:
                return []
            if left:
                record["fixup_old"] = left
            else:
                record.pop("fixup_old")
            records.save(config, profile, record)
    except CfbackupError as error:  # the fix-up is done: a later --force only repeats it
        return [_still_pending(f"the park record of {server}", error, kept)]
    return []


def _booted_earlier(conn, name: str, record: dict[str, Any], rerun: str):
    """The server named ``name`` that an earlier unpark of this record booted (it carries
    the record's image id in its metadata), to go on with; None when no server has that name.
    Whatever the record's state: a failed ``--force`` run leaves it ``unparked``."""
    servers = servers_named(conn, name)
    ours = [s for s in servers if (s.metadata or {}).get(UNPARK_MARKER) == record["image"]["id"]]
    others = [s for s in servers if s not in ours]
    if len(others) == 1:
        raise RunRefused(
            f"a server named {name} already exists ({others[0].id}, "
            f"{others[0].status}): nothing was booted; delete or rename it first."
        )
    if others:
        raise RunRefused(
            f"servers named {name} already exist ({_listing(others)}): nothing was booted; "
            "delete or rename them first."
        )
    if len(ours) > 1:
        recorded = (record.get("new_server") or {}).get("id")
        hint = f" (the record names {recorded})" if recorded in {s.id for s in ours} else ""
        raise RunRefused(
            f"{len(ours)} servers named {name} were booted from its park image by earlier "
            f"unparks ({_listing(ours)}): nothing was booted; keep one{hint}, delete the others "
            f"(openstack server delete ID), then run {rerun}, which goes on with the one left."
        )
    return ours[0] if ours else None


def _listing(servers) -> str:
    return ", ".join(f"{s.id} ({s.status})" for s in servers)


def _rerun(profile: Profile, name: str, flavor: str | None, force: bool) -> str:
    """This unpark as the user ran it (their ``-c FILE``, ``--profile``, ``--flavor``,
    ``--force``), for the messages whose fix is to run it again."""
    words = ["server", "unpark", name, "--profile", profile.name]
    words += ["--flavor", flavor] if flavor else []
    words += ["--force"] if force else []
    return suggest.command(*words)


def _adopt(server, name: str, flavor: str | None, rerun: str, progress: Progress):
    # a server in ERROR is not taken over: this run did not boot it, and it may have run
    # since (after a failed record update the user was told to use it), its disk holding what
    # nothing else holds; the user looks at it and deletes it if it cannot be saved
    if server.status == "ERROR":
        raise RunRefused(
            f"server {name} ({server.id}) was booted by an earlier unpark and is ERROR: look "
            f"at it (openstack server show {server.id}) and, if it cannot be saved, delete it "
            f"(openstack server delete {server.id}) and run {rerun}, which boots another; "
            "nothing was booted."
        )
    if server.status not in ADOPTABLE:
        raise RunRefused(
            f"server {name} ({server.id}) was booted by an earlier unpark and is "
            f"{server.status}: start it (openstack server start {server.id}) or delete it "
            f"(openstack server delete {server.id}), then run {rerun}; nothing was booted."
        )
    progress(
        f"server {name} ({server.id}, {server.status}) was booted by an earlier unpark of "
        "this record: going on with it instead of booting another"
        + (f" (--flavor {flavor} does not apply to it)" if flavor else "")
    )
    return server


def _boot(conn, record: dict[str, Any], name: str, flavor: str | None, rerun: str, progress):
    image_id = record["image"]["id"]
    networks: Any = [{"uuid": n["id"]} for n in record.get("networks", []) if n.get("id")]
    # Nova >= 2.37 requires `networks`; without recorded ids let Nova pick ("auto").
    spec = {
        "name": record["server"]["name"],
        "image_id": image_id,
        "flavor_id": _flavor_id(conn, record, flavor, progress),
        "networks": networks or "auto",
        # the marker lets a rerun adopt this server if this run fails after the boot
        "metadata": {**(record.get("metadata") or {}), UNPARK_MARKER: image_id},
    }
    if record.get("key_name"):
        spec["key_name"] = record["key_name"]
    if record.get("security_groups"):
        spec["security_groups"] = [{"name": g} for g in record["security_groups"]]
    if record.get("availability_zone"):
        spec["availability_zone"] = record["availability_zone"]
    try:
        with cloud_errors(
            f"booting {name} from image {image_id}",
            conflict_fix="nothing was booted; retry later.",
        ):
            server = conn.compute.create_server(**spec)
    except BackendError as error:
        if not cloud.is_transient(error):
            raise
        # the request may have reached Nova before the answer was lost
        raise BackendError(
            f"{error.message.rstrip('.')}; the cloud may have booted it anyway: run {rerun} "
            "again, which goes on with a server it booted (openstack server list shows it)."
        ) from None
    progress(f"booting {name} ({server.id}) from image {record['image']['name']}")
    return server


def _booted_but(
    error: CfbackupError,
    server,
    name: str,
    state: str,
    rerun: str,
    *,
    also: str = "",
    when: str = "once that is fixed, ",
) -> CfbackupError:
    """A failure after the boot: name the new server, its state, and what to do."""
    return CfbackupError(
        f"server {name} was booted ({server.id}, {state}), but "
        f"{error.message.rstrip('.')}; {when}run {rerun} again (it goes on with "
        f"this server, marks the record unparked and fixes DNS and hosts){also}; or delete the "
        f"server (openstack server delete {server.id}) and run that command, which boots "
        "another.",
        exit_code=error.exit_code,
    )


def _fixup_command(name: str, old_ips: list[str], new_ips: list[str]) -> str:
    return suggest.command(
        "ip-fixup",
        "--name",
        name,
        *(("--old", ",".join(old_ips)) if old_ips else ()),
        "--new",
        ",".join(new_ips),
    )


def _report_fixups(results, progress: Progress) -> None:
    """Print what ip_fixup-like plugins did (they return objects with dns/hosts/warnings)."""
    for result in results or []:
        for outcome in result if isinstance(result, list) else []:
            profile = getattr(outcome, "profile", "?")
            for line in getattr(outcome, "dns", []):
                progress(f"{profile}: DNS {line}")
            for line in getattr(outcome, "hosts", []):
                progress(f"{profile}: hosts {line}")
            for line in getattr(outcome, "warnings", []):
                progress(f"{profile}: warning: {line}")


def _wait_active(
    conn, server, name: str, settings, rerun: str, progress: Progress, *, booted: bool
):
    def fetch():
        with cloud_errors(f"checking server {name}"):
            return conn.compute.get_server(server.id)

    try:
        return wait_for(
            fetch,
            what=f"server {name}",
            goal="ACTIVE",
            ready=("ACTIVE",),
            failures=("ERROR",),
            timeout=settings["server_timeout"],
            max_interval=settings["poll_interval"],
            progress=progress,
        )
    except WaitFailed as failed:
        fault = (failed.resource.fault or {}).get("message") or "no fault message"
        if not booted:  # never delete a server this run did not boot
            raise BackendError(
                f"server {name} ({server.id}), booted by an earlier unpark, went to ERROR: "
                f"{fault}; it was left as it is, the image and the record are untouched: look "
                f"at it (openstack server show {server.id}) and, if it cannot be saved, delete "
                f"it (openstack server delete {server.id}) and run {rerun}, which boots another."
            ) from None
        cleanup = "the failed server was deleted"
        try:
            with cloud_errors(f"deleting the failed server {server.id}"):
                conn.compute.delete_server(server.id)
            wait_gone(conn, server.id, name, settings, progress)
        except CfbackupError as error:
            cleanup = (
                f"deleting the failed server {server.id} failed too ({error.message.rstrip('.')})"
                f": delete it (openstack server delete {server.id})"
            )
        except (WaitFailed, WaitTimedOut) as error:
            cleanup = f"the failed server {server.id} is still {error.status}; delete it"
        raise BackendError(
            f"server {name} went to ERROR while booting: {fault}; {cleanup}, the image and the "
            f"record are untouched: fix the cause (or choose another --flavor) and run {rerun}."
        ) from None
    except WaitTimedOut as late:
        raise BackendError(
            f"server {name} ({server.id}) was still {late.status} after {late.waited:.0f} s: it "
            f"was left as it is; run {rerun} again to go on waiting for it, or delete it "
            f"(openstack server delete {server.id}) and run that command, which boots another, "
            "or raise "
            "server_image.server_timeout."
        ) from None
    except CfbackupError as error:
        raise _booted_but(
            error, server, name, f"last seen {server.status or 'BUILD'}", rerun
        ) from None
