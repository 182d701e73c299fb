"""``dt-cf-backup``: the old scripts' command lines on top of cfbackup, so existing cron lines
keep working when the script is replaced: dt-cf-backup.sh's long flags and zertrin's
duplicity-backup.sh ones (``-c FILE -b``, ``-v``, ``-e``, ``-s``, ``--restore-dir`` ...). Reads
``$CONFIG`` or ``~/.dt-cf-backup.conf`` unless ``-c/--config`` is given; exit codes are
cfbackup's (the old scripts exited 0 even when duplicity failed). Nothing asks a question: where
the old scripts prompted for a missing path, the error says what to add to the command line.

Where an old flag meant something cfbackup cannot do, it is refused before anything runs, never
run as something else: ``-n`` with a restore (duplicity wrote nothing), ``-d`` and ``ECHO`` in
the file (zertrin's test run: the duplicity commands are printed, nothing runs).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from cfbackup.errors import CfbackupError, ConfigError, ExitCode

DEFAULT_CONFIG = "~/.dt-cf-backup.conf"
PROG = "dt-cf-backup"
# old flags of the three scripts that dt-cf-backup spells differently: what to write instead
RENAMED = {
    "--backup-this-script": "--backup-script",
    "--display-config": "cfbackup -c {config} config migrate {config}",
    "--test": "-n (a dry run of a backup or cleanup)",
    "--restore-to-dir": "--restore DIR",
}
TEST_RUN = "TEST RUN ONLY: nothing was run"


class _Parser(argparse.ArgumentParser):
    """argparse's errors as one line naming the fix (its usage block buried the cause)."""

    def error(self, message: str):
        print(f"{PROG}: error: {message}: see {PROG} --help", file=sys.stderr)
        sys.exit(int(ExitCode.USAGE))


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Compatibility front-end for dt-cf-backup.sh and duplicity-backup.sh users: "
        "their flags and their config file; see cfbackup --help for the rest.",
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=None,
        help=f"config file (default $CONFIG, else {DEFAULT_CONFIG})",
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
    # dt-s3-backup's spelling of --restore PATH
    group.add_argument("--restore-to-dir", dest="restore", metavar="PATH", help=argparse.SUPPRESS)
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
    parser.add_argument(
        "-n",
        "--dry-run",
        action="store_true",
        help="dry run of a backup or cleanup: change nothing (refused with a restore)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite a non-empty restore target")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "-d",
        "--debug",
        action="store_true",
        help="test run: print the duplicity commands it would run, run nothing "
        "(cfbackup --debug shows duplicity's output)",
    )
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The options; an unknown one is one sentence naming its replacement, exit 2."""
    args, extra = parser.parse_known_args(argv)
    for word in extra:
        name = word.split("=", 1)[0]
        if name in RENAMED:
            config = args.config or os.environ.get("CONFIG") or DEFAULT_CONFIG
            config = shlex.quote(os.path.abspath(os.path.expanduser(config)))
            fix = RENAMED[name].format(config=config)
            parser.error(f"{name} is an option of the old scripts: use {fix}")
        if word.startswith("-"):
            parser.error(f"unknown option {name}")
        parser.error(f"unexpected argument {word!r} (dt-cf-backup takes options only)")
    return args


def main(argv: list[str] | None = None) -> int:
    from cfbackup.cli import stoppable

    return stoppable(lambda: _main(argv))


def _unless_found_first(default: str) -> str | None:
    """The old file, for the ``-c`` of the cfbackup commands messages suggest, unless cfbackup
    finds it first: with a native config also there (a new machine with both), a command
    without ``-c`` reads that one, which has no profile dt-cf-backup."""
    from cfbackup.config.load import find_config

    try:
        found = find_config(None)
    except CfbackupError:  # none at all: the run says so
        return None
    return None if os.path.abspath(found) == os.path.abspath(default) else default


def _main(argv: list[str] | None) -> int:
    from cfbackup import suggest
    from cfbackup.cli import _setup_logging, guarded
    from cfbackup.cli.context import CliContext

    parser = make_parser()
    args = _parse(parser, argv)
    args.verbose = False
    test_run = args.debug  # zertrin's -d: a test run, not cfbackup's --debug
    args.debug = False
    given = args.config or os.environ.get("CONFIG") or None
    args.given_config = given
    args.config = given or str(Path(DEFAULT_CONFIG).expanduser())
    _setup_logging(args)
    if args.version:
        return _print_versions()
    context = CliContext()
    context.args = args
    suggest.use_config(given or _unless_found_first(args.config))

    def command() -> int:
        _refuse_what_cannot_run_as_asked(args)
        if not given and not os.path.exists(args.config):
            raise ConfigError(
                f"no {DEFAULT_CONFIG}: give your old config with -c FILE (or set CONFIG=FILE)."
            )
        legacy = _legacy_file(args.config)
        echo = _echo(legacy)
        chosen = _command(args, legacy, given)
        if chosen is None:
            raise CfbackupError(
                "no action given: old versions backed up when given no options; the cron line "
                f"needs --backup now: {_old_command(given, '--backup')}",
                exit_code=ExitCode.USAGE,
            )
        if test_run or echo:
            why = "-d" if test_run else f"ECHO is set in {args.config}"
            return _test_run(chosen, context, why)
        name, options = chosen
        return _handler(name, options)(context)

    return guarded(command, debug=False)


def _old_command(config: str | None, *words: object) -> str:
    """``dt-cf-backup [-c FILE] WORDS``, quoted to run as printed."""
    config_words = ("-c", os.path.abspath(os.path.expanduser(config))) if config else ()
    return shlex.join([PROG, *config_words, *(str(w) for w in words)])


def _refuse_what_cannot_run_as_asked(args) -> None:
    """Old flags whose meaning cfbackup cannot carry out: refused before anything runs."""
    restoring = args.restore is not None or args.restore_file or args.restore_dir
    if restoring and args.dry_run:
        listing = _old_command(
            args.given_config, "--list-current-files", *(("-t", args.time) if args.time else ())
        )
        raise CfbackupError(
            "dt-cf-backup cannot dry-run a restore: drop -n to restore, or see what would be "
            f"restored with {listing}",
            exit_code=ExitCode.USAGE,
        )
    if args.restore and args.restore.strip().lower() == "yes":
        raise CfbackupError(
            "`yes` was dt-s3-backup's answer to its prompt, not a directory: "
            + _old_command(args.given_config, "--restore", "/path/to/empty/dir"),
            exit_code=ExitCode.USAGE,
        )


def _legacy_file(path: str):
    """What bash reads from ``path`` when it is a legacy file (None for a native one, or one
    that cannot be read: loading the config names that)."""
    from cfbackup.config import legacy

    try:
        text = Path(path).read_bytes()[:1_000_000].decode("utf-8", "replace")
        if not legacy.looks_legacy(text):
            return None
        return legacy.read_file(Path(path), extra=OLD_ONLY)
    except (OSError, ConfigError):
        return None


# variables of the old scripts that only their command line used: read here, not carried over
OLD_ONLY = ("RESTORE",)


def _echo(legacy) -> bool:
    """zertrin's debug switch: ``ECHO`` set to a command made the script print its duplicity
    command lines instead of running them."""
    value = legacy.variables.get("ECHO") if legacy else None
    return bool(value if isinstance(value, str) else value and any(value))


def _command(args, legacy, given: str | None) -> tuple[str, dict] | None:
    """The cfbackup action the flags ask for and its options; None for no action."""
    common = {"profile": None, "time": args.time, "json": False, "quiet": args.quiet}
    if args.backup or args.full:
        options = {"profiles": [], "full": args.full, "dry_run": args.dry_run}
        return "backup", {**common, **options}
    if args.verify:
        return "verify", {**common, "compare_data": True}
    if args.cleanup:
        return "cleanup", {**common, "dry_run": args.dry_run}
    if args.list_current_files:  # duplicity's list-current-files text (legacy_text.py)
        return "list", {**common, "duplicity_notices": True}
    if args.collection_status:  # duplicity's collection-status text
        return "status", {**common, "profiles": [], "duplicity_text": True}
    if args.restore is not None:
        if not args.restore:
            restore = legacy.variables.get("RESTORE") if legacy else None
            if isinstance(restore, str) and restore.strip():
                raise CfbackupError(
                    f"--restore needs the directory to restore into ({args.config} sets "
                    f"RESTORE={restore}, which dt-cf-backup does not read): "
                    + _old_command(given, "--restore", restore),
                    exit_code=ExitCode.USAGE,
                )
            raise CfbackupError(
                "--restore needs the directory to restore into: "
                + _old_command(given, "--restore", "/path/to/empty/dir"),
                exit_code=ExitCode.USAGE,
            )
        return "restore", {**common, "target": args.restore, "path": None, "force": args.force}
    one = args.restore_file or args.restore_dir
    if one:
        flag = "--restore-file" if args.restore_file else "--restore-dir"
        if len(one) > 2:
            raise CfbackupError(
                f"{flag} takes a path and an optional DEST, not {len(one)} words: quote a "
                "path with spaces",
                exit_code=ExitCode.USAGE,
            )
        path = one[0]
        name = os.path.basename(path.rstrip("/"))
        dest = one[1] if len(one) > 1 else name or "."
        if args.restore_file and dest.endswith("/") and name:
            # the old scripts gave DEST to duplicity as the file's own path, which refused a
            # folder there; a trailing slash says "into this folder", as cp reads it
            dest += name
        options = {"target": dest, "path": path, "force": args.force, "exact_destination": True}
        options["restore_dir"] = bool(args.restore_dir)  # a file at DEST: refused as for a folder
        options["legacy_config"] = given  # the -c of the dt-cf-backup commands messages give
        return "restore", {**common, **options}
    if args.backup_script:
        return "recovery-kit", {**common, "directory": "."}
    return None


def _handler(name: str, options: dict):
    """The cfbackup handler of action ``name``, bound to its options."""
    namespace = argparse.Namespace(**options)
    if name == "recovery-kit":
        from cfbackup.cli.recovery import export_recovery_kit

        return lambda context: export_recovery_kit(namespace, context)
    from cfbackup.cli.commands import profile_action

    printer = {"status": _print_collection_status, "list": _print_current_files}.get(name)
    handler = profile_action(
        name, many="profiles" in options, take_lock=name != "status", printer=printer
    )
    return lambda context: handler(namespace, context)


def _print_collection_status(result, args) -> None:
    """``-s``: duplicity's collection-status text of each chain, as dt-cf-backup.sh printed
    it; cfbackup's status for a target only duplicity reads (cf+http://)."""
    from cfbackup.cli import output, printers

    texts = result.data.get("duplicity_text") if result.ok else None
    if not texts or None in texts:
        return printers.print_status(result, args)
    for line in (line for lines in texts for line in lines):
        output.info(line)
    for why in result.data.get("backup_refused") or []:  # on stderr: the text stays duplicity's
        output.warn(f"the next backup will be refused: {why}")


