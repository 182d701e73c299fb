"""Server names as Nova's name filter sees them: a regular expression search (and, on Nova's
MySQL path, with ``|`` escaped by Nova itself). park and unpark look a name up escaped and
anchored (``servers_named``) and count only the server of exactly that name."""

from __future__ import annotations

import pytest
from recovery_support import SDK_DEPRECATIONS, alive, park_record

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.recovery, *SDK_DEPRECATIONS]


@pytest.mark.parametrize("name", ["web (old)", "db+1", "[prod]web", "*web", "web (old"])
def test_park_finds_a_name_with_regex_metacharacters(cli, config, emulator, tmp_path, name):
    """Nova's name filter is a regular expression search: park looks the name up escaped and
    anchored (openstacksdk's find_server passes it raw: "web (old)" was "no such server" and
    "*web" a 400), and only the server of exactly that name counts."""
    server = emulator.add_server(name)
    other = emulator.add_server(name.upper())  # MySQL's collation ignores case: not a match
    result = cli("-c", config(), "server", "park", name)
    assert result.returncode == 0, result
    assert emulator.server_named(name) is None and emulator.server_named(other["name"])
    assert park_record(tmp_path, name)["server"] == {"name": name, "id": server["id"]}


@pytest.mark.parametrize("name", ["web|db", "web|"])
def test_a_bar_in_a_name_stays_a_bar_under_novas_mysql_escaping(name):
    """Nova's MySQL path escapes every ``|`` of the name filter itself: ``re.escape``'s ``\\|``
    became a backslash then an alternation (``web|`` matched every server, and park paged
    through the project). The bar goes as ``[|]``."""
    from types import SimpleNamespace

    from cfbackup_server_image import park
    from support.emulator.compute import _name_matches

    sent: dict = {}

    class Compute:
        def servers(self, **query):
            sent.update(query)
            return []

    park.servers_named(SimpleNamespace(compute=Compute()), name)
    names = [name, name.upper(), "db", "web\\", "anything", "web"]
    assert [n for n in names if _name_matches(sent, n)] == [name, name.upper()]


@pytest.mark.parametrize("name", ["db+1", "web (old)", "[prod]web", "*web", "web (old"])
def test_unpark_looks_a_name_with_regex_metacharacters_up_exactly(cli, config, emulator, name):
    """Nova's name filter is a regular expression search: the name goes escaped and anchored.
    Raw, "db+1" matched no server named db+1, so a server of that name made by hand did not
    stop the unpark and a rerun after a timeout booted a second one; "*web" was a 400."""
    sid = emulator.add_server(name)["id"]
    cfg = config()
    assert cli("-c", cfg, "server", "park", sid).returncode == 0
    by_hand = emulator.add_server(name)["id"]  # someone re-created it by hand
    emulator.add_server(name.upper())  # MySQL's collation ignores case: not a match
    taken = cli("-c", cfg, "server", "unpark", name)
    assert taken.returncode == ExitCode.REFUSED, taken
    assert f"a server named {name} already exists ({by_hand}, ACTIVE)" in taken.stderr
    emulator.servers.pop(by_hand)

    emulator.build_polls = 10_000
    slow = cli("-c", config(server_timeout=1), "server", "unpark", name)
    assert slow.returncode == ExitCode.BACKEND and "was still BUILD after" in slow.stderr, slow
    booted = alive(emulator, name)
    emulator.build_polls = 1
    again = cli("-c", config(server_timeout=1), "server", "unpark", name)
    assert again.returncode == 0, again
    assert "was booted by an earlier unpark of this record: going on with it" in again.stdout
    assert len(booted) == 1 and alive(emulator, name) == booted
