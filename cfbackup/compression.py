"""gpg's compression level for one backup when the profile says ``compress_level = "auto"``.

Which level pays depends on the link (measured, ``docs/performance.md``): gpg's deflate at
level 1 costs about 1.3x level 0's CPU on a full of text and 1.6x on data that does not
compress, and saves a quarter to a third of the bytes of text. With the Swift on the same host
or LAN the CPU decides and no compression makes the fastest full; across a WAN of tens of
Mbit/s the bytes decide, and level 1 makes both the backup and the restore faster, and the bill
(stored and downloaded bytes) smaller. So "auto" compresses at level 1 when both:

- the Swift is across a network: the fastest of a few requests on one kept-alive
  connection takes ``link.FAR`` or more (``cfbackup/link.py``; a Swift on this host or its
  LAN answers in 1-5 ms). The requests run beside the passphrase check's gpg, so they add no
  time before duplicity starts;
- the data compresses: :data:`SAMPLES` pieces of the files duplicity will back up, spread
  evenly over their bytes, deflate at level 1 to :data:`SAVES` of their size or less. For an
  incremental those are the files changed since the newest backup set at the target
  (``next_backup``: a nightly dump in a tree of photos is judged as a dump), unless they hold
  less than :data:`MIN_CHANGED`. The walk and the sample run after the pre_backup hooks (a
  dump lands first) and only when the Swift is far.

Otherwise level 0. The choice and its reason go to the run's log; a number pins the level.
Mixed levels in one chain are fine: gpg reads what each volume says when it decrypts.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
import zlib
from typing import Any

from cfbackup.config.model import Profile
from cfbackup.link import FAR, in_ms

AUTO = "auto"
SAVES = 0.90  # compressed / raw of the sample, at most, for level 1
SAMPLES = 64  # pieces of the source, evenly spread over its bytes
PIECE = 64 * 1024  # bytes read at each: 4 MiB in all
WALK_SECONDS = 2.0  # the walk for the sample stops here (a huge tree: sampled in part)
MIN_CHANGED = 1024 * 1024  # changed bytes below this: the whole selection is sampled
# gpg_options that set gpg's level themselves (they come after cfbackup's), or turn it off
_GPG_LEVEL = re.compile(r"(?:^|\s)(?:--compress-level|--bzip2-compress-level|-z)(?:[=\s]|\d|$)")
_GPG_OFF = re.compile(r"(?:^|\s)--compress(?:ion)?-algo[=\s]+[\"']?(?:none|uncompressed|0)\b", re.I)


@dataclasses.dataclass(frozen=True)
class Choice:
    level: int
    reason: str


def is_auto(profile: Profile) -> bool:
    enc = profile["encryption"]
    return enc["mode"] != "none" and enc["compress_level"] == AUTO


def choose(
    profile: Profile, seconds: float | None, *, swift: bool = True, since: float | None = None
) -> Choice:
    """The level of this backup and why, from the probe's round trip (``seconds``); ``since``:
    the time of the set an incremental follows (:func:`changed_since`), None for a full."""
    level = profile["encryption"]["compress_level"]
    if not is_auto(profile):
        return Choice(0 if level == AUTO else level, f"level {level}, the profile's")
    gpg_options = profile["encryption"].get("gpg_options") or ""
    if _GPG_OFF.search(gpg_options):
        return Choice(0, "level 0 (none): gpg_options turn gpg's compression off")
    if _GPG_LEVEL.search(gpg_options):
        return Choice(0, "gpg_options set gpg's compression level, and it wins over cfbackup's")
    if not swift:
        return Choice(0, "level 0 (none): the target is not across a network")
    if seconds is None:
        return Choice(0, "level 0 (none): how far the Swift is could not be measured")
    ms = in_ms(seconds)
    if seconds < FAR:
        return Choice(
            0, f"level 0 (none): Swift answers in {ms}, so the CPU, not the link, decides"
        )
    ratio, sampled, changed = sample_ratio(profile, since)
    if ratio is None:
        return Choice(0, f"level 0 (none): Swift answers in {ms}, and no file was sampled")
    of = "the files changed since the last backup" if changed else "the source"
    where = f"Swift answers in {ms}, and a {_size(sampled)} sample of {of} deflates to {ratio:.0%}"
    if ratio > SAVES:
        return Choice(0, f"level 0 (none): {where}")
    return Choice(1, f"level 1: {where}")


def changed_since(run) -> float | None:
    """:func:`since_of` this run's profile, from the run's listing of the target. Read only for
    "auto" across a network."""
    view, profile = run.target_view, run.profile
    if view is None or not is_auto(profile):
        return None
    try:
        objects = view.objects()
    except Exception:  # noqa: BLE001 - the checks report Swift's errors; here: sample it all
        return None
    return since_of(profile, objects or [], force_full=bool(run.options.get("full")))


def since_of(profile: Profile, objects: list[dict], *, force_full: bool) -> float | None:
    """The time of the newest backup set an incremental of ``profile`` follows, from a listing
    of its target (``next_backup``, as the quota guard reads it); None for a full, or for a
    split profile, whose chains differ (the whole selection is sampled)."""
    from cfbackup import chains, next_backup
    from cfbackup.duplicity import names

    if chains.is_split(profile):
        return None
    try:
        plan = next_backup.plan_next(
            next_backup.read_sets(objects, naming=names.of(profile)),
            force_full=force_full,
            full_if_older_than=profile["full_if_older_than"],
            archive_dir=profile.archive_dir / profile.backup_name,
        )
    except ValueError:  # a name with an impossible date: sample the whole selection
        return None
    return plan.since


def with_level(profile: Profile, level: int) -> Profile:
    """A copy of ``profile`` with the chosen level (the run's profile stays "auto": a daemon
    decides again at its next run)."""
    if profile["encryption"]["compress_level"] == level:
        return profile
    data = dict(profile.data, encryption=dict(profile["encryption"], compress_level=level))
    return dataclasses.replace(profile, data=data)


def sample_ratio(profile: Profile, since: float | None = None) -> tuple[float | None, int, bool]:
    """Deflated / raw size of :data:`SAMPLES` pieces of the selected files spread evenly over
    their bytes (a file holding 10% of the bytes gets about 10% of the pieces), the bytes read,
    and whether they were the files changed since ``since`` (at least :data:`MIN_CHANGED` of
    them; else every selected file); None when there is nothing to read."""
    found = selected_files(profile, time.monotonic() + WALK_SECONDS)
    files = [(path, size) for path, size, _ in found]
    changed = False
    if since is not None:
        recent = [(path, size) for path, size, when in found if when >= since]
        if sum(size for _, size in recent) >= MIN_CHANGED:
            files, changed = recent, True
    total = sum(size for _, size in files)
    if not total:
        return None, 0, changed
    step = total / SAMPLES
    raw = packed = 0
    position, start = step / 2, 0
    for path, size in files:
        offsets = []
        while position < start + size:
            offsets.append(max(0, min(int(position - start), size - PIECE)))
            position += step
        start += size
        if offsets:
            raw, packed = _deflate(path, offsets, raw, packed)
    return (packed / raw if raw else None), raw, changed


def _deflate(path: str, offsets: list[int], raw: int, packed: int) -> tuple[int, int]:
    try:
        with open(path, "rb") as handle:
            for offset in offsets:
                handle.seek(offset)
                piece = handle.read(PIECE)
                raw += len(piece)
                packed += len(zlib.compress(piece, 1))
    except OSError:  # gone or unreadable since the walk: duplicity reports it, not this
        pass
    return raw, packed


def selected_files(profile: Profile, deadline: float) -> list[tuple[str, int, float]]:
    """(path, size, last change: the later of mtime and ctime) of the regular files the
    profile's include/exclude rules select under its source, as duplicity selects them
    (``cfbackup/selection.py``), until ``deadline``."""
    from cfbackup import selection

    try:
        selector = selection.selector_for(profile)
    except (selection.SelectionError, re.error):  # duplicity refuses them in its own words
        return []
    select: Any = None if selector.selects_everything else selector
    found: list[tuple[str, int, float]] = []
    folders = [str(profile.source)]
    while folders and time.monotonic() < deadline:
        try:
            entries = os.scandir(folders.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                if time.monotonic() >= deadline:  # one huge folder (a maildir) included
                    break
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                    verdict = selection.INCLUDE if select is None else select(entry.path, is_dir)
                    if verdict == selection.EXCLUDE:
                        continue
                    if is_dir:
                        folders.append(entry.path)  # included, or scanned for what is
                    elif verdict == selection.INCLUDE and entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        found.append((entry.path, st.st_size, max(st.st_mtime, st.st_ctime)))
                except OSError:
                    continue
    return found


def _size(count: int) -> str:
    return f"{count / 1048576:.1f} MiB" if count >= 1048576 else f"{count // 1024} KiB"
