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


@pytest.mark.parametrize(
    "argv, said",
    [
        (
            ["--time", "3D", "-c", "base.toml", "list", "web"],
            "--time is an option of list: it goes after the command: "
            "cfbackup -c base.toml list web --time 3D",
        ),
        (
            ["--full", "--config=my conf.toml", "-q", "backup", "web"],
            "--full is an option of backup: it goes after the command: "
            "cfbackup '--config=my conf.toml' -q backup web --full",
        ),
        (
            ["--time=3D", "-cbase.toml", "restore", "web", "/tmp/r"],
            "--time is an option of restore: it goes after the command: "
            "cfbackup -cbase.toml restore web /tmp/r --time=3D",
        ),
    ],
)
def test_a_command_option_before_the_command_names_the_command_line(cli, argv, said, capsys):
    from cfbackup.cli import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"cfbackup: error: {said}"


@pytest.mark.parametrize(
    "argv", [["--bogus", "list", "web"], ["--full", "list", "web"], ["web", "list"]]
)
def test_other_mistakes_keep_argparse_s_message(capsys, argv):
    from cfbackup.cli import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "it goes after the command" not in capsys.readouterr().err
