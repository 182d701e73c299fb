"""Unpark: boot a parked server from its image with the recorded (or a given) flavor, networks,
key pair, security groups, metadata and availability zone; wait for ACTIVE; fire
``server_ip_changed`` with the old and new addresses.

Nova >= 2.37 requires ``networks`` on boot and openstacksdk's proxy does not add it
(DESIGN.md section 5): the recorded network ids are passed, or ``auto`` without them.
"""

from __future__ import annotations

from typing import Any

from cfbackup import suggest
from cfbackup.config.model import Config, Profile
from cfbackup.errors import BackendError, CfbackupError, ExitCode, RunRefused

from . import records
from .cloud import WaitFailed, WaitTimedOut, cloud_errors, connect, wait_for
from .park import Progress, find_server, flat_ips, server_lock, settings_of, wait_gone


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
                f"server {record.get('new_server', {}).get('id')}: add --force to "
                "boot it again from the same image."
            )
        conn = conn or connect(profile)
        existing = find_server(conn, name)
        if existing is not None:
            raise RunRefused(
                f"a server named {name} already exists ({existing.id}, "
                f"{existing.status}): nothing was booted; delete or rename it first."
            )
        networks: Any = [{"uuid": n["id"]} for n in record.get("networks", []) if n.get("id")]
        # Nova >= 2.37 requires `networks`; without recorded ids let Nova pick ("auto").
        spec = {
            "name": record["server"]["name"],
            "image_id": record["image"]["id"],
            "flavor_id": _flavor_id(conn, record, flavor, progress),
            "networks": networks or "auto",
            "metadata": record.get("metadata") or {},
        }
        if record.get("key_name"):
            spec["key_name"] = record["key_name"]
        if record.get("security_groups"):
            spec["security_groups"] = [{"name": g} for g in record["security_groups"]]
        if record.get("availability_zone"):
            spec["availability_zone"] = record["availability_zone"]
        with cloud_errors(
            f"booting {name} from image {record['image']['id']}",
            conflict_fix="nothing was booted; retry later.",
        ):
            server = conn.compute.create_server(**spec)
        progress(f"booting {name} ({server.id}) from image {record['image']['name']}")
        server = _wait_active(conn, server, name, settings, progress)
        new_ips = flat_ips(server.addresses)
        # after an earlier unpark (--force), DNS and hosts may hold that server's addresses
        old_ips = list(record.get("ips") or [])
        for ip in (record.get("new_server") or {}).get("ips") or []:
            if ip not in old_ips:
                old_ips.append(ip)
        record.update(
            state="unparked",
            unparked_at=records.utc_now(),
            new_server={"id": server.id, "ips": new_ips, "addresses": server.addresses or {}},
        )
        records.save(config, profile, record)
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
                rerun = suggest.command(
                    "ip-fixup",
                    "--name",
                    name,
                    *(("--old", ",".join(old_ips)) if old_ips else ()),
                    "--new",
                    ",".join(new_ips),
                )
                raise CfbackupError(
                    f"{name} is ACTIVE at {', '.join(new_ips)}, but the IP fix-up failed: "
                    f"{error.message.rstrip('.')}; once that is fixed, run {rerun}",
                    exit_code=error.exit_code,
                ) from None
            _report_fixups(results, progress)
        return record


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


def _wait_active(conn, server, name: str, settings, progress: Progress):
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
        cleanup = "the failed server was deleted"
        try:
            with cloud_errors(f"deleting the failed server {server.id}"):
                conn.compute.delete_server(server.id)
            wait_gone(conn, server.id, name, settings, progress)
        except BackendError as error:
            cleanup = f"deleting the failed server failed too ({error.message})"
        except (WaitFailed, WaitTimedOut) as error:
            cleanup = f"the failed server {server.id} is still {error.status}; delete it"
        raise BackendError(
            f"server {name} went to ERROR while booting: {fault}; {cleanup}, the image and the "
            "record are untouched: fix the cause (or choose another --flavor) and run unpark "
            "again."
        ) from None
    except WaitTimedOut as late:
        raise BackendError(
            f"server {name} ({server.id}) was still {late.status} after {late.waited:.0f} s: it "
            f"was left as it is; check it (openstack server show {server.id}), delete it and run "
            "unpark again, or raise server_image.server_timeout."
        ) from None
