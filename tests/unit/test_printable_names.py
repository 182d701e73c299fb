"""How a file name is shown (``cfbackup.units``): ``pasteable`` as ``list`` prints it, which bash
turns back into its bytes; ``printable`` and ``printable_name`` in messages, with what a
terminal would act on (a control, a bidi override, a joiner that joins nothing) spelled out and
the letters and joiners of ordinary text left as they are."""

from __future__ import annotations

import os
import subprocess
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cfbackup.units import pasteable, printable, printable_name

# characters a terminal acts on instead of showing: the listing line must not hold them raw
TERMINAL_CONTROLS = ("Cc", "Cf", "Zl", "Zp")
TRICKY = (  # valid UTF-8 names with a C1 control, a separator or a format or bidi control
    "invoice\u202etxt.exe",  # RLO: shown as "invoiceexe.txt"
    "a\u2028b",  # LINE SEPARATOR
    "a\u2029b",  # PARAGRAPH SEPARATOR
    "nel\u0085x",  # C1 NEXT LINE
    "csi\u009b31m",  # C1 CSI: starts a terminal escape sequence
    "\u200eltr\u200frtl\u061calm",
    "\u202aembed\u202b\u202c\u202d",
    "\u2066iso\u2067\u2068\u2069",
    "zero\u200bwidth",
    "lang\U000e0001",  # a format character outside the BMP (LANGUAGE TAG)
    "soft\u00adhyphen",
)


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=1, max_size=24).filter(lambda b: b"\0" not in b))
@example("invoice\u202etxt.exe".encode())
@example("a\u2028b".encode())
@example("nel\u0085x".encode())
def test_a_name_as_list_prints_it_is_its_bytes_again_in_bash(name):
    """What the user pastes into ``restore --path`` is what bash hands cfbackup: the bytes."""
    shown = pasteable(os.fsdecode(name))
    if shown == os.fsdecode(name):  # printed as it is: UTF-8, nothing a terminal acts on
        text = name.decode("utf-8")
        assert not text.startswith("$'")
        assert all(unicodedata.category(c) not in TERMINAL_CONTROLS for c in text), shown
        return
    pasted = subprocess.run(
        ["bash", "-c", f"printf %s {shown}"], capture_output=True, check=True
    ).stdout
    assert pasted == name


@pytest.mark.parametrize("locale", ["C", "POSIX", "C.UTF-8"])
@pytest.mark.parametrize("name", TRICKY)
def test_a_name_with_a_bidi_or_format_control_is_quoted_and_bash_gives_it_back(name, locale):
    """A U+202E shown raw makes the listing lie about the name; quoted, and pasted into bash
    under any locale (a server's cron or ssh session is often C), it is the name again."""
    shown = pasteable(name)
    assert shown.startswith("$'") and shown.isascii() and shown.isprintable(), shown
    pasted = subprocess.run(
        ["bash", "-c", f"printf %s {shown}"],
        capture_output=True,
        check=True,
        env={"PATH": os.environ["PATH"], "LC_ALL": locale},
    ).stdout
    assert pasted == name.encode()


@pytest.mark.parametrize("name", ["café.txt", "日本/報告.pdf", "naïve résumé", "a b's"])
def test_letters_that_are_not_ascii_are_listed_and_named_as_they_are(name):
    assert pasteable(name) == name
    assert printable(name) == name


# ordinary text whose joiners are format characters (Cf): a Persian word with a zero width
# non-joiner, an emoji ZWJ sequence (woman, ZWJ, laptop), a flag of tag characters (Scotland),
# a Devanagari conjunct with a joiner, and an emoji with its variation selector (U+FE0F, Mn)
JOINED = (
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.txt",
    "\U0001f469\u200d\U0001f4bb.png",
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f flag",
    "\u0915\u094d\u200d\u0937",
    "\u2764\ufe0f.jpg",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # a family
    "\U0001f3f3\ufe0f\u200d\U0001f308",  # the rainbow flag: white flag, U+FE0F, ZWJ
    "\U0001f469\U0001f3fd\u200d\U0001f4bb",  # a skin tone before the joiner
    "\U0001f3f4\u200d\u2620\ufe0f",  # the pirate flag
    "1\ufe0f\u20e3",  # a keycap
    "\u0d05\u0d35\u0d28\u0d4d\u200d",  # Malayalam, a chillu ending the name
    "\u09b0\u200d\u09cd\u09af",  # Bengali ra-phala: the joiner before the virama
    "#\ufe0f\u20e3",  # a keycap
    "\u00a9\ufe0f \u203c\ufe0f \u2194\ufe0f",  # emoji whose base is no symbol above U+2000
    "\U0001f441\ufe0f\u200d\U0001f5e8\ufe0f",  # eye in speech bubble
)


@pytest.mark.parametrize("name", JOINED)
def test_the_joiners_of_words_and_emoji_are_shown_as_they_are(name):
    """The docs promise letters as they are: ZWNJ and ZWJ (U+200C, U+200D) and the tag
    characters of emoji flags (U+E0020-U+E007F) are format characters, but text, not
    something a terminal acts on; bidi controls around them are still spelled out."""
    assert pasteable(name) == name
    assert printable(name) == printable_name(name) == name
    assert pasteable(f"{name}\u202e") == f"$'{name}\\xe2\\x80\\xae'"
    assert printable(f"\u2067{name}") == f"\\u2067{name}"


