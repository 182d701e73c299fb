"""What reaches the terminal of a file name in a message: whatever path raised or returned it,
cfbackup's output spells out what a terminal would act on (an ESC, a U+202E), and leaves alone
what is spelled out already and what scripts read (JSON)."""

from __future__ import annotations

import json

from cfbackup import restore_target
from cfbackup.cli import output
from cfbackup.errors import CfbackupError, ExitCode
from cfbackup.runtypes import RunResult
from cfbackup.units import pasteable, printable

ESC = "clear\x1b[2J"  # raw, the terminal clears the screen
RLO = "invoice\u202etxt.exe"  # raw, it reads "invoiceexe.txt"


def test_a_path_in_the_way_of_a_restore_is_spelled_out_in_the_error(tmp_path, capsys):
    staged, destination = tmp_path / "staged", tmp_path / "dest"
    clashes = [(destination / ESC, "a file"), (destination / RLO, "a folder")]
    error = restore_target.clash_error(clashes, staged, destination, None, False)
    output.print_error(error, debug=False)
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\u202e" not in err, err
    # as the user pastes them after mv: bash's $'...' (units.pasteable)
    assert (
        f"$'{destination}/clear\\x1b[2J' is a file; $'{destination}/invoice\\xe2\\x80\\xaetxt"
        in err
    )
    assert err.count("\n") == 1


def test_a_newline_in_a_name_never_starts_a_line_of_its_own(tmp_path, capsys):
    """A name holding a newline and text shaped as cfbackup's own output: one line still."""
    from cfbackup.actions.restore import relative_path

    staged, destination = tmp_path / "staged", tmp_path / "dest"
    fake = "a\ncfbackup: error: nothing to see"
    error = restore_target.clash_error([(destination / fake, "a file")], staged, destination,
                                        None, False)  # fmt: skip
    output.print_error(error, debug=False)
    assert capsys.readouterr().err.count("\n") == 1
    run = type("R", (), {"profile": type("P", (), {"source": "/srv"})()})()
    try:
        relative_path(run, f"/etc/x\n{fake}")
    except CfbackupError as raised:  # a usage error (exit 2)
        output.print_error(raised, debug=False)
    assert capsys.readouterr().err.count("\n") == 1


def test_every_message_path_spells_out_a_name(capsys):
    output.warn(f"{ESC} and {RLO}")
    output.note(f"restoring {RLO}")
    output.info(f"restored {ESC}")
    output.print_result(RunResult("p", "restore", ExitCode.PARTIAL, f"no {RLO}"))
    output.print_error(CfbackupError(f"{ESC}: not under the source"), debug=False)
    out, err = capsys.readouterr()
    assert out == "restored clear\\x1b[2J\n"
    assert err == (
        "cfbackup: warning: clear\\x1b[2J and invoice\\u202etxt.exe\n"
        "restoring invoice\\u202etxt.exe\n"
        "cfbackup: error: no invoice\\u202etxt.exe\n"
        "cfbackup: error: clear\\x1b[2J: not under the source\n"
    )


def test_what_is_spelled_out_already_and_json_are_written_as_they_are(capsys):
    lines = [pasteable(ESC), printable(RLO), "a message\n\twith its own lines", "café 日本"]
    for line in lines:
        output.info(line)
    output.print_json({"path": ESC})
    out = capsys.readouterr().out
    assert out == "\n".join(lines) + "\n" + json.dumps({"path": ESC}, indent=2) + "\n"
    assert json.loads(out[out.index("{") :]) == {"path": ESC}
