"""What a backup's "auto" settings become for one run, from the link: gpg's compression level
(``compression.py``), the upload processes (``upload_workers.py``) and the first volume's size
(``volume_size.py``), each with its reason, and the profile duplicity's command line is built
from. One place, so that the benchmark's raw duplicity (``bench/contestants.py``) gets what a
backup gets."""

from __future__ import annotations

import dataclasses

from cfbackup import compression, upload_workers, volume_size
from cfbackup.config.model import Profile


@dataclasses.dataclass(frozen=True)
class Choices:
    compression: compression.Choice
    workers: upload_workers.Choice
    size: volume_size.Choice

    def applied(self, profile: Profile) -> Profile:
        """A copy of ``profile`` (or of one of its chains) with the three choices."""
        return volume_size.with_size(
            upload_workers.with_workers(
                compression.with_level(profile, self.compression.level), self.workers
            ),
            self.size,
        )


def is_auto(profile: Profile) -> bool:
    """Whether any of the three decides from the link (and the probe must run)."""
    return any(m.is_auto(profile) for m in (compression, upload_workers, volume_size))


def choose(
    profile: Profile,
    round_trip: float | None,
    *,
    swift: bool = True,
    since: float | None = None,
    learned: float | None = None,
) -> Choices:
    """The three choices from the probe's round trip (None: unknown), the source's changes
    since the last backup (``since``, for the compression sample) and the upload rate the last
    backup measured (``learned``, bytes/s)."""
    return Choices(
        compression.choose(profile, round_trip, swift=swift, since=since),
        upload_workers.choose(profile, round_trip, swift=swift),
        volume_size.choose(profile, round_trip, swift=swift, learned=learned),
    )