# the same characters where they join nothing and show as nothing: a name that looks like
# another's (report.pdf with tags spelling "evil" after it, a joiner at an end, a tag run that
# is no flag) is quoted and spelled out
HIDDEN = (
    "report.pdf\U000e0065\U000e0076\U000e0069\U000e006c",
    "\u200dreport.pdf",
    "report.pdf\u200c",
    "re\u200d\u200dport.pdf",
    "a \u200d b",
    "\U000e0067\U000e0062\U000e007f.txt",
    "\U0001f3f4\U000e0067\U000e0062.txt",  # a flag without its cancel tag
    "re\u200dport.pdf",  # a joiner between two Latin letters joins nothing
    "re\u200cport.pdf",
    "report.pdf\u200d\ufe0f",  # a variation selector after a letter shows as nothing
    "report.pdf\ufe0f",
    "report.pdf\U000e0100\U000e0101",
    "report.pdf\u034f",  # the combining grapheme joiner
    "report.pdf\u3164",  # a Hangul filler
    "report.pdf\U000e0080",  # an unassigned tag
    "report.pdf\U0001f3f4" + "".join(chr(0xE0000 + ord(c)) for c in "evilpayload") + "\U000e007f",
    "\U0001f3f4" + "".join(chr(0xE0000 + ord(c)) for c in "zz1") + "\U000e007f.txt",  # no flag
    "report1\ufe0f.pdf",  # a selector after a digit that is no keycap
    "\u05e9\u05dc\u200c\u05d5\u05dd.txt",  # Hebrew letters do not join
    "\u2122\u200d\u2122",  # a joiner between two symbols that are no pictographs
    "\u0915\u094d\u200c.txt",  # a non-joiner after a virama with no letter after it
    "re\u2065port.pdf",  # an unassigned default ignorable
    "report.pdf ",  # spaces a paste would lose, or that pass for another
    " report.pdf",
    "report\u00a0.pdf",
)


@pytest.mark.parametrize("name", HIDDEN)
def test_joiners_that_join_nothing_are_spelled_out(name):
    assert pasteable(name).startswith("$'"), pasteable(name)
    if name.strip(" ") == name and "\u00a0" not in name:  # spaces: only list quotes them
        assert printable(name) != name and printable(name).isprintable()


def test_spelling_out_is_idempotent_wherever_joiners_stand():
    """printable_name's output goes through printable again on its way to the terminal: a
    second pass changes nothing, whatever joiners, selectors, marks and tags stand where."""
    import random

    chars = [*"ab .#1", "\u200c", "\u200d", "\ufe0f", "\ufe0e", "\u094d", "\u0915", "\u0627",
             "\u0628", "\U0001f600", "\U0001f3fb", "\U000e0067", "\U000e007f", "\U0001f3f4",
             "\u034f", "\u20e3", "\u202e", "\n"]  # fmt: skip
    rng = random.Random(5)
    for _ in range(20_000):
        text = "".join(rng.choice(chars) for _ in range(rng.randint(0, 8)))
        for spell in (printable, printable_name):
            assert spell(spell(text)) == spell(text), ascii(text)
    assert printable_name("a\ud800b") == "a\\xed\\xa0\\x80b"  # no crash on a lone surrogate


def test_a_name_in_a_message_spells_out_its_newline_and_tab():
    """printable_name (one name inside a message or a listing line): printable, and a
    newline, a tab or a carriage return spelled out, so the name cannot start a line of its
    own that passes for another file's; idempotent, as printable is."""
    cases = {
        "evil\nThu Jan  1 00:00:00 2026 etc/shadow": "evil\\x0aThu Jan  1 00:00:00 2026 etc/shadow",
        "a\tb\rc": "a\\x09b\\x0dc",
        "inv\u202etxt\x1b": "inv\\u202etxt\\x1b",
        os.fsdecode(b"caf\xe9\n"): "caf\\xe9\\x0a",
        "caf\u00e9 \u65e5\u672c": "caf\u00e9 \u65e5\u672c",
    }
    for name, shown in cases.items():
        assert printable_name(name) == shown, name
        assert printable_name(shown) == printable(shown) == shown


def test_messages_spell_out_what_a_terminal_would_act_on():
    """printable (messages, the run history): a bidi override, a line separator, a C1 or an
    ASCII control in a name is written as its escape, so the terminal shows it; a message's
    own lines and tabs stay."""
    cases = {
        "web1: invoice\u202etxt.exe restored to /tmp/x": (
            "web1: invoice\\u202etxt.exe restored to /tmp/x"
        ),
        "a\u2028b\u2029c": "a\\u2028b\\u2029c",
        "nel\u0085 csi\u009b": "nel\\u0085 csi\\u009b",
        "\u200e\u200f\u061c\u2066\u2069\u202a": "\\u200e\\u200f\\u061c\\u2066\\u2069\\u202a",
        "esc\x1b[2J cr\r del\x7f": "esc\\x1b[2J cr\\x0d del\\x7f",
        "lang\U000e0001": "lang\\U000e0001",
        "line one\n\tline two": "line one\n\tline two",
        os.fsdecode(b"caf\xe9\xe2\x80\xae"): "caf\\xe9\\u202e",  # not UTF-8, then an RLO
    }
    for text, shown in cases.items():
        assert printable(text) == shown, text
        assert all(
            unicodedata.category(c) not in TERMINAL_CONTROLS or c in "\n\t" for c in printable(text)
        )
