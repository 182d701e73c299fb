"""Sizes and durations as people type them (``500M``, ``10GiB``, ``1h30m``), parsed in one place
so every command and plugin reads them alike."""

from __future__ import annotations

import re
import unicodedata

_SIZE = re.compile(r"(\d+)\s*(?:([KMGT])(i)?)?B?", re.I)
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "D": 86400, "W": 7 * 86400}
_DURATION = re.compile(r"^(\d+[smhDW])+$")
_DURATION_PART = re.compile(r"(\d+)([smhDW])")


def parse_size(text: str) -> int:
    """Bytes in ``N``, ``N`` with K/M/G/T (powers of 1000) or KiB/MiB/GiB/TiB (powers of 1024),
    an optional trailing B; ValueError naming the text otherwise."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 500000000, 500M, 10GiB)")
    number, unit, binary = match.groups()
    power = "KMGT".index(unit.upper()) + 1 if unit else 0
    return int(number) * (1024 if binary else 1000) ** power


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``90s``, ``15m``, ``6h``, ``1D``, ``1W`` or ``1h30m``."""
    if not _DURATION.match(text):
        raise ValueError(
            f"{text!r} is not a duration in s, m, h, D or W (e.g. 30m, 6h, 1D; months and "
            "years vary in length)"
        )
    return sum(int(n) * DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(text))


def human_duration(seconds: int | None) -> str:
    """``5400`` -> ``1h30m``: durations written back the way the config writes them."""
    if not seconds:
        return "0s"
    out = ""
    for unit in ("W", "D", "h", "m", "s"):
        count, seconds = divmod(seconds, DURATION_UNITS[unit])
        if count:
            out += f"{count}{unit}"
    return out


def printable(text: str) -> str:
    """``text`` with the bytes of a file name that is not UTF-8 (os.fsdecode's surrogates)
    spelled ``\\xe9``, and every character a terminal would act on rather than show spelled
    out: an ASCII control as ``\\x1b`` (a newline and a tab stay: messages have lines), a C1
    control, a format or bidi control (U+202E turns the rest of a line around) or a line or
    paragraph separator as ``\\u202e``. For messages, the terminal and the run history, which
    are UTF-8; letters such as ``é`` or ``日本`` stay as they are, and so do the joiners of
    scripts and emoji (``_JOINERS``). Idempotent: what it returns holds nothing it spells out."""
    return _spelled(text, "\n\t")


def printable_name(name: str) -> str:
    """One name (a file, an object) inside a message or a listing line: ``printable``, and a
    newline or a tab spelled out too (``\\x0a``, ``\\x09``): a name's newline would start a
    line of its own, one that can pass for another file's or another message's."""
    return _spelled(name, "")


def _spelled(text: str, kept: str) -> str:
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file name decodes to: spelled as its bytes
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "backslashreplace")
    if _plain(text):
        return text
    return "".join(_visible(c, kept, odd) for c, odd in zip(text, _controls(text), strict=True))


def _visible(c: str, kept: str, odd: bool) -> str:
    if c in kept or not odd:
        return c
    if c < "\x80":
        return f"\\x{ord(c):02x}"
    return f"\\u{ord(c):04x}" if c <= "\uffff" else f"\\U{ord(c):08x}"


_CONTROLS = frozenset(("Cc", "Cf", "Zl", "Zp"))
# Unicode's default ignorable code points that are no format characters, and the unassigned
# ones: marks and fillers that show as nothing (variation selectors, the combining grapheme
# joiner, Hangul fillers, tags): ``report.pdf`` followed by them looks like ``report.pdf``
_IGNORABLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2065\u3164\ufe00-\ufe0f\uffa0"
    "\ufff0-\ufff8\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
# What joins ordinary text, kept where it does (RFC 5892's idea for joiners in domain names):
# a zero width (non-)joiner after a virama (Indic conjuncts, Malayalam chillus), a joiner
# before one (Bengali ra-phala, Sinhala touching letters), a non-joiner between two Arabic-
# script letters (Persian), a joiner between two pictographs (woman U+200D laptop, a rainbow
# flag), an emoji variation selector after a pictograph or in a keycap (1 U+FE0F U+20E3), and
# the tags of the three subdivision flags (England, Scotland, Wales). Anywhere else they join
# nothing and show as nothing: spelled out. Limits (docs/runbook-restore.md): a joiner between
# two pictographs that form no emoji, an Arabic right-joining letter before a non-joiner, and
# look-alikes made of visible characters (composed and decomposed accents) stay as they are.
_JOINERS = "\u200c\u200d"
_SELECTORS = "\ufe0e\ufe0f"
_FLAG = "\U0001f3f4"
_FLAG_TAGS = re.compile(
    "(?:"
    + "|".join("".join(chr(0xE0000 + ord(c)) for c in flag) for flag in ("gbeng", "gbsct", "gbwls"))
    + ")\U000e007f"
)
_SKIN_TONES = ("\U0001f3fb", "\U0001f3ff")
# emoji whose base is no symbol of U+2000 and above (a copyright sign, double exclamation,
# information source, arrows, squares, a wavy dash): their variation selector is kept too
_EMOJI_BASES = frozenset(
    "\u00a9\u00ae\u203c\u2049\u2139\u2194\u2195\u2196\u2197\u2198\u2199\u25fb\u25fc\u25fd"
    "\u25fe\u2934\u2935\u3030\u303d"
)


