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
    aside = "'" + str(target) + ".future-dated'"
    moved = " ".join(f"'{target}/{name}'" for name in sorted(_names(AHEAD)))
    assert f"`mkdir -p {aside} && mv -t {aside} -- {moved}`" in said, said
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


def test_the_way_out_moves_an_incremental_dated_after_now_but_not_its_parent_full(tmp_path):
    """An incremental made while the clock was ahead names its correctly dated parent full's
    time as its start: the fix moves the incremental's objects only, not the full's."""
    target = tmp_path / "target"
    target.mkdir()
    for name in _names(NOW, f"{NOW}.to.{AHEAD}"):
        (target / name).write_bytes(b"")
    profile = _profile(f"file://{target}", [f"--current-time={dup_time.stringtotime(NOW)}"])
    said = future_sets.refusal(profile, future_sets.found(profile))
    assert all(f"{target}/{name}" in said for name in _names(f"{NOW}.to.{AHEAD}")), said
    assert not any(name in said for name in _names(NOW)), said
    swift = _profile("swift://backups/web", [f"--current-time={dup_time.stringtotime(NOW)}"])
    said = future_sets.refusal(swift, [future_sets.Future("", swift.target, future_sets.found(
        profile)[0].sets)])  # fmt: skip
    assert "move these objects of container backups to another container" in said, said
    assert f"web/duplicity-inc.{NOW}.to.{AHEAD}.manifest" in said, said
    assert f"duplicity-full.{NOW}.manifest" not in said, said
