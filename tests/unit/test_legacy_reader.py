"""The legacy reader reads back every variable exactly as bash holds it after sourcing the file.

The oracle is the value written into the file: a generated bash file assigns arbitrary values
(scalars and arrays, empty arrays, empty strings, blanks, quotes, newlines, backslashes, dollar
signs, unicode) in the quoting styles real files use, and each one must read back equal, in any
order, whatever came before it. Declared-but-unset variables are absent, as ``${VAR-x}`` sees.
"""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cfbackup.config.legacy import read_file, read_variables
from cfbackup.config.legacy_vars import VARIABLES
from cfbackup.errors import ConfigError

# Any character bash can hold (no NUL), unicode, CR and LF included. Not \x01 and \x7f: bash
# itself doubles them when a double-quoted item of a compound array assignment holds them
# ("\x01" becomes "\x01\x01", bash 5.2), and the reader reports what bash holds.
values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\x01\x7f"),
    max_size=30,
)


def double(value: str) -> str:
    return '"' + "".join("\\" + c if c in '"\\$`' else c for c in value) + '"'


def single(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def ansi_c(value: str) -> str:
    out = []
    for c in value:
        if c in "\\'":
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        else:
            out.append(c)
    return "$'" + "".join(out) + "'"


QUOTES = {"double": double, "single": single, "ansi": ansi_c}


@st.composite
def assignments(draw):
    """(file text, expected variables): each known name set once, or declared and left unset."""
    names = draw(st.lists(st.sampled_from(VARIABLES), unique=True, max_size=8))
    lines, expected = [], {}
    for name in names:
        kind = draw(st.sampled_from(["scalar", "array", "unset"]))
        export = draw(st.sampled_from(["", "export "]))
        quote = QUOTES[draw(st.sampled_from(sorted(QUOTES)))]
        comment = draw(st.sampled_from(["", "  # a comment, \"quoted\" and 'single'"]))
        if kind == "scalar":
            value = draw(values)
            lines.append(f"{export}{name}={quote(value)}{comment}")
            expected[name] = value
        elif kind == "array":
            items = draw(st.lists(values, max_size=4))
            joiner = draw(st.sampled_from([" ", " \\\n    ", "\n    "]))
            body = joiner.join(quote(item) for item in items)
            lines.append(f"{name}=( {body} ){comment}")
            if export:
                lines.append(f"export {name}")
            expected[name] = items
        else:
            lines.append(draw(st.sampled_from([f"declare {name}", f"export {name}"])))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n"])), expected


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=assignments())
@example(  # the bug: an empty array shifted every variable read after it
    case=(
        'EXCLIST=()\nGPG_KEY="ABCD1234"\nPASSPHRASE="secret words"\nSTATIC_OPTIONS="--volsize 5"',
        {
            "EXCLIST": [],
            "GPG_KEY": "ABCD1234",
            "PASSPHRASE": "secret words",
            "STATIC_OPTIONS": "--volsize 5",
        },
    )
)
@example(
    case=('INCLIST=( "" )\nEXCLIST=("")\nROOT=""', {"INCLIST": [""], "EXCLIST": [""], "ROOT": ""})
)
@example(case=("ROOT=$'a\\r\\nb'\nDEST='x'", {"ROOT": "a\r\nb", "DEST": "x"}))
def test_each_value_reads_back_as_written(tmp_path, case):
    text, expected = case
    path = tmp_path / "dt-cf-backup.conf"
    path.write_bytes(text.encode("utf-8"))
    assert read_variables(path) == expected


