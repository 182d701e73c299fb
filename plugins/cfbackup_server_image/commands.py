"""``cfbackup server park|unpark|list-parked`` and ``cfbackup images prune``: parse, call
:mod:`.park`, print."""

from __future__ import annotations

from cfbackup.errors import ExitCode, RunRefused

SECTION = "server_image"


def register(subparsers) -> None:
    p = subparsers.add_parser("server", help="park a server (image it, delete it) and unpark it")
    sub = p.add_subparsers(dest="server_command", metavar="SUBCOMMAND", required=True)

    park = sub.add_parser("park", help="optional final backup, stop, snapshot, record, delete")
    park.add_argument("name", metavar="NAME", help="server name or id")
    park.add_argument(
        "--profile",
        metavar="P",
        help="profile with the cloud credentials (default: the only profile)",
    )
    park.add_argument(
        "--final-backup",
        metavar="PROFILE",
        help="back up this profile first; a failed backup stops the park",
    )
    park.add_argument(
        "--live",
        action="store_true",
        help="image an ACTIVE server without stopping it first (what it writes meanwhile is lost)",
    )
    park.set_defaults(handler=park_command)

    unpark = sub.add_parser("unpark", help="boot the server again from its park image")
    unpark.add_argument("name", metavar="NAME")
    unpark.add_argument("--profile", metavar="P")
    unpark.add_argument("--flavor", metavar="F", help="flavor name or id instead of the recorded")
    unpark.add_argument(
        "--force", action="store_true", help="boot again from a record that was already unparked"
    )
    unpark.set_defaults(handler=unpark_command)

    listing = sub.add_parser("list-parked", help="servers parked, from Swift and local records")
    listing.add_argument("--profile", metavar="P", help="only this profile's Swift")
    listing.add_argument("--all", action="store_true", help="also records already unparked")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=list_command)

    p = subparsers.add_parser("images", help="park images")
    sub = p.add_subparsers(dest="images_command", metavar="SUBCOMMAND", required=True)
    prune = sub.add_parser("prune", help="delete park images beyond the newest N per server")
    prune.add_argument("--profile", metavar="P")
    prune.add_argument(
        "--keep",
        type=int,
        metavar="N",
        help="images kept per server (default: server_image.keep_images)",
    )
    prune.add_argument("--server", metavar="NAME", help="only this server's images")
    prune.add_argument("--dry-run", action="store_true", help="show what would be deleted")
    prune.set_defaults(handler=prune_command)


def _profile(context, name):
    profile = context.config.profile(name)
    if SECTION in profile["disable_plugins"]:
        raise RunRefused(
            f"profile {profile.name} disables the server_image plugin "
            "(disable_plugins): use another --profile."
        )
    return profile


def _progress(message: str) -> None:
    from cfbackup.cli import output

    output.info(message)


def park_command(args, context) -> int:
    from .park import park

    profile = _profile(context, args.profile)
    park(
        context.config,
        profile,
        args.name,
        pm=context.plugin_manager,
        final_backup=args.final_backup,
        live=args.live,
        progress=_progress,
    )
    return int(ExitCode.OK)


def unpark_command(args, context) -> int:
    from .unpark import unpark

    profile = _profile(context, args.profile)
    unpark(
        context.config,
        profile,
        args.name,
        pm=context.plugin_manager,
        flavor=args.flavor,
        force=args.force,
        progress=_progress,
    )
    return int(ExitCode.OK)


def list_command(args, context) -> int:
    from cfbackup.cli import output

    from . import records

    config = context.config
    profiles = [config.profile(args.profile)] if args.profile else list(config.profiles.values())
    found = records.list_all(config, profiles, warn=output.warn)
    if not args.all:
        found = [r for r in found if r.get("state") == "parked"]
    if args.json:
        output.print_json(
            [
                {k: v for k, v in r.items() if k != "_source"} | {"source": r.get("_source")}
                for r in found
            ]
        )
        return int(ExitCode.OK)
    if not found:
        output.info("no parked servers" if not args.all else "no park records")
    for r in found:
        flavor = r.get("flavor") or {}
        flavor_name = flavor.get("name") or flavor.get("id") or "-"
        line = (
            f"{r['server']['name']:<20} {r.get('state', '?'):<9} "
            f"{r.get('parked_at') or '-':<21} {flavor_name:<12}"
            f" image {r.get('image', {}).get('id', '-')}  was {', '.join(r.get('ips') or [])}"
        )
        if r.get("state") == "parked" and not r.get("server_deleted"):
            line += "  (server not deleted)"
        output.info(line)
    return int(ExitCode.OK)


def prune_command(args, context) -> int:
    from cfbackup.cli import output

    from .images import prune_images

    profile = _profile(context, args.profile)
    keep = args.keep if args.keep is not None else profile.plugin_config(SECTION)["keep_images"]
    if keep < 1:
        from cfbackup.errors import CfbackupError

        raise CfbackupError(
            "--keep must be at least 1: the newest image of a server is never pruned.",
            exit_code=ExitCode.USAGE,
        )
    result = prune_images(
        context.config,
        profile,
        keep=keep,
        server=args.server,
        dry_run=args.dry_run,
        progress=_progress,
    )
    verb = "would delete" if args.dry_run else "deleted"
    output.info(f"{verb} {len(result['deleted'])} image(s), kept {len(result['kept'])}")
    return int(ExitCode.OK)
