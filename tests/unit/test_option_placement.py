"""cfbackup's own options (-c, -q, -v, --debug) work after the command too, and a command's
option given before the command is named with the command line that runs."""

from __future__ import annotations

import pytest

from cfbackup.cli.context import CliContext
from cfbackup.cli.parser import make_parser


@pytest.fixture(scope="module")
def parser():
    return make_parser(CliContext())


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "web", "-c", "base.toml"],
        ["status", "-c", "base.toml", "web"],
        ["status", "--config=base.toml", "web"],
        ["-c", "base.toml", "status", "web"],
        ["-c", "other.toml", "status", "web", "-c", "base.toml"],  # the last one wins
    ],
)
def test_the_config_option_is_taken_before_or_after_the_command(parser, argv):
    args = parser.parse_args(argv)
    assert args.config == "base.toml" and args.profiles == ["web"]


def test_flags_after_the_command_keep_those_given_before_it(parser):
    args = parser.parse_args(["-q", "--debug", "backup", "web", "-v"])
    assert (args.quiet, args.debug, args.verbose, args.config) == (True, True, True, None)
    args = parser.parse_args(["backup", "web", "-q"])
    assert (args.quiet, args.debug, args.verbose) == (True, False, False)
    args = parser.parse_args(["config", "migrate", "old.conf", "-c", "x.toml"])  # nested too
    assert args.config == "x.toml" and args.file == "old.conf"


# (as typed, the message's end, the command line a user would have typed right): each
# suggestion parses to what that right line means
MISPLACED = [
    (
        ["--time", "3D", "-c", "base.toml", "list", "web"],
        "--time is an option of list: it goes after the command: "
        "cfbackup -c base.toml list --time 3D web",
        ["-c", "base.toml", "list", "web", "--time", "3D"],
    ),
    (
        ["--full", "--config=my conf.toml", "-q", "backup", "web"],
        "--full is an option of backup: it goes after the command: "
        "cfbackup '--config=my conf.toml' -q backup --full web",
        ["--config=my conf.toml", "-q", "backup", "web", "--full"],
    ),
    (
        ["--time=3D", "-cbase.toml", "restore", "web", "/tmp/r"],
        "--time is an option of restore: it goes after the command: "
        "cfbackup -cbase.toml restore --time=3D web /tmp/r",
        ["-c", "base.toml", "restore", "web", "/tmp/r", "--time", "3D"],
    ),
    (  # an option of a command with sub-commands goes before the sub-command's word
        ["-s", "h1", "firewall", "status"],
        "-s is an option of firewall: it goes after the command: cfbackup firewall -s h1 status",
        ["firewall", "-s", "h1", "status"],
    ),
    (
        ["--dry-run", "firewall", "lock"],
        "--dry-run is an option of firewall: it goes after the command: "
        "cfbackup firewall --dry-run lock",
        ["firewall", "--dry-run", "lock"],
    ),
    (  # a sub-command's own option after the sub-command's word
        ["--timeout", "60", "--dry-run", "firewall", "lock"],
        "--timeout (of firewall lock) and --dry-run (of firewall) go after the command: "
        "cfbackup firewall --dry-run lock --timeout 60",
        ["firewall", "--dry-run", "lock", "--timeout", "60"],
    ),
    (  # before --, not after the words it ends options for
        ["--time", "3D", "list", "--", "web"],
        "--time is an option of list: it goes after the command: cfbackup list --time 3D -- web",
        ["list", "--time", "3D", "web"],
    ),
    (  # several: each checked, not only the first
        ["--json", "--time", "3D", "list", "web"],
        "--json and --time are options of list: they go after the command: "
        "cfbackup list --json --time 3D web",
        ["list", "web", "--json", "--time", "3D"],
    ),
    (  # an optional value: after the profile, which it would take as its SUBSET
        ["--read-data", "verify", "web"],
        "--read-data is an option of verify: it goes after the command: "
        "cfbackup verify web --read-data",
        ["verify", "web", "--read-data"],
    ),
    (
        # a value spelled like a command (--time list), then the command: the value was taken
        # for the command, and the line printed `cfbackup list --time T list web` (a profile
        # "list", and a placeholder for the value given)
        ["--time", "list", "list", "web"],
        "--time is an option of list: it goes after the command: cfbackup list --time list web",
        ["list", "web", "--time", "list"],
    ),
    (
        ["--ti", "3D", "list", "web"],  # an abbreviation argparse takes after the command
        "--ti is an option of list: it goes after the command: cfbackup list --ti 3D web",
        ["list", "web", "--time", "3D"],
    ),
]


@pytest.mark.parametrize("argv, said, meant", MISPLACED)
def test_a_command_option_before_the_command_names_the_command_line(argv, said, meant, capsys):
    from cfbackup.cli import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"cfbackup: error: {said}"


@pytest.mark.parametrize("argv, said, meant", MISPLACED)
def test_every_suggested_command_line_runs_as_printed(parser, argv, said, meant):
    """The line after "cfbackup " parses, and means what the right line means: it was
    printed with the option at the very end, after a sub-command (unrecognized arguments)
    or after --."""
    import shlex

    suggestion = shlex.split(said.split(": cfbackup ", 1)[1])
    assert vars(parser.parse_args(suggestion)) == vars(parser.parse_args(meant))


def test_an_option_missing_its_value_is_named_with_a_placeholder(capsys):
    """cfbackup --time list: the command line printed was `cfbackup list --time`, which
    fails again for the missing value."""
    from cfbackup.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["--time", "list", "web"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "cfbackup: error: --time is an option of list: it goes after the command, and --time "
        "needs a value: cfbackup list --time T web"
    )


@pytest.mark.parametrize(
    "argv, dest, value",
    [
        (["backup", "--d"], "dry_run", True),  # --dry-run, not "could match --debug"
        (["cleanup", "web", "--d"], "dry_run", True),
        (["quota", "set", "web", "--co", "5"], "count", "5"),  # --count, not --config
        (["status", "--conf", "x.toml"], "config", "x.toml"),  # only a global option's
        (["backup", "--deb"], "debug", True),
    ],
)
def test_abbreviations_keep_meaning_the_command_s_own_option(parser, argv, dest, value):
    """The global options taken after the command made abbreviations that worked ambiguous
    (exit 2 in a crontab line written with them)."""
    args = parser.parse_args(argv)
    assert getattr(args, dest) == value
    if dest != "debug":
        assert not getattr(args, "debug", False)


@pytest.mark.parametrize(
    "argv", [["--bogus", "list", "web"], ["--full", "list", "web"], ["web", "list"]]
)
def test_other_mistakes_keep_argparse_s_message(capsys, argv):
    from cfbackup.cli import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "it goes after the command" not in capsys.readouterr().err
