"""Backup sets dated after now, read from a target's object names (``future_sets.py``)."""

from __future__ import annotations

from duplicity import dup_time

from cfbackup import future_sets
from cfbackup.config import build_config
from cfbackup.duplicity.names import PLAIN

OLD, NOW, AHEAD = "20261101T010000Z", "20261206T120000Z", "20271206T120000Z"


def _names(*sets: str) -> list[str]:
    names = []
    for s in sets:
        kind = "full" if ".to." not in s else "inc"
        sig = "full-signatures" if kind == "full" else "new-signatures"
        names += [f"duplicity-{kind}.{s}.manifest", f"duplicity-{kind}.{s}.vol1.difftar.gz"]
        names.append(f"duplicity-{sig}.{s}.sigtar.gz")
    return names


def _profile(target: str, extra_options=()):
    profile = {
        "source": "/srv",
        "target": target,
        "extra_options": list(extra_options),
        "encryption": {"mode": "none"},
        "swift": {"auth_url": "http://k/auth/v1.0", "username": "u", "password_env": "T_KEY"},
    }
    return build_config({"profiles": {"p": profile}}, path=None).profiles["p"]


def test_sets_dated_after_now_include_an_incremental_that_ends_before_it_starts():
    now = dup_time.stringtotime(NOW)
    names = _names(OLD, AHEAD, f"{AHEAD}.to.{NOW}")
    found = future_sets.dated_after(names, now + future_sets.TOLERANCE, naming=PLAIN)
    assert [(s.kind, s.start, s.end) for s in found] == [
        ("inc", dup_time.stringtotime(AHEAD), now),
        ("full", dup_time.stringtotime(AHEAD), dup_time.stringtotime(AHEAD)),
    ]
    assert future_sets.dated_after(_names(OLD, NOW), now, naming=PLAIN) == []
    # a few minutes ahead is another machine's clock, not a future set
    assert (
        future_sets.dated_after(_names(NOW), now - 60 + future_sets.TOLERANCE, naming=PLAIN) == []
    )


def test_the_refusal_names_the_newest_set_now_and_the_fix(tmp_path):
    target = tmp_path / "target dir"
    target.mkdir()
    for name in _names(OLD, AHEAD):
        (target / name).write_bytes(b"")
    now = dup_time.stringtotime(NOW)
    profile = _profile(f"file://{target}", [f"--current-time={now}"])  # duplicity's now
    found = future_sets.found(profile)
    said = future_sets.refusal(profile, found)
    assert said.startswith(
        f"the target holds 1 backup set(s) dated after now (the newest: the full backup of "
        f"{AHEAD}), and it is {NOW} here: if this clock is behind, set it right"
    ), said
    assert f"-name '*{AHEAD}*'" in said and "'" + str(target) + ".future-dated'" in said
    assert said.endswith("then run `cfbackup backup p --full` to start a new chain")
    assert (
        future_sets.refusal(
            _profile(f"file://{target}"),
            future_sets.found(
                _profile(f"file://{target}", [f"--current-time={dup_time.stringtotime(AHEAD)}"])
            ),
        )
        == ""
    )
