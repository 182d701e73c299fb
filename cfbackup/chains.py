"""A profile's duplicity chains: one (duplicity's layout), or one per include root.

With ``split_chains`` each include root is backed up as its own chain under a sub-prefix of
the target (``<target>/<slug>``, slug = the root's path and a short hash) with its own archive
name, so several duplicity processes use several cores (bench/levers.py ``*-halves``). Every
chain keeps the profile's source, so paths inside a backup are the same as in one chain: a
restore of one path goes to the chain whose root holds it, a full restore puts each root in
place. :func:`run_each` runs one step per chain side by side and stops them all on Ctrl-C.
"""

from __future__ import annotations

import concurrent.futures
import copy
import dataclasses
import hashlib
import logging
import os
import re
import subprocess
import threading
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import TypeVar

from cfbackup import execute, interrupts
from cfbackup.config.model import Profile
from cfbackup.errors import CfbackupError, ConfigError, NoBackupFound

log = logging.getLogger("cfbackup")
T = TypeVar("T")
ROOTS_STAT = "roots_backed_up"  # the run history's statistic: the include roots a backup backed up
GLOB = re.compile(r"[*?\[\]{}]")


@dataclasses.dataclass(frozen=True)
class Chain:
    """One duplicity chain of a profile: ``profile`` is what duplicity's argv is built from
    (target, name and include narrowed to the chain); ``root`` is the include root relative
    to the source ("" for the single chain of an unsplit profile)."""

    profile: Profile
    root: str
    slug: str = ""

    @property
    def label(self) -> str:
        return f"/{self.root}" if self.root else self.profile.name


def of(profile: Profile) -> list[Chain]:
    """The chains of a profile, in include order."""
    if not is_split(profile):
        return [Chain(profile, "")]
    return [_chain(profile, root) for root in include_roots(profile)]


def is_split(profile: Profile) -> bool:
    return bool(profile.get("split_chains"))


def include_roots(profile: Profile) -> list[str]:
    """The include roots relative to the source; ConfigError when they cannot be chains."""
    where = f"profiles.{profile.name}"
    source = PurePosixPath(str(profile.source))
    includes = list(profile["include"])
    if not includes:
        raise ConfigError(
            f"{where}.split_chains: needs include roots (one chain each): list them in include, "
            "or set split_chains = false."
        )
    roots: list[str] = []
    for item in includes:
        path = PurePosixPath(item)
        if GLOB.search(item) or not path.is_absolute() or ".." in path.parts:
            raise ConfigError(
                f"{where}.include: {item!r} is a pattern, not a directory: with split_chains "
                "every include is a plain absolute path (one chain each)."
            )
        try:
            rel = path.relative_to(source)
        except ValueError:
            raise ConfigError(
                f"{where}.include: {item} is not under source {source}: fix the path."
            ) from None
        if not rel.parts:
            raise ConfigError(
                f"{where}.include: {item} is the whole source: with split_chains list the "
                "directories under it, or set split_chains = false."
            )
        roots.append(rel.as_posix())
    for a in roots:
        for b in roots:
            if a != b and (b + "/").startswith(a + "/"):
                raise ConfigError(
                    f"{where}.include: /{b} is inside /{a}: with split_chains the include roots "
                    "cannot nest (each path belongs to one chain)."
                )
    if len(set(roots)) != len(roots):
        raise ConfigError(f"{where}.include: a root is listed twice.")
    return roots


def missing_root(chain: Chain) -> str | None:
    """Why a split chain's include root cannot be backed up (gone, renamed, not mounted), as the
    sentence the run reports; None when it is there. duplicity would back up an empty chain for
    it, and retention would then remove the root's real backups."""
    if not chain.root:
        return None  # the single chain: check_source requires the source
    path = root_path(chain)
    if os.path.exists(path):
        return None
    return missing_include(path)


def root_path(chain: Chain) -> str:
    """Where a split chain's include root is on this machine."""
    return str(PurePosixPath(str(chain.profile.source)) / chain.root)


def is_plain(item: str) -> bool:
    """An include that names one path (no pattern)."""
    return item.startswith("/") and not GLOB.search(item)


def missing_includes(profile: Profile) -> list[str]:
    """The plain include paths (no pattern) that do not exist: duplicity backs up nothing for
    them and says nothing (exit 0, no warning)."""
    return [item for item in profile["include"] if is_plain(item) and not os.path.lexists(item)]


def missing_include(item: str) -> str:
    """The sentence naming a plain include that does not exist, as :func:`missing_root` says
    it of a split root: the backup lacks it, so it is partial and no retention follows."""
    return f"{item} is missing or not mounted: mount it, or remove it from include"


def watched_folders(profile: Profile, chain_list: list[Chain]) -> list[str]:
    """The folders whose disk may not be mounted: the source, each split chain's root, and
    the plain include paths."""
    paths = [str(profile.source)]
    if is_split(profile):
        paths += [root_path(chain) for chain in chain_list if chain.root]
    else:
        paths += [item for item in profile["include"] if is_plain(item)]
    return [os.path.normpath(path) for path in paths]