def test_what_real_files_do(tmp_path):
    """CRLF line ends, no final newline, export mixed in, output and redirections of stdout,
    helper variables, $(...) and backquotes."""
    path = tmp_path / "conf"
    text = textwrap.dedent("""\
        # "quotes" in a comment, and an apostrophe: don't
        export SWIFT_USERNAME="u:name" SWIFT_PASSWORD='p w'
        HOST=$(printf web1)
        DEST="swift://box/${HOST}"
        EXCLIST=()
        INCLIST=( "/srv/a b" \\
                  "/srv/`printf c`" )
        echo "the file talks on stdout"
        exec >/dev/null
        declare GPG_KEY
        LOGDIR=""
        ROOT=/srv""")
    path.write_bytes(text.replace("\n", "\r\n").encode())
    read = read_file(path)
    assert read.variables == {
        "SWIFT_USERNAME": "u:name",
        "SWIFT_PASSWORD": "p w",
        "DEST": "swift://box/web1",
        "EXCLIST": [],
        "INCLIST": ["/srv/a b", "/srv/c"],
        "LOGDIR": "",
        "ROOT": "/srv",
    }
    assert read.others == ["HOST"] and read.crlf
    assert read.computed_lines == [3, 7]
    notes = " ".join(read.notes())
    assert "HOST" in notes and "CRLF" in notes and "line(s) 3, 7" in notes


def test_inherited_variables_are_not_the_files(tmp_path, monkeypatch):
    """TMPDIR set for cfbackup itself is not a TMPDIR set by the file."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    path = tmp_path / "conf"
    path.write_text("ROOT=/srv\n")
    assert read_variables(path) == {"ROOT": "/srv"}


def test_a_redefined_printf_or_declare_does_not_fool_the_reader(tmp_path):
    path = tmp_path / "conf"
    path.write_text("printf() { :; }\ndeclare() { :; }\nROOT=/srv\nEXCLIST=()\nDEST=file:///t\n")
    assert read_variables(path) == {"ROOT": "/srv", "EXCLIST": [], "DEST": "file:///t"}


def test_a_syntax_error_is_one_config_error(tmp_path):
    path = tmp_path / "conf"
    path.write_text('ROOT="/srv\nDEST=x\n')
    with pytest.raises(ConfigError, match="bash could not read this file"):
        read_variables(path)


@pytest.mark.parametrize(
    "text, legacy",
    [
        ('[profiles.a]\nsource = "/"\n', False),
        ('state_dir = "/x"\n\n[profiles.a]\nsource = "/"\n', False),
        ('source = "/"\n', False),
        ('ROOT="/srv"\n', True),
        ("#!/bin/bash\nset -e\n[ -f /etc/x ] && . /etc/x\nexport ROOT=/srv\n", True),
        ("ROOT=/srv\nif [[ -n $X ]]; then DEST=y; fi\n", True),
    ],
)
def test_legacy_files_are_told_from_toml(text, legacy):
    from cfbackup.config.legacy import looks_legacy

    assert looks_legacy(text) is legacy


def test_what_bash_says_reaches_every_run_without_a_secret(tmp_path):
    """bash skips a line it cannot run and goes on (the old script's cron mail showed what it
    said): each run warns with it. The word bash tried to run is shown only when it is one of
    the old scripts' variables: after ``PASSPHRASE= `` it is the passphrase."""
    from cfbackup.config.legacy import load_legacy

    conf = tmp_path / "dt.conf"
    conf.write_bytes(
        b"\xef\xbb\xbfGPG_KEY=ABCD1234\n"  # a byte order mark: bash runs the whole line
        b"ROOT=/srv\nDEST=cf+http://backups\nCLOUDFILES_USERNAME=u\nCLOUDFILES_APIKEY=k\n"
        b"PASSPHRASE= correct-horse-battery\n"
        b"CLEAN_UP_VARIABLE = 4\n"
    )
    raw, warnings = load_legacy(conf)
    said = [w for w in warnings if "bash said" in w]
    assert len(said) == 3, warnings
    assert "byte order mark" in said[0] and "GPG_KEY=...: command not found" in said[0]
    assert "line 6: a word: command not found" in said[1]
    assert "CLEAN_UP_VARIABLE: command not found" in said[2]
    assert not any("correct-horse" in w or "ABCD1234" in w for w in warnings)
    # as the old script ran it: GPG_KEY never set, so the chain is symmetric, unchanged
    assert raw["profiles"]["dt-cf-backup"]["encryption"]["mode"] == "symmetric"


