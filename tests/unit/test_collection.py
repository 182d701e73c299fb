"""``cfbackup status`` works out duplicity's collection-status itself (cfbackup/collection.py),
so it never takes duplicity's archive-dir lock: for the same target and archive dir it must say
what duplicity's own collection-status says, chain states and counts included."""

from __future__ import annotations

import os
import subprocess

import pytest

from cfbackup import collection, stores
from cfbackup.duplicity import machinelog
from cfbackup.duplicity.names import PLAIN
from cfbackup.duplicity.run import duplicity_executable, run_duplicity

T = "20261201T0{}0000Z".format  # T(1) = 01:00 UTC on 2026-12-01, ...
FULL1 = [
    f"duplicity-full.{T(1)}.vol1.difftar.gpg",
    f"duplicity-full.{T(1)}.vol2.difftar.gpg",
    f"duplicity-full.{T(1)}.manifest.gpg",
    f"duplicity-full-signatures.{T(1)}.sigtar.gpg",
]
INC12 = [
    f"duplicity-inc.{T(1)}.to.{T(2)}.vol1.difftar.gpg",
    f"duplicity-inc.{T(1)}.to.{T(2)}.manifest.gpg",
    f"duplicity-new-signatures.{T(1)}.to.{T(2)}.sigtar.gpg",
]
INC23 = [
    f"duplicity-inc.{T(2)}.to.{T(3)}.vol1.difftar.gpg",
    f"duplicity-inc.{T(2)}.to.{T(3)}.manifest.gpg",
    f"duplicity-new-signatures.{T(2)}.to.{T(3)}.sigtar.gpg",
]
FULL4 = [
    f"duplicity-full.{T(4)}.vol1.difftar.gz",
    f"duplicity-full.{T(4)}.manifest",
    f"duplicity-full-signatures.{T(4)}.sigtar.gz",
]
INC45 = [
    f"duplicity-inc.{T(4)}.to.{T(5)}.vol1.difftar.gz",
    f"duplicity-inc.{T(4)}.to.{T(5)}.manifest",
    f"duplicity-new-signatures.{T(4)}.to.{T(5)}.sigtar.gz",
]
SCENARIOS = {
    "empty": ([], []),
    "one chain": ([*FULL1, *INC12, *INC23], []),
    "two chains": ([*FULL1, *INC12, *INC23, *FULL4, *INC45], []),
    "signatures only in the archive dir": (
        [n for n in (*FULL4, *INC45) if "signatures" not in n],
        [n for n in (*FULL4, *INC45) if "signatures" in n],
    ),
    "last set without its signatures": ([*FULL1, *INC12, *INC23[:2]], []),
    "interrupted: no manifest": ([*FULL1, *INC12, INC23[0]], []),
    "interrupted: a partial manifest in the archive dir": (
        [*FULL4, INC45[0]],
        [f"duplicity-inc.{T(4)}.to.{T(5)}.manifest.part"],
    ),
    "orphaned incrementals": ([*INC12, *INC23, *FULL4], []),
    "a longer incremental from the same start": (
        [*FULL1, *INC12, f"duplicity-inc.{T(1)}.to.{T(3)}.manifest.gpg"],
        [],
    ),
    "a full without volumes": ([FULL1[2], FULL1[3]], []),
    "a full without volumes, and incrementals": ([*FULL1[2:], *INC12, *INC23[:2]], []),
}


def _duplicitys(target, archive) -> dict:
    result = run_duplicity(
        lambda fd: (
            "duplicity",
            "collection-status",
            "--archive-dir",
            str(archive.parent),
            "--name",
            archive.name,
            "--no-encryption",
            f"--log-fd={fd}",
            f"file://{target}",
        ),
        {"PATH": os.environ["PATH"], "HOME": str(target.parent)},
        check=False,
    )
    records = result.records_with("INFO", machinelog.INFO_COLLECTION_STATUS)
    assert records, (result.returncode, result.output_tail)
    return machinelog.parse_collection_status(records[-1].extra)