def _plain(text: str) -> bool:
    """Nothing in ``text`` to spell out (the common case, checked in C)."""
    return text.isprintable() and _IGNORABLE.search(text) is None


def _control(c: str) -> bool:
    """A control (C0, DEL, C1), a format or bidi control (U+200E, U+202A-U+202E, U+2066-U+2069,
    U+061C, U+200B, ...), a line or paragraph separator (U+2028, U+2029), or a character that
    shows as nothing (``_IGNORABLE``): what does something to a terminal or a line instead of
    showing, or makes one name look like another."""
    return unicodedata.category(c) in _CONTROLS or _IGNORABLE.match(c) is not None


def _pictograph(c: str) -> bool:
    """An emoji's base: a pictograph (U+2600-U+27BF, U+1F000 and above, but not a skin tone),
    or one of ``_EMOJI_BASES``."""
    if c in _EMOJI_BASES:
        return True
    if _SKIN_TONES[0] <= c <= _SKIN_TONES[1]:
        return False
    return ("\u2600" <= c <= "\u27bf" or c >= "\U0001f000") and unicodedata.category(c) == "So"


def _arabic_letter(c: str) -> bool:
    return unicodedata.category(c).startswith("L") and unicodedata.bidirectional(c) == "AL"


def _joins(text: str, i: int, odd: list[bool]) -> bool:
    """Whether the joiner at ``i`` joins what stands around it (``_JOINERS``); ``odd``: what is
    spelled out already (selectors and tags are decided first), never stepped over."""
    if i == 0:
        return False
    if unicodedata.combining(text[i - 1]) == 9:  # after a virama (a chillu may end a word)
        if text[i] == "\u200d":
            return True
        return i < len(text) - 1 and unicodedata.category(text[i + 1]).startswith("L")
    if i == len(text) - 1:
        return False
    after = text[i + 1]
    if text[i] == "\u200d" and unicodedata.combining(after) == 9:  # before a virama
        return unicodedata.category(text[i - 1]).startswith("L")
    before = i - 1
    while before > 0 and unicodedata.category(text[before]) == "Mn" and not odd[before]:
        before -= 1
    if text[i] == "\u200c":
        return _arabic_letter(text[before]) and _arabic_letter(after)
    before = i - 1
    while (
        before > 0
        and not odd[before]
        and (text[before] in _SELECTORS or _SKIN_TONES[0] <= text[before] <= _SKIN_TONES[1])
    ):
        before -= 1
    return not odd[before] and _pictograph(text[before]) and _pictograph(after)


def _controls(text: str) -> list[bool]:
    """For each character of ``text``, whether it is spelled out: a ``_control``, unless it
    joins ordinary text where it stands (``_JOINERS`` and the others above)."""
    odd = [_control(c) for c in text]
    for i, c in enumerate(text):
        if c in _SELECTORS:
            keycap = text[i - 1 : i] in tuple("0123456789#*") and text[i + 1 : i + 2] == "\u20e3"
            odd[i] = not (i > 0 and (_pictograph(text[i - 1]) or keycap))
        elif c == _FLAG and (tags := _FLAG_TAGS.match(text, i + 1)):
            for j in range(i + 1, tags.end()):
                odd[j] = False
    for i, c in enumerate(text):
        if c in _JOINERS:
            odd[i] = not _joins(text, i, odd)
    return odd


# spaces other than U+0020 (a no-break space, an em space, an ideographic space): in a listing
# they pass for the plain one, which a paste would not give back
_SPACE_CHARS = "\u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
_SPACES = re.compile(f"[{_SPACE_CHARS}]")

_SHELL_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def pasteable(name: str) -> str:
    """A file name as ``list`` shows it, for the user to paste back (``restore --path``):
    ``name`` itself, unless it is not UTF-8 (os.fsdecode's surrogates), holds a control, format
    or bidi character or a line separator (``_control``: a newline would split the listing's
    line, a U+202E would make it lie about the name), a space other than U+0020, starts or ends
    with a space, or starts with ``$'``; then bash's
    ``$'...'`` quoting of its bytes, ``$'weird/caf\\xe9.txt'`` or ``$'a\\xe2\\x80\\xaeb'``, which
    bash (any version, any locale) and zsh turn back into exactly those bytes. Not ``\\u202e``:
    bash writes that back as the literal text ``\\u202E`` when the locale is C or POSIX."""
    edges = name != name.strip(" ")  # a space a paste would lose
    if _plain(name) and not name.startswith("$'") and not edges and not _SPACES.search(name):
        return name
    odd = [o or c in _SPACE_CHARS for c, o in zip(name, _controls(name), strict=True)]
    if not (
        edges or name.startswith("$'") or any(_byte(c) or o for c, o in zip(name, odd, strict=True))
    ):
        return name
    return "$'" + "".join(_shell_char(c, o) for c, o in zip(name, odd, strict=True)) + "'"


def _byte(c: str) -> bool:
    return "\udc80" <= c <= "\udcff"  # a byte os.fsdecode could not decode


def _shell_char(c: str, odd: bool) -> str:
    if _byte(c):
        return f"\\x{ord(c) - 0xDC00:02x}"
    if c in _SHELL_ESCAPES:
        return _SHELL_ESCAPES[c]
    if odd:  # its UTF-8 bytes, which $'...' gives back whatever the locale
        return "".join(f"\\x{b:02x}" for b in c.encode())
    return c
