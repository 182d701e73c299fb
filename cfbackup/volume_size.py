"""The volume size of a backup (``volsize``), and why: "auto" is :data:`FAR_MB` with the Swift
across a network, :data:`NEAR_MB` with it on this host or its LAN.

Restoring one file downloads and decrypts each whole volume it is in. Across a network that
download is most of the restore: a 50 MB volume (36 MB stored at level 1) took 2.3 s at
200 Mbit/s and 5.8 s at 50 Mbit/s, where restic restored the same file in 1.1-2.1 s
(docs/performance.md). Smaller volumes also give the upload process (``upload_workers``)
volumes to overlap on a small backup. What they cost: gpg derives the key from a passphrase
again for each volume (0.2 s of CPU; started ahead, beside the volume before it: the gpg-ahead
patch) and there are more objects. Nearby, building the volumes takes the time and a one-file
restore is quick anyway: the larger size. The same round-trip probe decides as for
``compress_level`` and ``upload_workers`` (``cfbackup/link.py``); a number pins it.
"""

from __future__ import annotations

import dataclasses

from cfbackup.config.model import Profile
from cfbackup.duplicity import options
from cfbackup.link import FAR, in_ms

AUTO = "auto"
FAR_MB = 20
NEAR_MB = 50  # also what an undecided "auto" means (the default before "auto")


@dataclasses.dataclass(frozen=True)
class Choice:
    megabytes: int
    reason: str


def from_extra_options(profile: Profile) -> int | None:
    """A ``--volsize`` in the profile's extra_options (the last; duplicity takes it over
    cfbackup's, which comes first), None when there is none or it is not a number."""
    given = options.last_value(list(profile["extra_options"]), "--volsize")
    return int(given) if given is not None and given.strip().isdigit() else None


def is_auto(profile: Profile) -> bool:
    return profile["volsize"] == AUTO and from_extra_options(profile) is None


def planned(profile: Profile) -> int:
    """The size to plan with before a backup has decided (the quota guard's estimate): the
    smaller one for "auto", which makes the most objects."""
    given = from_extra_options(profile)
    if given is not None:
        return given
    return FAR_MB if profile["volsize"] == AUTO else int(profile["volsize"])


def choose(profile: Profile, seconds: float | None, *, swift: bool = True) -> Choice:
    """This backup's volume size and why, from the probe's round trip (``seconds``; None when
    it did not run or failed)."""
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
    return Choice(
        FAR_MB,
        f"{FAR_MB} MB: Swift answers in {in_ms(seconds)}, so a one-file restore downloads "
        "less and the upload process has volumes to overlap",
    )


def with_size(profile: Profile, choice: Choice) -> Profile:
    """A copy of ``profile`` with the chosen size (the run's profile stays "auto")."""
    if profile["volsize"] == choice.megabytes or from_extra_options(profile) is not None:
        return profile  # (extra_options' --volsize comes last in the argv: it wins anyway)
    return dataclasses.replace(profile, data=dict(profile.data, volsize=choice.megabytes))


def argv_value(profile: Profile) -> int:
    """``--volsize``'s value: the profile's number, :data:`NEAR_MB` for an undecided "auto"."""
    return NEAR_MB if profile["volsize"] == AUTO else int(profile["volsize"])