def test_bytes_that_are_not_utf8(tmp_path):
    """A Latin-1 comment is fine (bash reads any byte); a Latin-1 directory name in INCLIST is
    refused by name: a replacement character would leave it out of every backup silently."""
    from cfbackup.config.load import read_raw

    conf = tmp_path / "dt.conf"
    base = b"# Sicherung f\xfcr den Server\nROOT=/srv\nDEST=cf+http://b\nCLOUDFILES_USERNAME=u\n"
    conf.write_bytes(base + b"CLOUDFILES_APIKEY=k\nPASSPHRASE=p\n")
    raw, kind, _ = read_raw(conf)
    assert kind == "legacy" and raw["profiles"]["dt-cf-backup"]["source"] == "/srv"
    conf.write_bytes(base + b"CLOUDFILES_APIKEY=k\nPASSPHRASE=p\nINCLIST=( /srv/j\xfcrgen )\n")
    with pytest.raises(ConfigError, match="INCLIST holds bytes that are not UTF-8"):
        read_raw(conf)
    conf.write_bytes(b"[profiles.x]\n# f\xfcr\n")
    with pytest.raises(ConfigError, match="line 2 is not UTF-8 text"):
        read_raw(conf)


def test_a_value_ending_in_a_carriage_return_is_named(tmp_path):
    """A Windows file with one line added on Unix (``echo >> FILE``) is not read as a CRLF
    file: bash keeps the CR in each value, and the errors that follow hide it."""
    from cfbackup.config.legacy import load_legacy

    conf = tmp_path / "dt.conf"
    conf.write_bytes(
        b"ROOT=/srv\r\nDEST=cf+http://b\r\nCLOUDFILES_USERNAME=u\r\nCLOUDFILES_APIKEY=k\r\n"
        b"PASSPHRASE=p\n"
    )
    _, warnings = load_legacy(conf)
    named = [w for w in warnings if "carriage return" in w]
    assert len(named) == 1, warnings
    assert "ROOT, DEST, CLOUDFILES_USERNAME, CLOUDFILES_APIKEY end(s)" in named[0]


def test_what_the_file_exports_for_duplicity_is_carried_or_named_on_every_run(tmp_path):
    """dt-cf-backup.sh's duplicity inherited what the file exported (an https_proxy to reach
    Cloud Files, mostly). The proxy and CA variables are carried, as the config's
    [environment]; any other export is named on each run, since cfbackup starts duplicity
    with its own environment. A helper variable that is not exported is fine, and a proxy
    set without export never reached duplicity: it is not carried either."""
    from cfbackup.config.legacy import load_legacy, read_file
    from cfbackup.config.load import build_config

    conf = tmp_path / "dt.conf"
    conf.write_text(
        "export https_proxy=http://proxy.example:3128\n"
        "REQUESTS_CA_BUNDLE=/etc/ssl/corp-ca.pem; export REQUESTS_CA_BUNDLE\n"
        "http_proxy=http://not-exported.example:3128\n"
        "export DUPLICITY_EXTRA=1\n"
        "DAY=$(date +%a)\n"  # builds another value, not exported: not named
        "ROOT=/srv\nDEST=cf+http://b\nCLOUDFILES_USERNAME=u\nCLOUDFILES_APIKEY=k\n"
        "export PASSPHRASE=p\n"  # one of the old variables: carried as always
    )
    raw, warnings = load_legacy(conf)
    carried = {
        "https_proxy": "http://proxy.example:3128",
        "REQUESTS_CA_BUNDLE": "/etc/ssl/corp-ca.pem",
    }
    assert raw["environment"] == carried
    assert build_config(raw, path=None, kind="legacy").environment == carried
    named = [w for w in warnings if "which duplicity no longer gets" in w]
    assert len(named) == 1 and f"{conf} exports DUPLICITY_EXTRA, which" in named[0], warnings
    assert not any(word in named[0] for word in ("https_proxy", "CA_BUNDLE", "DAY", "PASSPHRASE"))
    assert not any("proxy.example" in w for w in read_file(conf).notes())


