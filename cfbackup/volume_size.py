"""The volume size of a backup (``volsize``), and why: "auto" is :data:`NEAR_MB` with the Swift
on this host or its LAN; across a network it follows the link's rate, :data:`FAR_MB` on a fast
link and :data:`SLOW_MB` on a slow one.

Restoring one file downloads and decrypts each whole volume it is in. Across a network that
download is most of the restore: a 20 MB volume took 0.8 s at 200 Mbit/s and 3.5 s at
48 Mbit/s, where restic restored the same file in 1.1-2.1 s (docs/performance.md). Smaller
volumes also give the upload process (``upload_workers``) volumes to overlap on a small backup.
What they cost: gpg derives the key from a passphrase again for each volume (0.3 s of CPU;
started ahead, beside the volume before it: the gpg-ahead patch) and there are more objects.
On a slow link the uploads wait for the link anyway, so the small size costs little there.
Nearby, building the volumes takes the time and a one-file restore is quick anyway: the largest
size. The same round-trip probe tells near from far as for ``compress_level`` and
``upload_workers`` (``cfbackup/link.py``); the rate, which a round trip does not tell, comes
from the uploads: the last backup's (kept in its statistics as :data:`RATE_STAT`) to start
with, then this backup's own, volume by volume (the ``rate-sized-volumes`` patch). A number
pins it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cfbackup.config.model import Profile
from cfbackup.duplicity import options
from cfbackup.link import FAR, in_ms

AUTO = "auto"
SLOW_MB = 10  # across a network until the uploads show a fast link
FAR_MB = 20  # across a network, uploads at FAST or more
NEAR_MB = 50  # also what an undecided "auto" means (the default before "auto")
FAST = 100e6 / 8  # bytes/s (100 Mbit/s): a FAR_MB volume downloads in 1.7 s at most
RATE_STAT = "UploadBytesPerSecond"  # a backup's statistic: the rate its volumes uploaded at


@dataclasses.dataclass(frozen=True)
class Choice:
    megabytes: int
    reason: str
    by_rate: bool = False  # the uploads' rate sizes the next volumes (rate-sized-volumes)


def from_extra_options(profile: Profile) -> int | None:
    """A ``--volsize`` in the profile's extra_options (the last; duplicity takes it over
    cfbackup's, which comes first), None when there is none or it is not a number."""
    given = options.last_value(list(profile["extra_options"]), "--volsize")
    return int(given) if given is not None and given.strip().isdigit() else None


def is_auto(profile: Profile) -> bool:
    return profile["volsize"] == AUTO and from_extra_options(profile) is None


def _pinned(profile: Profile) -> int | None:
    """The size the profile fixes (extra_options' --volsize, else a number), None for auto."""
    given = from_extra_options(profile)
    if given is not None:
        return given
    return None if profile["volsize"] == AUTO else int(profile["volsize"])


def planned(profile: Profile) -> int:
    """The size to plan with before a backup has decided (the quota guard's estimate): the
    smallest one for "auto", which makes the most objects."""
    pinned = _pinned(profile)
    return SLOW_MB if pinned is None else pinned


def largest(profile: Profile) -> int:
    """The largest volume, in MB, this profile's backups write (a restore's room for one
    volume decrypted ahead): "auto" writes at most :data:`NEAR_MB`."""
    pinned = _pinned(profile)
    return NEAR_MB if pinned is None else pinned


def choose(
    profile: Profile, seconds: float | None, *, swift: bool = True, learned: float | None = None
) -> Choice:
    """This backup's volume size and why, from the probe's round trip (``seconds``; None when
    it did not run or failed) and the rate the last backup uploaded at (``learned``, bytes/s;
    None when unknown). Across a network it is the first volume's: the uploads size the next
    ones (``by_rate``)."""
    given = from_extra_options(profile)
    if given is not None:
        return Choice(given, f"{given} MB, extra_options' --volsize (it wins over volsize)")
    if not is_auto(profile):
        return Choice(int(profile["volsize"]), f"{profile['volsize']} MB, the profile's")
    if not swift or seconds is None or seconds < FAR:
        where = (
            "the target is not across a network"
            if not swift or seconds is None
            else f"Swift answers in {in_ms(seconds)}"
        )
        return Choice(NEAR_MB, f"{NEAR_MB} MB: {where}")
    rule = (
        f"then {FAR_MB} MB while uploads run at {mbit(FAST)} or more, else {SLOW_MB} MB, so a "
        "one-file restore downloads less"
    )
    far = f"Swift answers in {in_ms(seconds)}"
    if learned is None:
        return Choice(
            SLOW_MB, f"{SLOW_MB} MB first: {far} and the link's rate is not known yet; {rule}", True
        )
    size = FAR_MB if learned >= FAST else SLOW_MB
    known = f"the last backup uploaded at {mbit(learned)}"
    return Choice(size, f"{size} MB first: {far} and {known}; {rule}", True)


def mbit(bytes_per_second: float) -> str:
    return f"{bytes_per_second * 8 / 1e6:.0f} Mbit/s"


def learned_rate(state_dir: Path, profile_name: str) -> float | None:
    """The upload rate of the newest backup of the profile that measured one (one that
    uploaded a volume of some size; a partial backup's counts too), in bytes/s."""
    from cfbackup import history

    value = history.newest_stat(state_dir, profile_name, "backup", RATE_STAT, history.AT_TARGET)
    usable = isinstance(value, int | float) and 0 < value < float("inf")
    return float(value) if usable else None


def with_size(profile: Profile, choice: Choice) -> Profile:
    """A copy of ``profile`` with the chosen size (the run's profile stays "auto")."""
    if profile["volsize"] == choice.megabytes or from_extra_options(profile) is not None:
        return profile  # (extra_options' --volsize comes last in the argv: it wins anyway)
    return dataclasses.replace(profile, data=dict(profile.data, volsize=choice.megabytes))


def argv_value(profile: Profile) -> int:
    """``--volsize``'s value: the profile's number, :data:`NEAR_MB` for an undecided "auto"."""
    return NEAR_MB if profile["volsize"] == AUTO else int(profile["volsize"])