def slug_of(root: str) -> str:
    """``srv/www`` -> ``srv-www-1b2c3d4e``: readable, one folder deep, unique per root."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", root).strip("-.")[:60] or "root"
    return f"{readable}-{hashlib.sha256(root.encode()).hexdigest()[:8]}"


def of_root(profile: Profile, root: str) -> Chain:
    """The chain a split profile has (or had) for include root ``root`` (relative to the
    source), whether or not it is in include now."""
    return _chain(profile, root)


def _chain(profile: Profile, root: str) -> Chain:
    slug = slug_of(root)
    data = copy.deepcopy(profile.data)
    data["target"] = profile.target.rstrip("/") + "/" + slug
    data["name"] = f"{profile.backup_name}.{slug}"
    data["include"] = [str(PurePosixPath(str(profile.source)) / root)]
    data["split_chains"] = False
    return Chain(dataclasses.replace(profile, data=data), root, slug)


def objects_of(chain: Chain, objects: list[dict]) -> list[dict]:
    """The objects of one chain among a listing of the profile's target prefix."""
    if not chain.slug:
        return [o for o in objects if "/" not in o["name"]]
    prefix = chain.slug + "/"
    return [dict(o, name=o["name"][len(prefix) :]) for o in objects if o["name"].startswith(prefix)]


def for_path(chains: list[Chain], rel: str) -> tuple[list[Chain], bool]:
    """The chains holding path ``rel`` (relative to source): ``([chain], True)`` when one
    chain's root holds it, ``(chains under it, False)`` when it holds roots."""
    if len(chains) == 1 and not chains[0].root:
        return chains, True
    for chain in chains:
        if rel == chain.root or rel.startswith(chain.root + "/"):
            return [chain], True
    under = [c for c in chains if not rel or c.root.startswith(rel + "/")]
    return under, False


def workers(profile: Profile, count: int) -> int:
    wanted = int(profile.get("parallel") or 0) or os.cpu_count() or 1
    return max(1, min(wanted, count))


def run_each(
    profile: Profile,
    chains: list[Chain],
    step: Callable[[Chain], T],
    *,
    skip_empty: bool = False,
    warnings: list[str] | None = None,
) -> list[T]:
    """``step(chain)`` for every chain, side by side; results in chain order.

    Every chain runs to its end even when another fails (a chain that completed is a good
    backup of its root); then the first failure is raised, naming its root. Ctrl-C (or SIGTERM)
    stops every duplicity still running, as a single run would be stopped. ``skip_empty``
    (restore, list; the checks judge such a root themselves, ``common.roots_without_backup``):
    a chain with no backup yet (a root added since the last backup)
    is left out with a warning, as long as another chain has one; its result is None.
    ``warnings``: the list the steps add their warnings to; when a chain fails, they go with its
    error (``CfbackupError.warnings``: the run's history and notification keep them).
    """
    try:
        return _run_each(profile, chains, step, skip_empty=skip_empty)
    except CfbackupError as error:
        error.warnings += warnings or []
        raise


def _run_each(
    profile: Profile,
    chains: list[Chain],
    step: Callable[[Chain], T],
    *,
    skip_empty: bool,
) -> list[T]:
    """:func:`run_each`'s work, warnings aside."""
    if len(chains) == 1:
        return [step(chains[0])]
    skipped: list[Chain] = []
    if skip_empty:
        plain = step

        def step(chain: Chain) -> T | None:  # type: ignore[misc]
            try:
                return plain(chain)
            except NoBackupFound:
                log.warning("chain %s has no backup yet: left out", chain.label)
                skipped.append(chain)
                return None

    track = execute.ProcessGroup()
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=workers(profile, len(chains)), thread_name_prefix="chain"
    ) as pool:
        futures = [pool.submit(_tracked, track, step, chain) for chain in chains]
        try:
            interrupts.wait(futures)
        except BaseException:
            track.stop_all()
            concurrent.futures.wait(futures)
            raise
    failures = [(c, e) for c, f in zip(chains, futures, strict=True) if (e := f.exception())]
    for chain, error in failures[1:]:
        log.error("chain %s failed too: %s", chain.label, getattr(error, "message", error))
    results = [f.result() for f in futures] if not failures else []
    if skipped and len(skipped) == len(chains):
        raise NoBackupFound(
            f"no backup found for any include root of profile {profile.name}: run a backup "
            "first or check the profile's target."
        )
    if failures:
        chain, error = failures[0]
        if isinstance(error, CfbackupError):
            others = len(chains) - len(failures)
            error.message = f"chain {chain.label}: {error.message}" + (
                f" ({others} other chain(s) completed)" if others else ""
            )
        raise error
    return results


_current = threading.local()


def _tracked(track: execute.ProcessGroup, step: Callable[[Chain], T], chain: Chain) -> T:
    if track.stopping:
        raise KeyboardInterrupt
    _current.tracker = track
    try:
        return step(chain)
    finally:
        _current.tracker = None


def on_start() -> Callable[[subprocess.Popen], None] | None:
    """For the duplicity runner: register the process with the chains' tracker, if any."""
    track = getattr(_current, "tracker", None)
    return track.started if track else None
