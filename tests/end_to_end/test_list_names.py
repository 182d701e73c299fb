"""``list`` of names that are not UTF-8, against a real duplicity and the local Swift.

duplicity's machine log (``--log-fd``) was strict UTF-8 text: the record of every file whose
name is not UTF-8 (a latin-1 ``caf\\xe9.txt`` from an old Windows share) failed to be written
and was dropped, so ``list`` left those files out without a word. A user looking for the file
at 3 a.m. did not see it; and a name printed as its raw bytes (or as ``caf\\xe9``) could not
be pasted back into ``restore --path``. ``list`` now prints such a name in bash's ``$'...'``
quoting, which pasted into the shell gives ``restore`` exactly its bytes. So too a UTF-8 name
with a bidi override (U+202E made ``invoice<RLO>txt.exe`` show as ``invoiceexe.txt``) or a line
separator (U+2028 split the listing's line).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess

import pytest
from support.cli import BIN

pytestmark = pytest.mark.swift

LATIN = b"caf\xe9"  # a latin-1 name from an old system: not UTF-8
CAFE = os.fsdecode(LATIN)  # as Python spells it when it reads it from the disk
NAMES = {  # the files backed up, as list must show them: their bytes, their content
    "ok.txt": (b"ok.txt", "ok\n"),
    "café.txt": ("café.txt".encode(), "utf-8\n"),  # its own name, apart from the latin-1 one
    "$'weird/caf\\xe9.txt'": (b"weird/" + LATIN + b".txt", "coffee\n"),
    "$'caf\\xe9/menu'": (LATIN + b"/menu", "espresso\n"),
    "$'caf\\xe9/two\\nlines'": (LATIN + b"/two\nlines", "newline\n"),  # would split a line
    # UTF-8, but raw they make the listing lie: RLO shows "invoiceexe.txt", U+2028 splits a line
    "$'invoice\\xe2\\x80\\xaetxt.exe'": ("invoice\u202etxt.exe".encode(), "rlo\n"),
    "$'two\\xe2\\x80\\xa8lines'": ("two\u2028lines".encode(), "separator\n"),
}


def _tree(src):
    (src / "weird").mkdir(parents=True)
    (src / "weird" / f"{CAFE}.txt").write_text("coffee\n")
    (src / CAFE).mkdir()
    (src / CAFE / "menu").write_text("espresso\n")
    (src / CAFE / "two\nlines").write_text("newline\n")
    (src / "ok.txt").write_text("ok\n")
    (src / "café.txt").write_text("utf-8\n")
    (src / "invoice\u202etxt.exe").write_text("rlo\n")
    (src / "two\u2028lines").write_text("separator\n")


def test_list_shows_every_name_and_restore_takes_it_back_as_shown(
    tmp_path, make_config, cfbackup, cli_env
):
    src = tmp_path / "src"
    _tree(src)
    config = make_config(source=src)
    assert cfbackup("-c", config, "backup").returncode == 0

    listed = cfbackup("-c", config, "list", "main")
    assert listed.returncode == 0, listed
    shown = {line.split(None, 2)[2]: line.split()[1] for line in listed.stdout.splitlines()}
    assert set(NAMES) | {".", "weird", "$'caf\\xe9'"} == set(shown), listed.stdout
    assert shown["$'caf\\xe9'"] == "dir" and shown["$'weird/caf\\xe9.txt'"] == "reg"

    # --json: "path" is the name with os.fsdecode's surrogates (lossless: os.fsencode gives
    # the bytes back), "path_shell" what the text form prints, when that is not "path"
    entries = json.loads(cfbackup("-c", config, "list", "main", "--json").stdout)
    by_bytes = {os.fsencode(e["path"]): e for e in entries}
    assert by_bytes[b"weird/" + LATIN + b".txt"]["path_shell"] == "$'weird/caf\\xe9.txt'"
    assert by_bytes[LATIN + b"/two\nlines"]["path_shell"] == "$'caf\\xe9/two\\nlines'"
    assert "path_shell" not in by_bytes["café.txt".encode()]
    rlo = by_bytes["invoice\u202etxt.exe".encode()]
    assert rlo["path_shell"] == "$'invoice\\xe2\\x80\\xaetxt.exe'"
    assert len(by_bytes) == len(entries) == len(shown)

    for number, (name, (path, content)) in enumerate(NAMES.items()):
        out = tmp_path / f"out{number}"
        # pasted into a shell as the user would: the shell turns $'...' into the name's bytes
        typed = name if name.startswith("$'") else shlex.quote(name)
        restore = subprocess.run(
            ["bash", "-c", f'"$0" -c "$1" restore main "$2" --path {typed}', BIN / "cfbackup"]
            + [config, out],
            env=cli_env,
            capture_output=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        assert restore.returncode == 0, (name, restore.stdout, restore.stderr)
        assert b"Traceback" not in restore.stderr
        said = restore.stdout.decode()  # the result names the file on one line, spelled out
        assert said.count("\n") == 1 and said.rstrip("\n").isprintable(), (name, said)
        assert (out / os.fsdecode(path)).read_text() == content, name
    assert sorted(os.listdir(tmp_path / "out3" / CAFE)) == ["menu"]  # that file, only
