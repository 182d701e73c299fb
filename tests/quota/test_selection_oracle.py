"""The estimate walks exactly the files duplicity backs up: hypothesis-generated trees and
include/exclude rules (in cfbackup's order: excludes, includes, then ``**`` excluded), checked
against duplicity's own selection code in-process (many examples) and against a real
``duplicity full --dry-run`` (a few examples: each runs duplicity)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cfbackup_quota_guard import estimate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfbackup import selection

pytestmark = pytest.mark.quota

NAMES = ["a", "b", "ab", "x.py", "y.txt", "Doc", "[c]", "c", "sub", "a b"]
FILE_PARTS = st.lists(st.sampled_from(NAMES), min_size=1, max_size=4)
GLOB_PARTS = st.sampled_from(
    ["a", "b", "ab", "*", "?", "**", "*.py", "x.py", "[ab]", "[!a]*", "D*", "sub", "c", "**.txt",
     "[c]", "a b", "?b", "[a-c]"]
)  # fmt: skip


@st.composite
def trees(draw):
    """A set of relative paths; each path's last part is a file unless another path goes on."""
    return sorted(set(map(tuple, draw(st.lists(FILE_PARTS, min_size=1, max_size=12)))))


@st.composite
def rules(draw, root_marker="ROOT"):
    def glob():
        parts = draw(st.lists(GLOB_PARTS, min_size=0, max_size=3))
        start = draw(st.sampled_from([root_marker, "**", root_marker + "/**"]))
        text = "/".join([start, *parts])
        if draw(st.booleans()) and draw(st.booleans()):
            text += "/"
        if draw(st.integers(0, 9)) == 0:
            text = "ignorecase:" + text.lower()
        return text

    excludes = draw(st.lists(st.builds(glob), max_size=3))
    includes = draw(st.lists(st.builds(glob), max_size=3))
    return excludes, includes


def build(root: Path, paths) -> None:
    dirs = {p[:i] for p in paths for i in range(1, len(p))}
    for path in paths:
        target = root.joinpath(*path)
        if path in dirs:
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"x" * len(path))


def ours(root: str, excludes, includes) -> set[str] | None:
    try:
        selector = selection.Selector(root, selection.profile_rules(excludes, includes))
    except selection.SelectionError:
        return None
    seen: set[str] = set()
    estimate.scan(root, selector, visit=seen.add)
    return seen


def duplicity_in_process(root: str, excludes, includes) -> set[str] | None:
    from duplicity import errors, globmatch, log, path
    from duplicity import selection as dup_selection

    log.setup()
    log.setverbosity(log.ERROR)
    sel = dup_selection.Select(path.Path(root))
    try:
        for glob, include in selection.profile_rules(excludes, includes):
            sel.add_pattern(glob, include)
        sel.parse_last_excludes()
    except (globmatch.GlobbingError, errors.FatalError):
        return None
    sel.set_iter()
    return {p.uc_name[len(root) + 1 :] for p in sel}


def fill(rule_set, root):
    excludes, includes = rule_set
    return [g.replace("ROOT", root) for g in excludes], [g.replace("ROOT", root) for g in includes]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees(), rule_set=rules())
def test_selection_matches_duplicity_in_process(tree, rule_set):
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "src")
        os.mkdir(root)
        build(Path(root), tree)
        excludes, includes = fill(rule_set, root)
        assert ours(root, excludes, includes) == duplicity_in_process(root, excludes, includes)


@given(pattern=st.text(alphabet="ab*?[]!^-/\\.c", max_size=12))
@settings(max_examples=300, deadline=None)
def test_glob_to_regex_is_duplicity_s(pattern):
    from duplicity import globmatch

    assert selection.glob_to_regex(pattern) == globmatch.glob_to_regex(pattern)


DUPLICITY = Path(sys.executable).parent / "duplicity"


def duplicity_dry_run(root: str, excludes, includes, work: Path) -> set[str] | None:
    """What a real ``duplicity full --dry-run`` would back up (its INFO 4 "A path" records)."""
    read, write = os.pipe()
    argv = [
        str(DUPLICITY), "full", "--dry-run", "--no-encryption", "--verbosity=info",
        f"--archive-dir={work / 'archive'}", f"--log-fd={write}",
        *(f"--exclude={g}" for g in excludes), *(f"--include={g}" for g in includes),
        *(("--exclude=**",) if includes else ()), root, f"file://{work / 'target'}",
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv,
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    os.close(write)
    with os.fdopen(read) as stream:
        text = stream.read()
    if proc.wait(timeout=120) != 0:
        return None
    found = set()
    for match in re.finditer(r"^INFO 4 '?(.*?)'?$", text, re.M):
        found.add("" if match.group(1) == "." else match.group(1))
    return found


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees(), rule_set=rules())
def test_selection_matches_a_real_duplicity_dry_run(tree, rule_set):
    work = Path(tempfile.mkdtemp(prefix="qg-oracle-"))
    try:
        root = str(work / "src")
        os.mkdir(root)
        build(Path(root), tree)
        excludes, includes = fill(rule_set, root)
        assert ours(root, excludes, includes) == duplicity_dry_run(root, excludes, includes, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