def test_bash_lines_never_echo_a_secret(tmp_path, capsys):
    """bash cites the words it could not use, and a file may print what it likes: each line
    is reduced to its line number and the kind of error, on every run and in the comments of
    ``config migrate``; the legacy secrets are masked from the moment the file is read."""
    from cfbackup import redact
    from cfbackup.cli import main
    from cfbackup.config.legacy import load_legacy

    conf = tmp_path / "dt.conf"
    conf.write_text(
        "ROOT=/srv\nDEST=cf+http://backups\nCLOUDFILES_USERNAME=u\n"
        "CLOUDFILES_APIKEY=FAKE-apikey-C3\n"
        "PASSPHRASE= pa/FAKEsecretB2\n"  # line 5: runs the "passphrase"
        'export PASSPHRASE = "FAKE-secretA1"\n'  # line 6: cites it as an identifier
        "PASSPHRASE=FAKE-secretD4\n"
        'echo "using passphrase $PASSPHRASE"\n'
        "FTP_PASSWORD=FAKE-ftp-E5\n"  # duplicity-backup.sh's, not carried over: masked too
    )
    conf.chmod(0o600)
    _, warnings = load_legacy(conf)
    said = [w.split("bash said while reading it: ", 1)[1] for w in warnings if "bash said" in w]
    assert said == [
        "line 5: No such file or directory",
        "line 6: export: not a valid identifier",
        "line 6: export: not a valid identifier",
        "a line printed by the file or by bash (not shown: it may hold a secret)",
    ], warnings
    assert redact.redact("FAKE-secretD4 FAKE-apikey-C3 FAKE-ftp-E5") == "*** *** ***"
    assert main(["config", "migrate", str(conf)]) == 0
    out, err = capsys.readouterr()
    assert "# warning:" in out and "line 6: export: not a valid identifier" in err
    for secret in (
        "FAKEsecretB2",
        "FAKE-secretA1",
        "FAKE-secretD4",
        "FAKE-apikey-C3",
        "FAKE-ftp-E5",
    ):
        assert secret not in out + err + "".join(warnings), secret


def test_migrate_prints_a_proxy_url_without_its_password(tmp_path, capsys):
    """A legacy ``export https_proxy=http://user:pw@host`` becomes the config's [environment]:
    printed without the password, with a warning saying where it goes; ``-o FILE`` (mode
    0600) keeps it."""
    import os

    from cfbackup.cli import main

    conf = tmp_path / "dt.conf"
    conf.write_text(
        "export https_proxy=http://backup:FAKE-proxy-pw9@proxy.example:3128\n"
        "ROOT=/srv\nDEST=cf+http://backups\nCLOUDFILES_USERNAME=u\nCLOUDFILES_APIKEY=k\n"
        "PASSPHRASE=p\n"
    )
    conf.chmod(0o600)
    assert main(["config", "migrate", str(conf)]) == 0
    out, err = capsys.readouterr()
    assert 'https_proxy = "http://backup@proxy.example:3128"' in out, out
    assert "environment.https_proxy: the proxy password is left out" in err
    assert "FAKE-proxy-pw9" not in out + err
    written = tmp_path / "config.toml"
    assert main(["config", "migrate", str(conf), "-o", str(written)]) == 0
    assert "http://backup:FAKE-proxy-pw9@proxy.example:3128" in written.read_text()
    assert oct(os.stat(written).st_mode & 0o777) == "0o600"


def test_migrate_o_into_a_folder_that_does_not_exist_makes_it_private(tmp_path, capsys):
    """On a new machine ``~/.config/cfbackup`` does not exist yet (a legacy kit installs only
    ``~/.dt-cf-backup.conf``): quickstart's ``-o ~/.config/cfbackup/config.toml`` makes it,
    mode 0700; a folder that cannot be made is refused in one line, exit 2."""
    import os

    from cfbackup.cli import main

    conf = tmp_path / "dt.conf"
    conf.write_text("ROOT=/srv\nDEST=file:///t\nPASSPHRASE=pass-words\n")
    conf.chmod(0o600)
    written = tmp_path / "home" / ".config" / "cfbackup" / "config.toml"
    assert main(["config", "migrate", str(conf), "-o", str(written)]) == 0
    assert "[profiles" in written.read_text()
    assert oct(os.stat(written.parent).st_mode & 0o777) == "0o700"
    assert oct(os.stat(written).st_mode & 0o777) == "0o600"
    capsys.readouterr()
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert main(["config", "migrate", str(conf), "-o", str(blocked / "config.toml")]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {blocked / 'config.toml'}" in err and "bug" not in err, err
