"""The argument parser: built-in commands, then the ones plugins add."""

from __future__ import annotations

import argparse

from cfbackup import __version__
from cfbackup.cli import commands


def make_parser(context) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cfbackup",
        description="duplicity backups to OpenStack Swift, and the incident-recovery steps "
        "around them. Exit codes: see docs/exit-codes.md.",
    )
    parser.add_argument("--version", action="version", version=f"cfbackup {__version__}")
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="config file: native TOML or a legacy ~/.dt-cf-backup.conf",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show progress messages")
    parser.add_argument(
        "--debug", action="store_true", help="show duplicity's output tail on errors"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar or progress lines"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("backup", help="back up profiles (all when none is named)")
    p.add_argument("profiles", nargs="*", metavar="PROFILE")
    p.add_argument("--full", action="store_true", help="force a full backup")
    p.add_argument("--dry-run", action="store_true", help="show what would be backed up")
    p.set_defaults(handler=commands.profile_action("backup", many=True))

    p = sub.add_parser(
        "verify", help="check the backup's volumes (and with --compare-data, the files)"
    )
    p.add_argument("profile", nargs="?", metavar="PROFILE")
    check = p.add_mutually_exclusive_group()
    check.add_argument(
        "--compare-data", action="store_true", help="also compare file contents on disk"
    )
    check.add_argument(
        "--read-data",
        nargs="?",
        const="all",
        metavar="SUBSET",
        help="instead: download, decrypt and hash-check volumes without the source; SUBSET "
        "n/t, next/t, x%% or a size (500M), all when not given (put PROFILE first)",
    )
    p.add_argument("--time", metavar="T", help="verify the backup as of this time")
    p.add_argument("--seed", type=int, metavar="N", help="repeat a random --read-data pick")
    p.set_defaults(handler=commands.profile_action("verify"))

    p = sub.add_parser(
        "drill", help="restore a random sample of files and compare them byte for byte"
    )
    p.add_argument("profile", nargs="?", metavar="PROFILE")
    p.add_argument(
        "--sample",
        metavar="S",
        help="2%% of the files, 200M of them, or 50 files (default: the profile's drill.sample)",
    )
    p.add_argument("--max-duration", metavar="D", help="stop after this long (30m, 2h) and report")
    p.add_argument("--time", metavar="T", help="drill the backup as of this time")
    p.add_argument("--seed", type=int, metavar="N", help="repeat an earlier drill's sample")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument(
        "--from-nothing",
        action="store_true",
        help="drill as a new machine would: from the recovery kit alone, in a throw-away HOME "
        "and keyring (no local cache, keys or config)",
    )
    p.add_argument(
        "--kit",
        metavar="KIT",
        help="with --from-nothing: this kit (default: the newest this profile exported)",
    )
    p.add_argument(
        "--passphrase-file",
        metavar="F",
        help="with --from-nothing: the kit's passphrase is in F (default: the profile's)",
    )
    p.set_defaults(handler=commands.profile_action("drill"))

    p = sub.add_parser("restore", help="restore the whole tree or one path into TARGET")
    p.add_argument("profile", metavar="PROFILE")
    p.add_argument("target", metavar="TARGET", help="directory to restore into")
    p.add_argument("--path", metavar="P", help="restore only this path (relative to the source)")
    p.add_argument("--time", metavar="T", help="as of this time (e.g. 3D, 2026-11-01)")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty TARGET")
    p.set_defaults(handler=commands.profile_action("restore"))

    p = sub.add_parser("list", help="list the files in a backup")
    p.add_argument("profile", nargs="?", metavar="PROFILE")
    p.add_argument("--time", metavar="T")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=commands.profile_action("list"))

    p = sub.add_parser("status", help="chains, last runs and remote usage")
    p.add_argument("profiles", nargs="*", metavar="PROFILE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=commands.profile_action("status", many=True, take_lock=False))

    p = sub.add_parser("prune", help="apply the retention rules")
    p.add_argument("profile", nargs="?", metavar="PROFILE")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only list the backup sets the rules would remove (objects and bytes), remove none",
    )
    p.add_argument("--json", action="store_true", help="with --dry-run: print the list as JSON")
    p.set_defaults(handler=commands.profile_action("prune"))

    p = sub.add_parser("cleanup", help="remove leftovers of interrupted runs from the target")
    p.add_argument("profile", nargs="?", metavar="PROFILE")
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    p.set_defaults(handler=commands.profile_action("cleanup"))

    p = sub.add_parser("check", help="is the profile ready: config, tools, keys, Swift")
    p.add_argument("profiles", nargs="*", metavar="PROFILE")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--for-restore",
        action="store_true",
        help="check what a restore needs (the secret key; a missing source is only a note)",
    )
    p.set_defaults(handler=commands.profile_action("check", many=True, take_lock=False))

    p = sub.add_parser("history", help="past runs from the run history")
    p.add_argument("profile", nargs="?", metavar="PROFILE")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=commands.show_history)

    p = sub.add_parser("config", help="config tools")
    config_sub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    m = config_sub.add_parser("migrate", help="print the native config for a ~/.dt-cf-backup.conf")
    m.add_argument("file", metavar="FILE")
    m.add_argument("-o", "--output", metavar="OUT", help="write it to OUT (mode 0600)")
    m.set_defaults(handler=commands.config_migrate)
    r = config_sub.add_parser("reference", help="print the config reference (Markdown)")
    r.set_defaults(handler=commands.config_reference)

    p = sub.add_parser("recovery-kit", help="what it takes to restore from nothing")
    kit_sub = p.add_subparsers(dest="kit_command", metavar="SUBCOMMAND", required=True)
    k = kit_sub.add_parser("export", help="write the encrypted recovery kit into DIR")
    k.add_argument("directory", metavar="DIR")
    k.add_argument("--profile", metavar="PROFILE")
    k.set_defaults(handler=commands.recovery_kit)
    k = kit_sub.add_parser(
        "import",
        help="on a new machine: install the kit's config and keys for the user running it",
    )
    k.add_argument("kit", metavar="KIT", help="the .tar.gpg file recovery-kit export wrote")
    k.add_argument(
        "--passphrase-file",
        metavar="F",
        help="read the kit's passphrase from F (else it is asked for on the terminal)",
    )
    k.add_argument(
        "--to",
        metavar="FILE",
        help="install the config here (default: -c FILE, else ~/.config/cfbackup/config.toml)",
    )
    k.add_argument(
        "--force",
        action="store_true",
        help="replace a config already there (else it is kept, and the kit's keys imported)",
    )
    k.set_defaults(handler=commands.recovery_kit_import)

    p = sub.add_parser("plugins", help="list loaded plugins and their hooks")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=commands.list_plugins)

    for name, command_parser in sub.choices.items():
        context.plugin_manager.hook.cfbackup_add_arguments(command=name, parser=command_parser)
    context.plugin_manager.hook.cfbackup_register_commands(subparsers=sub, context=context)
    return parser
