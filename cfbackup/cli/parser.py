"""The argument parser: built-in commands, then the ones plugins add."""

from __future__ import annotations

import argparse

from cfbackup import __version__
from cfbackup.cli import commands


class _Parser(argparse.ArgumentParser):
    """argparse's parser, where an abbreviation (``backup --d``, ``quota set web --co 5``)
    means the command's own option it meant before the global options were taken after the
    command too, not "ambiguous option: --d could match --dry-run, --debug"; one that only a
    global option starts with (``status --conf x.toml``) is that option. Sub-parsers, a
    plugin's too, are of this class (``add_subparsers`` makes them of the parser's class)."""

    def _get_option_tuples(self, option_string):
        found = super()._get_option_tuples(option_string)
        own = [t for t in found if not getattr(t[0], "after_the_command", False)]
        return own or found


def make_parser(context) -> argparse.ArgumentParser:
    parser = _Parser(
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
            action = parser.add_argument(
                *free, **keywords, **({} if default is None else {"default": default})
            )
            action.after_the_command = default is not None  # see _Parser


def _after_the_command_too(sub) -> None:
    """``cfbackup status web -c base.toml`` and ``cfbackup backup web -q`` mean what they say:
    every command (a plugin's, a sub-command's too) takes the global options after it."""
    for command_parser in dict.fromkeys(sub.choices.values()):
        _global_options(command_parser, default=argparse.SUPPRESS)
        for action in command_parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _after_the_command_too(action)


def misplaced_option(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """For options of a command given before the command (``cfbackup --time 3D -c base.toml
    list web``, which argparse refuses as "invalid choice: '3D'"): the message naming them and
    the command line with each moved right after the word of the command or sub-command that
    owns it (``firewall -s h1 status``, ``list --time 3D -- web``), checked to parse; None
    otherwise (argparse's own message says it)."""
    import shlex

    sub = _subparsers(parser)
    rest: list[str] = []
    groups: list[list[str]] = []  # an option as typed, then the words after it (its value)
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
        groups.append([word])
        i += 1
        while i < len(argv) and not argv[i].startswith("-") and argv[i] not in sub.choices:
            groups[-1].append(argv[i])  # its value (3D), checked below against its action
            i += 1
        if "=" not in word and len(groups[-1]) == 1 and _command_as_value(sub, argv, i, word):
            groups[-1].append(argv[i])  # --time list list web: the first list is its value
            i += 1
    if not groups or i >= len(argv):
        return None
    chain = _command_chain(sub, argv, i)
    # index in argv of a command word -> the words put after it (index - 0.5: before it)
    after: dict[float, list[str]] = {}
    said: list[tuple[str, str]] = []  # (option, the command words it belongs to)
    missing = None  # the option given without its value (cfbackup --time list): its name
    for group in groups:
        name = group[0].split("=", 1)[0]
        owner = _owner(chain, name)
        if owner is None:
            return None  # not the command's either: argparse's own message
        action, at = owner
        given = len(group) - 1 + ("=" in group[0])
        words = list(group)
        if not _takes(action, given):
            if given or missing or action.nargs not in (None, 1):
                return None  # a flag followed by stray words, or too many of them
            missing = name
            words.append(action.metavar or action.dest.upper())  # the user's to give
        if action.nargs in ("?", "*") and "=" not in group[0]:
            at = _segment_end(chain, argv, at)  # verify web --read-data: web is no SUBSET
        after.setdefault(at, []).extend(words)
        said.append((name, " ".join(argv[a] for _, a in chain if a <= at)))
    fixed = list(rest)
    for index in range(i, len(argv)):
        fixed += [*after.get(index - 0.5, []), argv[index], *after.get(index, [])]
    fixed += after.get(len(argv) - 0.5, [])
    said = list(dict.fromkeys(said))  # --full --full: named once
    owners = {words for _, words in said}
    if len(said) == 1:
        whose = f"{said[0][0]} is an option of {said[0][1]}: it goes"
    elif len(owners) == 1:
        names = [name for name, _ in said]
        whose = f"{', '.join(names[:-1])} and {names[-1]} are options of {said[0][1]}: they go"
    else:
        listed = [f"{name} (of {words})" for name, words in said]
        whose = f"{', '.join(listed[:-1])} and {listed[-1]} go"
    if missing is not None:  # a placeholder stands for the value: not checked to parse
        return (
            f"{whose} after the command, and {missing} needs a value: cfbackup {shlex.join(fixed)}"
        )
    if not _parses(parser, fixed):
        return None
    return f"{whose} after the command: cfbackup {shlex.join(fixed)}"


def _command_as_value(sub, argv: list[str], i: int, name: str) -> bool:
    """Whether ``argv[i]``, a command's word, is the value of option ``name`` before it: a
    command's word follows it (``--time list list web``), and that command's ``name`` takes
    exactly one value."""
    if i + 1 >= len(argv) or argv[i] not in sub.choices or argv[i + 1] not in sub.choices:
        return False
    owner = _owner(_command_chain(sub, argv, i + 1), name)
    return owner is not None and owner[0].nargs is None


def _subparsers(parser: argparse.ArgumentParser):
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def _command_chain(sub, argv: list[str], i: int) -> list[tuple[argparse.ArgumentParser, int]]:
    """The command named at ``argv[i]`` and its sub-commands after it (``firewall status``):
    each parser with the index of its word in ``argv``."""
    chain = [(sub.choices[argv[i]], i)]
    while (inner := _subparsers(chain[-1][0])) is not None:
        at = chain[-1][1]
        j = next((j for j in range(at + 1, len(argv)) if argv[j] in (*inner.choices, "--")), None)
        if j is None or argv[j] == "--":
            break
        chain.append((inner.choices[argv[j]], j))
    return chain


def _segment_end(chain, argv: list[str], at: int) -> float:
    """Where the words of the command at ``argv[at]`` end (before its sub-command's word, a
    ``--``, or the end), as a place between words: for an option whose value is optional,
    which would take the next word as its value."""
    later = [a for _, a in chain if a > at]
    stop = min([*later, *(j for j in range(at + 1, len(argv)) if argv[j] == "--"), len(argv)])
    return stop - 0.5


def _owner(chain, name: str):
    """(action, index of the command word to put it after) for option ``name`` (``--time``, or
    an abbreviation argparse takes, ``--ti``): the innermost command of ``chain`` that has it
    (a sub-command's default would overwrite a value given to its parent)."""
    for command, at in reversed(chain):
        actions = {
            s: a
            for s, a in command._option_string_actions.items()
            if not getattr(a, "after_the_command", False)
        }
        if name in actions:
            return actions[name], at
        if name.startswith("--") and len(name) > 2:
            matches = {a for s, a in actions.items() if s.startswith(name)}
            if len(matches) == 1:
                return matches.pop(), at
    return None


def _takes(action: argparse.Action, given: int) -> bool:
    """Whether ``action`` takes ``given`` values (a flag none, --time one, --read-data 0 or 1)."""
    nargs = action.nargs
    if nargs is None:
        return given == 1
    if nargs == "?":
        return given <= 1
    if nargs == "*":
        return True
    if nargs == "+":
        return given >= 1
    return isinstance(nargs, int) and given == nargs


def _parses(parser: argparse.ArgumentParser, argv: list[str]) -> bool:
    """Whether ``argv`` parses (nothing printed): a suggested command line runs as printed."""
    import contextlib
    import io

    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(argv)
    except SystemExit:
        return False
    return True


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
