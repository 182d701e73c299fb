"""Built-in plugin ``server_image``: billing-free server parking on OpenStack.

``cfbackup server park NAME`` (optionally after a final backup) stops the server (unless
``--live``), snapshots it, waits for the image to be ``active``, records what re-creating it
needs (flavor, networks, security groups, key pair, metadata, addresses, availability zone) in
Swift next to the backups and locally, and only then deletes the server. ``cfbackup server
unpark NAME`` boots it again from that image, waits for ACTIVE and fires ``server_ip_changed``
so ``ip_fixup`` can follow the new addresses. ``cfbackup images prune`` removes old park
images. See docs/plugins/server_image.md.
"""

from __future__ import annotations

from cfbackup.config.schema import Option
from cfbackup.hookspecs import hookimpl

SECTION = "server_image"

OPTIONS = (
    Option(
        "cloud",
        "string",
        "Name of a cloud in clouds.yaml for the compute and image APIs. When unset: "
        "swift.cloud, then the Keystone v3 keys of [swift], then $OS_CLOUD.",
        example="mycloud",
    ),
    Option(
        "region_name",
        "string",
        "Region of the compute and image endpoints; swift.region_name when unset.",
    ),
    Option(
        "image_timeout",
        "integer",
        "Seconds to wait for a park image to become active before giving up (the server "
        "is then not deleted).",
        default=3600,
        minimum=1,
    ),
    Option(
        "server_timeout",
        "integer",
        "Seconds to wait for a server to stop (SHUTOFF) or to disappear on park, or to "
        "become ACTIVE on unpark.",
        default=900,
        minimum=1,
    ),
    Option(
        "api_timeout",
        "integer",
        "Seconds to wait for any single answer of the cloud's APIs.",
        default=60,
        minimum=1,
    ),
    Option(
        "poll_interval",
        "integer",
        "Longest pause in seconds between two status checks while waiting (checks start "
        "sooner and back off to this).",
        default=10,
        minimum=1,
    ),
    Option(
        "keep_images",
        "integer",
        "Park images kept per server by cfbackup images prune (newest first).",
        default=3,
        minimum=1,
    ),
    Option(
        "record_in_swift",
        "boolean",
        "Also store the park record in the profile's Swift container, next to the backups "
        "(<prefix>/cfbackup-parked/SERVER.json).",
        default=True,
    ),
)


@hookimpl
def cfbackup_config_schema(register):
    register(SECTION, OPTIONS)


@hookimpl
def cfbackup_register_commands(subparsers, context):
    from .commands import register

    register(subparsers)


@hookimpl
def cfbackup_ip_fixup_done(server, old, new, config):
    """A fix-up run by hand succeeded: its old addresses are no longer pending in the park
    record (``fixup_old``)."""
    from .unpark import ip_fixup_done

    return ip_fixup_done(config, server, list(old)) or None


@hookimpl
def cfbackup_check(run):
    """A row only for profiles that name a cloud: the compute API answers with these
    credentials."""
    section = run.plugin_config(SECTION)
    swift = run.profile.get("swift") or {}
    if not (section.get("cloud") or swift.get("cloud")):
        return None
    from cfbackup.errors import CfbackupError

    from .cloud import cloud_errors, connect

    try:
        conn = connect(run.profile)
        with cloud_errors("listing flavors"):
            count = len(list(conn.compute.flavors()))
    except CfbackupError as error:
        return [("compute and image API", False, error.message)]
    return [("compute and image API", True, f"credentials accepted, {count} flavors visible")]
