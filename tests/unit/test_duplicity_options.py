"""cfbackup's table of duplicity's options is duplicity's own (the installed 3.2 parser)."""

from __future__ import annotations

from cfbackup.duplicity import options


def _duplicity_parser_options() -> tuple[set[str], set[str]]:
    from duplicity import cli_main
    from duplicity.cli_data import OptionAliases, OptionKwargs, all_options
    from duplicity.cli_util import opt2var

    parser = cli_main.new_parser(include_help=False)
    for opt in sorted(all_options):
        var = opt2var(opt)
        parser.add_argument(opt, *OptionAliases.__dict__.get(var, []), **OptionKwargs[var])
    flags, values = set(), set()
    for action in parser._actions:
        (flags if action.nargs == 0 else values).update(action.option_strings)
    return flags, values


def test_tables_match_duplicitys_parser():
    flags, values = _duplicity_parser_options()
    assert options.FLAG_OPTIONS == flags
    assert options.VALUE_OPTIONS == values
    assert options.SELECTION_OPTIONS <= flags | values


def test_names_abbreviations_and_old_spellings():
    assert options.option_name("--volsize=5") == "--volsize"
    assert options.option_name("--full-if-older") == "--full-if-older-than"  # unique prefix
    assert options.option_name("--file-to-restore") == "--path-to-restore"
    assert options.is_selection("--exclude-if-present=.nobackup")
    assert not options.is_selection("--num-retries=3")