def _layout(scenario: str, tmp_path):
    """The target and archive dir of ``scenario``: empty files of those names."""
    remote, local = SCENARIOS[scenario]
    target, archive = tmp_path / "target", tmp_path / "archive" / "name"
    target.mkdir()
    archive.mkdir(parents=True)
    for name in remote:
        (target / name).write_bytes(b"")
    for name in local:
        (archive / name).write_bytes(b"")
    return target, archive


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_same_as_duplicitys_collection_status(scenario, tmp_path):
    target, archive = _layout(scenario, tmp_path)

    ours = collection.status(stores.FileStore(target).list(), archive, naming=PLAIN)

    assert ours == _duplicitys(target, archive)
    local = SCENARIOS[scenario][1]
    assert sorted(os.listdir(archive)) == sorted(local)  # nothing written, nothing locked


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_dt_cf_backups_text_is_duplicitys(scenario, tmp_path, monkeypatch):
    """``dt-cf-backup -s`` prints legacy_text's lines: byte for byte what duplicity's
    collection-status prints on stdout for the same target and archive dir (secondary chains,
    orphaned and incomplete sets, a full without volumes, discarded sets included), from
    "Last full backup date:" on. The WARNING lines duplicity prints before it about damaged or
    unfinished sets are left out (docs/quickstart.md): some need the manifests' contents."""
    import time

    monkeypatch.setenv("TZ", "America/New_York")  # duplicity's dates are local time
    time.tzset()
    try:
        _same_text_as_duplicitys(scenario, tmp_path)
    finally:
        monkeypatch.undo()
        time.tzset()


def _same_text_as_duplicitys(scenario, tmp_path):
    from cfbackup import legacy_text

    target, archive = _layout(scenario, tmp_path)
    real = subprocess.run(
        [
            duplicity_executable(),
            "collection-status",
            "--archive-dir",
            str(archive.parent),
            "--name",
            archive.name,
            "--no-encryption",
            f"file://{target}",
        ],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TZ": "America/New_York"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Collection Status" in real.stdout, real

    found = collection.read(stores.FileStore(target).list(), archive, naming=PLAIN)
    ours = legacy_text.collection_status(found, archive)
    if found.chains:  # 01:00 to 04:00 UTC on Dec 1: local time (New York), as duplicity prints
        assert "Last full backup date: Mon Nov 30 " in real.stdout

    warnings, _, body = real.stdout.partition("Last full backup date:")
    assert "\n".join(ours) + "\n" == "Last full backup date:" + body
    assert all(line.startswith(("WARNING", "duplicity-", "[")) for line in warnings.splitlines())


def test_dt_cf_backups_listing_spells_out_a_bidi_override_in_a_name():
    """``dt-cf-backup -l``: one line per file as duplicity writes it, but a U+202E in a name
    (shown raw, ``invoice<RLO>txt.exe`` reads ``invoiceexe.txt``) or a U+2028 (a line break
    to some readers) is written as its escape, as every message writes names."""
    from cfbackup import legacy_text

    entries = [
        {"time": "20261126T022239Z", "path": name}
        for name in ("ok.txt", "café 日本", "invoice\u202etxt.exe", "a\u2028b")
    ]
    lines = legacy_text.list_current_files(["Last full backup date: none"], entries)
    names = [line[25:] for line in lines[1:-1]]  # after time.asctime's 24 characters
    assert names == ["ok.txt", "café 日本", "invoice\\u202etxt.exe", "a\\u2028b"], lines
    assert lines[-1] == legacy_text.DONE


def test_dt_cf_backups_listing_spells_out_a_newline_in_a_name():
    """A newline in a name, written raw, would start a line that passes for another file's
    (a name that fakes ``etc/shadow`` in the listing): one file, one line, and a tab or a
    carriage return spelled out too."""
    from cfbackup import legacy_text

    entries = [
        {"time": "20261126T022239Z", "path": name}
        for name in ("evil\nThu Jan  1 00:00:00 2026 etc/shadow", "tab\there", "cr\rx")
    ]
    lines = legacy_text.list_current_files(["Last full backup date: none"], entries)
    assert len(lines) == 5 and "\n" not in "".join(lines), lines
    names = [line[25:] for line in lines[1:-1]]  # after time.asctime's 24 characters
    assert names == [
        "evil\\x0aThu Jan  1 00:00:00 2026 etc/shadow",
        "tab\\x09here",
        "cr\\x0dx",
    ], lines