def _print_current_files(result, args) -> None:
    """``-l``: duplicity's list-current-files text, as dt-cf-backup.sh printed it."""
    from cfbackup import legacy_text
    from cfbackup.cli import output

    if not result.ok:
        return output.print_result(result)
    for line in legacy_text.list_current_files(result.data["notices"], result.data["entries"]):
        output.info(line)


def _test_run(chosen: tuple[str, dict], context, why: str) -> int:
    """zertrin's test run (``-d``, ``ECHO``): the duplicity command lines this run would
    start, built as the run builds them; nothing runs, no lock, no history."""
    from cfbackup import chains, redact, restore_target, stores
    from cfbackup.cli import output
    from cfbackup.duplicity import commands

    name, options = chosen
    config = context.config
    profiles = config.select([]) if "profiles" in options else [config.profile(None)]
    time = options.get("time")
    for profile in profiles:
        if name == "recovery-kit":
            output.info(
                f"would write a recovery kit of profile {profile.name} into "
                f"{os.path.abspath(options['directory'])}"
            )
            continue
        lines: list[tuple[str, ...]] = []
        for chain in chains.of(profile):
            p = chain.profile
            if name == "backup":
                lines.append(
                    commands.backup_argv(p, full=options["full"], dry_run=options["dry_run"])
                )
                if not options["dry_run"] and p["retention"]["after_backup"]:
                    lines += [commands.retention_argv(p, r) for r in commands.retention_rules(p)]
            elif name == "verify":
                lines.append(commands.verify_argv(p, compare_data=True, time=time))
            elif name == "cleanup":
                lines.append(commands.cleanup_argv(p, dry_run=options["dry_run"]))
            elif name == "list":
                lines.append(commands.list_argv(p, time=time))
            elif name == "status" and not stores.readable(p.target):
                lines.append(commands.collection_status_argv(p))
            elif name == "restore":
                lines.append(
                    commands.restore_argv(
                        p,
                        os.path.abspath(options["target"]),
                        path=options["path"],
                        time=time,
                        force=options["force"],
                        owners=restore_target.can_chown(),
                    )
                )
        if not lines:  # status of a swift:// or file:// target: no duplicity
            output.info(
                f"profile {profile.name}: {name} would read the backup sets at "
                f"{redact.redact_output(profile.target)} (no duplicity command)"
            )
            continue
        output.info(f"profile {profile.name}: {name} would run:")
        for argv in lines:
            output.info("  " + redact.redact_output(shlex.join(argv)))
    output.info(
        f"{TEST_RUN} ({why}); duplicity's secrets travel in its environment and are not shown"
    )
    return int(ExitCode.OK)


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
    from cfbackup import quick_exit

    quick_exit.exit_now(main())
