"""``dt-cf-backup``: the old script's flags on top of cfbackup, so existing cron lines keep
working when the script is replaced. Reads ``~/.dt-cf-backup.conf`` unless ``--config`` is given;
exit codes are cfbackup's (the old script exited 0 even when duplicity failed)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from cfbackup.errors import CfbackupError, ExitCode

DEFAULT_CONFIG = "~/.dt-cf-backup.conf"


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dt-cf-backup",
        description="Compatibility front-end for dt-cf-backup.sh users; see cfbackup --help.",
    )
    parser.add_argument(
        "--config", metavar="FILE", default=None, help=f"config file (default {DEFAULT_CONFIG})"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--backup", action="store_true", help="incremental backup (full if due)")
    group.add_argument("--full", action="store_true", help="full backup")
    group.add_argument("--verify", action="store_true", help="verify the backup")
    group.add_argument(
        "--restore", nargs="?", const="", metavar="PATH", help="restore the entire backup into PATH"
    )
    group.add_argument(
        "--restore-file",
        nargs="+",
        metavar=("FILE", "DEST"),
        help="restore FILE (relative to ROOT) to DEST",
    )
    group.add_argument("--list-current-files", action="store_true", help="list files in the backup")
    group.add_argument(
        "--backup-script",
        action="store_true",
        help="write a recovery kit (config and keys) to restore from nothing",
    )
    parser.add_argument("--time", metavar="T", help="restore or list as of this time")
    parser.add_argument("--force", action="store_true", help="overwrite a non-empty restore target")
    parser.add_argument("--dry-run", action="store_true", help="back up without uploading")
    parser.add_argument("--debug", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    from cfbackup import suggest
    from cfbackup.cli import _raise_interrupt, _setup_logging, output
    from cfbackup.cli.context import CliContext

    signal.signal(signal.SIGTERM, _raise_interrupt)
    parser = make_parser()
    args = parser.parse_args(argv)
    args.verbose = False
    args.config = args.config or str(Path(DEFAULT_CONFIG).expanduser())
    _setup_logging(args)
    context = CliContext()
    context.args = args
    suggest.use_config(args.config)
    common = {"profile": None, "time": args.time, "json": False}
    try:
        return _dispatch(args, parser, context, common)
    finally:
        output.flush_stdout()


def _dispatch(args, parser, context, common) -> int:
    from cfbackup.cli.commands import profile_action
    from cfbackup.cli.output import print_error

    try:
        if args.backup or args.full:
            ns = argparse.Namespace(**common, profiles=[], full=args.full, dry_run=args.dry_run)
            return profile_action("backup", many=True)(ns, context)
        if args.verify:
            ns = argparse.Namespace(**common, compare_data=True)
            return profile_action("verify")(ns, context)
        if args.list_current_files:
            return profile_action("list")(argparse.Namespace(**common), context)
        if args.restore is not None:
            if not args.restore:
                raise CfbackupError(
                    "--restore needs the directory to restore into: "
                    "dt-cf-backup --restore /path/to/empty/dir",
                    exit_code=ExitCode.USAGE,
                )
            ns = argparse.Namespace(**common, target=args.restore, path=None, force=args.force)
            return profile_action("restore")(ns, context)
        if args.restore_file:
            if len(args.restore_file) > 2:
                parser.error("--restore-file takes FILE and an optional DEST")
            file, dest = args.restore_file[0], (args.restore_file[1:] or [None])[0]
            ns = argparse.Namespace(
                **common,
                target=dest or ".",
                path=file,
                force=args.force,
                exact_destination=bool(dest),
            )
            return profile_action("restore")(ns, context)
        if args.backup_script:
            from cfbackup.cli.recovery import export_recovery_kit

            return export_recovery_kit(argparse.Namespace(**common, directory="."), context)
        parser.print_help(sys.stderr)
        return int(ExitCode.USAGE)
    except CfbackupError as error:
        print_error(error, debug=args.debug)
        return int(error.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)


def run() -> None:
    sys.exit(main())
