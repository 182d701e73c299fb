"""``dt-cf-backup``: the old scripts' command lines on top of cfbackup, so existing cron lines
keep working when the script is replaced: dt-cf-backup.sh's long flags and zertrin's
duplicity-backup.sh ones (``-c FILE -b``, ``-v``, ``-e``, ``-s``, ``--restore-dir`` ...). Reads
``~/.dt-cf-backup.conf`` unless ``-c/--config`` is given; exit codes are cfbackup's (the old
scripts exited 0 even when duplicity failed). Nothing asks a question: where the old scripts
prompted for a missing path, the error says what to add to the command line.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from cfbackup.errors import CfbackupError, ExitCode

DEFAULT_CONFIG = "~/.dt-cf-backup.conf"


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dt-cf-backup",
        description="Compatibility front-end for dt-cf-backup.sh and duplicity-backup.sh users: "
        "their flags and their config file; see cfbackup --help for the rest.",
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=None,
        help=f"config file (default {DEFAULT_CONFIG})",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-b", "--backup", action="store_true", help="incremental backup (full if due)"
    )
    group.add_argument("-f", "--full", action="store_true", help="full backup")
    group.add_argument("-v", "--verify", action="store_true", help="verify the backup")
    group.add_argument(
        "-e", "--cleanup", action="store_true", help="remove leftovers of interrupted runs"
    )
    group.add_argument(
        "-l", "--list-current-files", action="store_true", help="list files in the backup"
    )
    group.add_argument(
        "-s", "--collection-status", action="store_true", help="show the backup sets (status)"
    )
    group.add_argument(
        "--restore", nargs="?", const="", metavar="PATH", help="restore the entire backup into PATH"
    )
    group.add_argument(
        "--restore-file",
        nargs="+",
        metavar=("FILE", "DEST"),
        help="restore FILE (relative to ROOT) to DEST (default: its name, here)",
    )
    group.add_argument(
        "--restore-dir",
        nargs="+",
        metavar=("DIR", "DEST"),
        help="restore DIR (relative to ROOT) to DEST (default: its name, here)",
    )
    group.add_argument(
        "--backup-script",
        action="store_true",
        help="write a recovery kit (config and keys) to restore from nothing, here",
    )
    group.add_argument(
        "-V", "--version", action="store_true", help="print the versions of cfbackup and duplicity"
    )
    parser.add_argument("-t", "--time", metavar="TIME", help="restore or list as of this time")
    parser.add_argument("-n", "--dry-run", action="store_true", help="change nothing")
    parser.add_argument("--force", action="store_true", help="overwrite a non-empty restore target")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "-d", "--debug", action="store_true", help="show duplicity's output on errors"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    from cfbackup import suggest
    from cfbackup.cli import _raise_interrupt, _setup_logging, guarded
    from cfbackup.cli.context import CliContext

    signal.signal(signal.SIGTERM, _raise_interrupt)
    parser = make_parser()
    args = parser.parse_args(argv)
    args.verbose = False
    args.config = args.config or str(Path(DEFAULT_CONFIG).expanduser())
    _setup_logging(args)
    if args.version:
        return _print_versions()
    context = CliContext()
    context.args = args
    suggest.use_config(args.config)

    def command() -> int:
        chosen = _command(args, parser)
        if chosen is None:
            parser.print_help(sys.stderr)
            return int(ExitCode.USAGE)
        return chosen(context)

    return guarded(command, debug=args.debug)


def _command(args, parser):
    """The cfbackup handler the flags ask for, bound to its options; None for no command."""
    from cfbackup.cli.commands import profile_action

    common = {"profile": None, "time": args.time, "json": False, "quiet": args.quiet}

    def action(name: str, many: bool = False, take_lock: bool = True, **options):
        handler = profile_action(name, many=many, take_lock=take_lock)
        return lambda context: handler(argparse.Namespace(**common, **options), context)

    if args.backup or args.full:
        return action("backup", many=True, profiles=[], full=args.full, dry_run=args.dry_run)
    if args.verify:
        return action("verify", compare_data=True)
    if args.cleanup:
        return action("cleanup", dry_run=args.dry_run)
    if args.list_current_files:
        return action("list")
    if args.collection_status:
        return action("status", many=True, take_lock=False, profiles=[])
    if args.restore is not None:
        if not args.restore:
            raise CfbackupError(
                "--restore needs the directory to restore into: "
                "dt-cf-backup --restore /path/to/empty/dir",
                exit_code=ExitCode.USAGE,
            )
        return action("restore", target=args.restore, path=None, force=args.force)
    one = args.restore_file or args.restore_dir
    if one:
        flag = "--restore-file" if args.restore_file else "--restore-dir"
        if len(one) > 2:
            parser.error(f"{flag} takes a path and an optional DEST")
        path = one[0]
        dest = one[1] if len(one) > 1 else os.path.basename(path.rstrip("/")) or "."
        return action("restore", target=dest, path=path, force=args.force, exact_destination=True)
    if args.backup_script:
        from cfbackup.cli.recovery import export_recovery_kit

        return lambda context: export_recovery_kit(
            argparse.Namespace(**common, directory="."), context
        )
    return None


def _print_versions() -> int:
    from cfbackup import __version__, execute
    from cfbackup.duplicity.run import duplicity_executable

    print(f"dt-cf-backup (cfbackup {__version__})")
    try:
        found = execute.capture([duplicity_executable(), "--version"], timeout=30).stdout
    except CfbackupError as error:
        found = error.message
    print(found.strip() or "duplicity: version unknown")
    return int(ExitCode.OK)


def run() -> None:
    sys.exit(main())
