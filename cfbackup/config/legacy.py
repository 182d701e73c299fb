"""Read ``~/.dt-cf-backup.conf`` as the old scripts did, and normalize it to a native profile.

The file is bash: bash itself sources it in a clean environment and prints the variables back
(``declare -p`` tells arrays from scalars and set from unset; values travel NUL-separated, and
bash values cannot hold a NUL), so quoting, arrays, comments and ``$(...)`` mean exactly what they
meant to dt-cf-backup.sh, dt-s3-backup.sh and duplicity-backup.sh. The result has the native shape
(``legacy_map.normalize``) and goes through the one validator.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
from pathlib import Path
from typing import Any

from cfbackup import redact
from cfbackup.config.legacy_form import default_notes
from cfbackup.config.legacy_map import normalize
from cfbackup.config.legacy_vars import PROFILE_NAME, SECRET_VARIABLES, VARIABLES
from cfbackup.config.validate import unsupported_target
from cfbackup.errors import ConfigError

# dt-cf-backup.sh sourced the file and went on whatever its last command returned (a final
# `[ -f x ] && VAR=...` is common); only a syntax error, found by `bash -n` first, is refused.
# The known names are unset first (a TMPDIR inherited from cfbackup is not the file's); the
# file's own output goes to stderr and the values to fd 3, so `exec >/dev/null` in the file
# cannot hide them. The proxy and CA variables (``$__cfb_carry``) the file leaves exported come
# with their values, inherited or not: dt-cf-backup.sh's duplicity ran with them. An empty
# array prints no value at all (`printf '%s\0'` with no arguments would print one empty field
# and shift every later variable). A CRLF file is read with its
# line ends as LF, the way the user meant it (bash would keep a CR in every value).
_READER = r"""
__cfb_file=$1 __cfb_crlf=$2
shift 2
__cfb_lf() {
  local l
  while IFS= read -r l || [[ -n $l ]]; do builtin printf '%s\n' "${l%$'\r'}"; done <"$__cfb_file"
}
if [[ $__cfb_crlf == 1 ]]; then "$BASH" -n <(__cfb_lf) || exit 97
else "$BASH" -n "$__cfb_file" || exit 97; fi
builtin unset "$@"
__cfb_before=$'\n'"$(builtin compgen -v)"$'\n'
exec 3>&1 1>&2
if [[ $__cfb_crlf == 1 ]]; then builtin source <(__cfb_lf) 3>&-
else builtin source "$__cfb_file" 3>&-; fi
builtin set +e +u +o pipefail +o posix
IFS=$' \t\n'
for __cfb_v in "$@"; do
  __cfb_d=$(builtin declare -p "$__cfb_v" 2>/dev/null) || continue
  [[ $__cfb_d == *=* ]] || continue   # declared without a value: unset, as bash sees it
  builtin declare -n __cfb_r="$__cfb_v"
  case "$__cfb_d" in
    "declare -"[aA]*)
      builtin printf '%s\0a\0%s\0' "$__cfb_v" "${#__cfb_r[@]}" >&3
      ((${#__cfb_r[@]})) && builtin printf '%s\0' "${__cfb_r[@]}" >&3 ;;
    *) builtin printf '%s\0s\0%s\0' "$__cfb_v" "$__cfb_r" >&3 ;;
  esac
  builtin unset -n __cfb_r
done
for __cfb_v in $(builtin compgen -v); do
  [[ $__cfb_before == *$'\n'"$__cfb_v"$'\n'* || $__cfb_v == __cfb_* ]] && continue
  __cfb_f=$(builtin declare -p "$__cfb_v" 2>/dev/null); __cfb_f=${__cfb_f#declare -}
  [[ ${__cfb_f%% *} == *x* ]] && __cfb_f=x || __cfb_f=
  [[ " $__cfb_carry " == *" $__cfb_v "* ]] && continue
  builtin printf '%s\0o\0%s\0' "$__cfb_v" "$__cfb_f" >&3
done
for __cfb_v in $__cfb_carry; do
  __cfb_f=$(builtin declare -p "$__cfb_v" 2>/dev/null) || continue
  __cfb_f=${__cfb_f#declare -}
  [[ ${__cfb_f%% *} == *x* && $__cfb_f == *=* ]] || continue
  builtin printf '%s\0e\0%s\0' "$__cfb_v" "${!__cfb_v}" >&3
done
"""


@dataclasses.dataclass
class LegacyFile:
    """What bash read from a legacy file: the known variables, the other names it set, and
    what ``config migrate`` should tell about the file itself."""

    path: Path
    variables: dict[str, str | list[str]]
    others: list[str]
    crlf: bool = False
    computed_lines: list[int] = dataclasses.field(default_factory=list)
    said: list[str] = dataclasses.field(default_factory=list)  # bash's stderr, on every run
    bom: bool = False
    exported: list[str] = dataclasses.field(default_factory=list)  # of ``others``
    # the exported proxy and CA variables (execute.NETWORK_ENV): the config's [environment]
    carried: dict[str, str] = dataclasses.field(default_factory=dict)

    def warnings(self) -> list[str]:
        """What every run of this file says: what bash printed while it read it (a line it
        could not run is skipped and the file goes on, as in dt-cf-backup.sh, whose cron mail
        showed it)."""
        bom = " (it starts with a UTF-8 byte order mark: bash reads it into line 1)"
        bom = bom if self.bom else ""
        said = [f"{self.path}: bash said while reading it{bom}: {line}" for line in self.said[-5:]]
        ending = [
            name
            for name, value in self.variables.items()
            if any(item.endswith("\r") for item in _items(value))
        ]
        if self.exported:  # dt-cf-backup.sh's duplicity saw them
            said.append(
                f"{self.path} exports {', '.join(self.exported)}, which duplicity no longer "
                "gets from "
                "it (cfbackup starts duplicity with its own minimal environment; the proxy "
                "and CA variables alone are carried): set what is needed in the environment "
                "cfbackup runs in (the cron line or the systemd unit)"
            )
        if ending:
            said.append(
                f"{self.path}: {', '.join(ending)} end(s) with a carriage return (the file mixes "
                "Windows and Unix line ends, and bash keeps the CR in the value): save the file "
                "with Unix line ends"
            )
        return said

    def notes(self) -> list[str]:
        """Remarks for ``config migrate`` only (the file runs as it is on every run)."""
        notes = default_notes(self.variables)
        if self.others:
            notes.append(
                "set but not a setting of the old scripts, so not carried over: "
                + ", ".join(self.others)
                + " (fine when they only build other values)"
            )
        if self.crlf:
            notes.append(
                f"{self.path} has Windows line ends (CRLF); they were read as Unix line ends"
            )
        if self.computed_lines:
            lines = ", ".join(str(n) for n in self.computed_lines[:10])
            notes.append(
                f"line(s) {lines} compute values when the file is read ($(...), backquotes, "
                "or $HOSTNAME, $USER-style variables of the machine and user reading it); the "
                "migrated config holds the values they gave now"
            )
        return notes


_TOML_TABLE = re.compile(r"""^\[\[?\s*[\w"'.\-]+\s*\]\]?\s*(#.*)?$""")
_ASSIGNMENT = re.compile(r"^(export\s+)?[A-Z_][A-Z0-9_]*=")


def looks_legacy(text: str) -> bool:
    """A shell file setting NAME=value variables (what the old scripts sourced), not TOML: TOML
    configs have [tables]; a legacy file may start with any shell statement (set -e, a test)."""
    assigns = False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if _TOML_TABLE.match(stripped):
            return False
        assigns = assigns or bool(_ASSIGNMENT.match(stripped))
    return assigns


# $(...), backquotes, and the variables of the machine and user reading the file: a migrated
# config holds the values they gave at migration
_COMPUTED = re.compile(
    r"\$\(|`|\$\{?(HOSTNAME|USER|LOGNAME|HOME|UID|EUID|PWD|RANDOM|PPID|SECONDS)\b"
)


def read_file(path: Path, extra: tuple[str, ...] = ()) -> LegacyFile:
    """Source ``path`` with bash in a clean environment; the variables it set (the values of
    ``extra`` too, names the old scripts read that are no setting: ``RESTORE``)."""
    from cfbackup import execute

    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}.") from None
    _refuse_script(path, data.decode("utf-8", errors="replace"))
    # a CRLF file: every line ends so (a CR LF inside a quoted value of a LF file is data)
    crlf = data.count(b"\n") == data.count(b"\r\n") > 0
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(Path.home()),
        # set by cron and login for the old script: ROOT="/home/$USER" must not become /home/
        "USER": _login_name(),
        "LOGNAME": _login_name(),
        "__cfb_carry": " ".join(execute.NETWORK_ENV),
    }
    argv = ["bash", "--noprofile", "--norc", "-c", _READER, "cfbackup-legacy", str(path)]
    result = execute.capture(
        [*argv, "1" if crlf else "0", *VARIABLES, *extra],
        env=env,
        timeout=30,
        input_text="",  # a `read` in the file gets end-of-file, never the user's terminal
        exact=True,  # a CR in a value stays
    )
    if result.returncode != 0:
        detail = result.tail[-1] if result.tail else None
        detail = next((line for line in result.tail if "syntax error" in line), detail)
        lines = data.count(b"\n") + (not data.endswith(b"\n"))  # bash's count, \r or not
        detail = _shown(detail, lines) if detail else f"bash exited with {result.returncode}"
        raise ConfigError(
            f"{path}: bash could not read this file: {detail}: fix the file (bash -n "
            f"{shlex.quote(str(path))} shows where)."
        )
    try:
        values, others, exported, carried = _parse_nul_stream(result.stdout)
        # masked from here on, in bash's lines below and in everything printed or logged:
        # the warnings print when the config loads, before any secret is resolved
        for name in SECRET_VARIABLES:
            for item in _items(values.get(name, "")):
                redact.register(item)
        _refuse_undecodable(path, values)
    except ValueError:
        raise ConfigError(
            f"{path}: bash ran this file but its variables could not be read back (does it "
            "redefine builtin, or close file descriptor 3?): fix the file."
        ) from None
    text = data.decode("utf-8", errors="replace")
    computed = [
        number
        for number, line in enumerate(text.splitlines(), 1)
        if not line.lstrip().startswith("#") and _COMPUTED.search(line.split(" #", 1)[0])
    ]
    others = [name for name in others if name not in VARIABLES and name not in extra]
    exported = [name for name in exported if name in others]
    # what the run's own environment holds anyway is not the file's to carry (nor, with
    # ``config migrate``, to write into the native config)
    inherited = execute.child_environment()
    carried = {k: v for k, v in carried.items() if inherited.get(k) != v}
    said = [_shown(redact.redact(line)) for line in result.tail if line.strip()]
    bom = data.startswith(b"\xef\xbb\xbf")
    return LegacyFile(path, values, others, crlf, computed, said, bom, exported, carried)


# The old scripts themselves, never their configs: dt-cf-backup.sh's README says to fill in
# its top, so users hand it over as it is. Sourcing it would run its body (mkdir LOGDIR, write
# the log, unset the credentials at its end): it is recognized before bash sees it. No config
# of the three scripts sets DUPLICITY or defines their functions.
_SCRIPT_MARKER = re.compile(r"^#+\s*Script Happens Below This Line", re.IGNORECASE | re.MULTILINE)
_SCRIPT_BODY = re.compile(
    r"^\s*(export\s+)?DUPLICITY=|"
    r"^\s*(function\s+)?(duplicity_\w+|include_exclude|check_variables|backup_this_script|"
    r"get_file_sizes)\s*\(\s*\)",
    re.MULTILINE,
)


def _refuse_script(path: Path, text: str) -> None:
    if not _SCRIPT_BODY.search(text):
        return
    if _SCRIPT_MARKER.search(text):
        script = "dt-s3-backup.sh" if "DT-S3-BACKUP" in text else "dt-cf-backup.sh"
        raise ConfigError(
            f"{path} is {script} itself, not its config: copy the settings above 'Script "
            "Happens Below This Line' into ~/.dt-cf-backup.conf (or pass that file with -c)."
        )
    raise ConfigError(
        f"{path} is a backup script (it runs duplicity), not its config: pass the config "
        "file it reads with -c (for duplicity-backup.sh, its duplicity-backup.conf)."
    )


def _login_name() -> str:
    """The name of the user reading the file, from the password database (as cron and login
    set USER and LOGNAME), never from cfbackup's own environment."""
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without an entry (a container): what `id -un` would fail on
        return ""


def _refuse_undecodable(path: Path, values: dict[str, str | list[str]]) -> None:
    """A value with bytes that are not UTF-8 (a Latin-1 directory name in INCLIST): cfbackup
    cannot carry it as it is, and a character put in its place would leave that directory
    out of every backup without a word. Named, never shown (it may be a passphrase)."""
    for name, value in values.items():
        if any(_SURROGATE.search(item) for item in _items(value)):
            raise ConfigError(
                f"{path}: {name} holds bytes that are not UTF-8 text: write it in UTF-8 (a "
                "directory's name too: rename it, or include its parent)."
            )


def _items(value: str | list[str]) -> list[str]:
    """A variable's values: an array's items, or the scalar alone."""
    return value if isinstance(value, list) else [value]


_SURROGATE = re.compile("[\udc80-\udcff]")
_LINE = re.compile(r"^(?:.*?: )?(line \d+): (.*)$")
_NAME = re.compile(r"^\W*([A-Za-z_][A-Za-z0-9_]*)(=?)")
_UNCLOSED = re.compile(r"unexpected EOF while looking for matching `(.)'")
_QUOTED = re.compile(r"\s*(\(error token is|[`'\"]).*$")  # bash quotes the words it cites
# builtins bash names before its complaint (``export: `=': not a valid identifier``)
_BUILTINS = frozenset(
    "alias cd declare eval exec export let local printf read readonly set shift source "
    "test typeset unset . [".split()
)


# what bash looked for at the end of the file: the quote, or what a ) ] } closes
_OPENED = {
    '"': 'a " quote',
    "'": "a ' quote",
    "`": "a ` quote",
    ")": "a ( or $(( is not closed by )",
    "}": "a ${ is not closed by }",
    "]": "a $[ is not closed by ]",
}


def _shown(line: str, lines: int | None = None) -> str:
    """bash's line reduced to where and what went wrong, "line N: <kind of error>", without
    the words it cites: any may be a secret (``PASSPHRASE= hunter2`` runs ``hunter2``; a byte
    order mark before ``PASSPHRASE=...`` on line 1 runs the whole assignment; ``export
    PASSPHRASE = "x"`` cites ``x``; an ``echo`` prints what it likes). A builtin's name and one
    of the old scripts' variables are kept."""
    found = _LINE.match(line)
    if not found:
        return "a line printed by the file or by bash (not shown: it may hold a secret)"
    where, rest = found.groups()
    if rest.startswith("`"):  # after a syntax error, the line in error, quoted
        return f"{where}: the line in error (not shown: it may hold a secret)"
    unclosed = _UNCLOSED.match(rest)
    if unclosed:  # what is unclosed is no secret, and the sentence is nothing without it
        opened = _OPENED.get(unclosed.group(1), f"a {unclosed.group(1)} is not closed")
        if opened.endswith("quote"):  # bash names the line the quote opens on
            return f"{where}: {opened} is not closed (bash read on to the end)"
        if lines is not None and int(where.split()[1]) > lines and opened.endswith(")"):
            # a $( or <(: bash names the line after the last, not where it opens
            return "a $( or <( is not closed by ) (bash read on to the end of the file)"
        return f"{where}: {opened} (bash read on to the end)"
    if rest.startswith(("syntax error", "unexpected EOF")):
        return f"{where}: {_QUOTED.sub('', rest)}"
    subject, _, kind = rest.rpartition(": ")
    kind = _QUOTED.sub("", kind) or "an error"
    subject = subject.split(": ", 1)[0]
    name = _NAME.match(subject)
    if subject in _BUILTINS:
        return f"{where}: {subject}: {kind}"
    if name and name.group(1) in VARIABLES:
        return f"{where}: {name.group(1)}{'=...' if name.group(2) else ''}: {kind}"
    if kind == "command not found":
        return f"{where}: a word: {kind}"  # not one of the old scripts' variables: a value?
    return f"{where}: {kind}"


def read_variables(path: Path) -> dict[str, str | list[str]]:
    """The known variables ``path`` sets, as bash sees them (scalars, and lists for arrays)."""
    return read_file(path).variables


def _parse_nul_stream(
    data: str,
) -> tuple[dict[str, str | list[str]], list[str], list[str], dict[str, str]]:
    """(known variables' values, other names the file set, those of them it exported, the
    exported proxy and CA variables' values)."""
    fields = data.split("\0")
    values: dict[str, str | list[str]] = {}
    others: list[str] = []
    exported: list[str] = []
    carried: dict[str, str] = {}
    i = 0
    while i + 2 < len(fields):
        name, kind, third = fields[i], fields[i + 1], fields[i + 2]
        if kind == "a":
            if not third.isdigit():  # only a file redefining the reader's builtins gets here
                raise ValueError(f"bad array length {third[:20]!r} for {name[:40]!r}")
            count = int(third)
            if i + 3 + count > len(fields) - 1:
                raise ValueError(f"array {name[:40]!r} is cut short")
            values[name] = fields[i + 3 : i + 3 + count]
            i += 3 + count
        elif kind == "s":
            values[name] = third
            i += 3
        elif kind == "e":  # an exported proxy or CA variable, third its value
            carried[name] = third
            i += 3
        elif kind == "o":  # third: "x" when the file exports it
            others.append(name)
            if third == "x":
                exported.append(name)
            i += 3
        else:
            raise ValueError(f"unknown record kind {kind[:10]!r}")
    if i != len(fields) - 1 or fields[-1] != "":
        raise ValueError("the stream does not end after its last record")
    return values, others, exported, carried


def load_legacy(path: Path) -> tuple[dict[str, Any], list[str]]:
    legacy = read_file(path)
    if "ROOT" not in legacy.variables and "DEST" not in legacy.variables:
        raise ConfigError(f"{path}: neither ROOT nor DEST is set; is this a dt-cf-backup config?")
    dest = legacy.variables.get("DEST") or ""
    refused = unsupported_target(" ".join(dest) if isinstance(dest, list) else dest)
    if refused:
        raise ConfigError(f"{path}: DEST={refused}.")
    raw, warnings = normalize(legacy.variables)
    if legacy.carried:
        raw["environment"] = dict(legacy.carried)
    return raw, [*legacy.warnings(), *warnings]


__all__ = ["PROFILE_NAME", "LegacyFile", "load_legacy", "looks_legacy", "normalize", "read_file"]
