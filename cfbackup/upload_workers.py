"""How many upload processes a backup's duplicity runs (``upload_workers``; duplicity's
``--concurrency``), and why.

With ``--concurrency N`` duplicity uploads each volume from one of N processes of its own
while it builds the next (its ``backend_pool``; the ``upload-pool`` patch starts them only for
a backup with a second volume). That pays when uploading a volume takes about as long as
building one, with volumes to overlap: measured at 20 ms / 200 Mbit/s, a 100 MB full took
6.2-6.7 s with one process and 10-20 MB volumes against 7.5-8.1 s without; with two 50 MB
volumes the two were within the noise (docs/performance.md). With the Swift on this
host or its LAN, building volumes takes the time and the processes only cost CPU. So "auto"
is 1 when the Swift is across a network (the round-trip probe ``compress_level = "auto"``
reads too: ``cfbackup/link.py``), else 0. A number pins it; a ``--concurrency`` in
``extra_options`` wins over both. Only backups upload volumes: other commands never get it.
"""

from __future__ import annotations

import dataclasses

from cfbackup.config.model import Profile
from cfbackup.duplicity import options
from cfbackup.link import FAR, in_ms

AUTO = "auto"
FAR_WORKERS = 1  # one process already overlaps every upload with the next volume's building


@dataclasses.dataclass(frozen=True)
class Choice:
    workers: int | None  # None: extra_options' --concurrency decides
    reason: str


def from_extra_options(profile: Profile) -> str | None:
    """The ``--concurrency`` the profile's extra_options give (the last), None when none."""
    return options.last_value(list(profile["extra_options"]), "--concurrency")


def is_auto(profile: Profile) -> bool:
    """Whether this profile's backups decide from the link (and need the probe)."""
    return profile["upload_workers"] == AUTO and from_extra_options(profile) is None


def choose(profile: Profile, seconds: float | None, *, swift: bool = True) -> Choice:
    """The upload processes of this backup and why, from the probe's round trip
    (``seconds``; None when it did not run or failed)."""
    given = from_extra_options(profile)
    if given is not None:
        return Choice(
            None, f"{given.strip()}, extra_options' --concurrency (it wins over upload_workers)"
        )
    workers = profile["upload_workers"]
    if workers != AUTO:
        return Choice(workers, f"{workers}, the profile's")
    if not swift:
        return Choice(0, "0: the target is not across a network")
    if seconds is None:
        return Choice(0, "0: how far the Swift is could not be measured")
    if seconds < FAR:
        return Choice(
            0,
            f"0: Swift answers in {in_ms(seconds)}, so building the volumes, not "
            "uploading them, takes the time",
        )
    return Choice(
        FAR_WORKERS,
        f"{FAR_WORKERS}: Swift answers in {in_ms(seconds)}, so each "
        "volume uploads while the next is built (the process starts "
        "only when the backup has a second volume)",
    )


def with_workers(profile: Profile, choice: Choice) -> Profile:
    """A copy of ``profile`` with the chosen number (the run's profile stays "auto": a daemon
    decides again at its next run); the profile itself when extra_options decide."""
    if choice.workers is None or profile["upload_workers"] == choice.workers:
        return profile
    return dataclasses.replace(profile, data=dict(profile.data, upload_workers=choice.workers))
