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
    _global_options(parser, default=None)
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
    _after_the_command_too(sub)
    return parser


# (option strings, keywords): cfbackup's own options, taken before the command and after it
GLOBAL_OPTIONS = (
    (
        ("-c", "--config"),
        {"metavar": "FILE", "help": "config file: native TOML or a legacy ~/.dt-cf-backup.conf"},
    ),
    (("-v", "--verbose"), {"action": "store_true", "help": "show progress messages"}),
    (("--debug",), {"action": "store_true", "help": "show duplicity's output tail on errors"}),
    (("-q", "--quiet"), {"action": "store_true", "help": "no progress bar or progress lines"}),
)


def _global_options(parser: argparse.ArgumentParser, default) -> None:
    """The global options on ``parser``: the main one with their defaults; a command's with
    ``argparse.SUPPRESS`` (an option not given after the command leaves the value given before
    it), and without the strings a command already uses for its own options."""
    taken = set(parser._option_string_actions)
    for strings, keywords in GLOBAL_OPTIONS:
        free = [s for s in strings if s not in taken]
        if free:
            parser.add_argument(
                *free, **keywords, **({} if default is None else {"default": default})
            )


def _after_the_command_too(sub) -> None:
    """``cfbackup status web -c base.toml`` and ``cfbackup backup web -q`` mean what they say:
    every command (a plugin's, a sub-command's too) takes the global options after it."""
    for command_parser in dict.fromkeys(sub.choices.values()):
        _global_options(command_parser, default=argparse.SUPPRESS)
        for action in command_parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _after_the_command_too(action)


def misplaced_option(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """For an option of a command given before the command (``cfbackup --time 3D -c base.toml
    list web``, which argparse refuses as "invalid choice: '3D'"): the message naming it and
    the command line with it moved after the command, as it runs; None otherwise."""
    import shlex

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    moved: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv) and argv[i] not in sub.choices:
        word = argv[i]
        if word == "--" or not word.startswith("-") or word == "-":
            return None  # a stray word: argparse's own message says it
        action = _top_level(parser, word)
        if action is not None:
            # a value follows -c and --config (--conf), not -cFILE, --config=FILE, -q, -qv
            takes = action.nargs is None and "=" not in word
            count = 2 if takes and (word.startswith("--") or len(word) == 2) else 1
            rest += argv[i : i + count]
            i += count
            continue
        moved.append(word)
        i += 1
        while i < len(argv) and not argv[i].startswith("-") and argv[i] not in sub.choices:
            moved.append(argv[i])  # its value (3D), checked below against the command
            i += 1
    if not moved or i >= len(argv):
        return None
    command = sub.choices[argv[i]]
    options = [word.split("=", 1)[0] for word in moved if word.startswith("-")]
    if not all(name in command._option_string_actions for name in options):
        return None  # not the command's either: argparse's own message
    name = options[0]
    if command._option_string_actions[name].nargs == 0 and len(moved) > len(options):
        return None  # a flag followed by stray words
    fixed = [*rest, *argv[i:], *moved]
    return (
        f"{name} is an option of {argv[i]}: it goes after the command: cfbackup {shlex.join(fixed)}"
    )


def _top_level(parser: argparse.ArgumentParser, word: str):
    """The main parser's action for ``word`` (``-c``, ``--config=F``, ``-cF``, ``--conf``)."""
    name = word.split("=", 1)[0]
    actions = parser._option_string_actions
    if name in actions:
        return actions[name]
    if not name.startswith("--") and name[:2] in actions:
        return actions[name[:2]]  # -cFILE, -qv
    matches = [s for s in actions if s.startswith("--") and s.startswith(name) and len(name) > 2]
    return actions[matches[0]] if len(matches) == 1 else None
