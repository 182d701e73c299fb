"""Volumes fetched from a backup's target into a directory, several at once, each checked
against the hash its manifest records and, on request, decrypted and read as a tar, or kept in
clear as it downloads.

Apart from ``volumes.py`` (what a chain holds and which volumes a path needs) because it is the
one part that moves bytes and judges them: its threads, retries, disk-full and gpg handling
concern the three callers that download (``verify --read-data``, ``drill``, the restore
prefetch), not the ones that only read a chain.

``verify --read-data`` fetches a subset of every volume and keeps none of them; ``drill`` keeps
the volumes a sample of files needs as a local copy that duplicity restores from through a
``file://`` URL; the restore prefetch keeps each in clear (``fetch(..., clear=keys)``),
decrypted while it downloads. The hash a manifest records (SHA1 in duplicity 3.2) is that of
the encrypted object, the check duplicity makes before it restores from a volume. Decryption is
``volume_keys.py``'s: the passphrase reaches gpg on a pipe (``--passphrase-fd``), never its
command line.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import tarfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from cfbackup import workpool
from cfbackup.errors import BackendError, CfbackupError, ExitCode
from cfbackup.stores import FileSink, Missing, Stopped, Store
from cfbackup.volume_keys import Keys, Undecryptable, Unsigned, clear_name
from cfbackup.volumes import VolumeRef

log = logging.getLogger("cfbackup")

# Downloads at once: Swift serves each object from one connection at a few tens of MB/s, and
# gpg decrypts a 50 MB volume in about half a second of one core (measured, docs/checks.md)
DEFAULT_WORKERS = 4

MISSING, CORRUPT, UNDECRYPTABLE, UNREADABLE = "missing", "corrupt", "undecryptable", "unreadable"
UNSIGNED = "unsigned"
PROBLEMS = {
    MISSING: "is missing at the target",
    CORRUPT: "is corrupt (its {hash} differs from the one in the manifest)",
    UNDECRYPTABLE: "does not decrypt",
    UNREADABLE: "decrypts but is not a readable tar",
    UNSIGNED: "decrypts but has no good signature by the profile's sign_key",
}


class CopyNotWritten(CfbackupError):
    """A volume's local copy could not be written (a full disk, mostly). It happens inside the
    download, where it read as "cannot reach Swift" and was tried again, and inside gpg, where
    it read as a volume that does not decrypt: neither is what a user must fix."""

    def __init__(self, path: Path, error: OSError):
        super().__init__(
            f"writing a copy of {path.name.removesuffix('.part')} under {path.parent} failed "
            f"({error.strerror or error}): free some space there or set tempdir to a larger "
            "disk (for a restore, restore_prefetch = 0 also does without the copy).",
            exit_code=ExitCode.DUPLICITY,
        )


@dataclasses.dataclass
class Outcome:
    """What became of one volume: ``problem`` is None when it arrived intact."""

    ref: VolumeRef
    problem: str | None = None
    detail: str = ""
    bytes: int = 0
    seconds: float = 0.0
    path: Path | None = None  # the kept copy (as stored, or in clear with ``clear``)
    keys: bool = False  # undecryptable because of the keys or the passphrase (gpg's words)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        """``volume NAME (volume 3 of the full backup of ...) is missing at the target``."""
        what = PROBLEMS[self.problem].format(hash=self.ref.hash[0] if self.ref.hash else "hash")
        where = f"{self.ref.chain}/" if self.ref.chain else ""
        shown = self.detail and self.problem in (UNDECRYPTABLE, UNREADABLE, UNSIGNED)  # gpg's
        detail = f" ({self.detail})" if shown else ""
        return (
            f"volume {where}{self.ref.name} (volume {self.ref.number} of the {self.ref.set_label})"
            f" {what}{detail}"
        )


def fetch(
    store: Store,
    refs: Iterable[VolumeRef],
    directory: Path,
    *,
    keys: Keys | None = None,
    keep: bool = True,
    clear: Keys | None = None,
    workers: int = DEFAULT_WORKERS,
    stop: threading.Event | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    retry: tuple[int, float] = (1, 0.0),
    action: str = "fetch",
) -> list[Outcome]:
    """Download ``refs`` into ``directory`` (up to ``workers`` at once), check each against
    its manifest hash, and with ``keys`` decrypt it and read it as a tar. ``keep``: leave the
    intact volumes there under their own names (a copy duplicity can restore from); otherwise
    delete each once checked. ``clear`` (not with ``keys``): keep each in clear instead
    (without its .gpg/.gz), decrypted with these keys as it downloads; it is there only once
    its hash matched and it decrypted (else UNDECRYPTABLE). Outcomes come back in the order
    of ``refs``; a volume not fetched because ``stop`` was set has no outcome: set by the
    caller (a drill's --max-duration), it also ends the downloads in progress at once, even one
    stalled on the network (``store.abort()``, for good: the store downloads nothing more). A
    Swift failure
    (unreachable, refused) is tried again, ``retry`` = (tries, seconds between them;
    ``commands.retry_policy``, as duplicity would), announced for ``action``; then it raises.
    A bad volume does not."""
    if keys is not None and clear is not None:
        raise ValueError("fetch: keys (read as a tar) and clear (kept in clear) exclude each other")
    refs = list(refs)
    stop = stop or threading.Event()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    results: dict[int, Outcome] = {}

    def one(position: int, ref: VolumeRef) -> None:
        tries, delay = retry
        for attempt in range(1, tries + 1):
            if stop.is_set():
                return
            try:
                outcome = _fetch_one(store, ref, directory, keys, keep, clear, stop)
                break
            except BackendError as error:
                if attempt == tries:
                    raise
                announce_retry(action, ref.name, delay, attempt + 1, tries, error)
                if stop.wait(delay):
                    return
        if outcome is not None:
            results[position] = outcome
            if on_outcome:
                on_outcome(outcome)

    def halt() -> None:  # a failure, Ctrl-C/SIGTERM, or the caller's stop: the batch is over
        stop.set()
        store.abort()  # a download stalled on the link must not hold the caller up

    workpool.run_all(
        [functools.partial(one, i, ref) for i, ref in enumerate(refs)],
        workers=workers,
        name="fetch",
        halt=halt,
        stop=stop,
    )
    return [results[i] for i in sorted(results)]


def announce_retry(
    action: str, name: str, delay: float, attempt: int, tries: int, error: Exception
) -> None:
    """On stderr, as duplicity announces its own retries: a slow run is never a silent one."""
    log.warning(
        "%s: fetching %s failed, trying again in %g s (try %d of %d): %s",
        action,
        name,
        delay,
        attempt,
        tries,
        error,
    )


def _fetch_one(
    store: Store,
    ref: VolumeRef,
    directory: Path,
    keys: Keys | None,
    keep: bool,
    clear: Keys | None,
    stop: threading.Event,
) -> Outcome | None:
    """One try at one volume: its bytes go to a sink (as they are, or decrypted as they arrive
    with ``clear``) while they are hashed, under a ``.part`` name that becomes the volume's
    only when the hash matched and the sink finished well. A new try starts a new sink."""
    started = time.monotonic()
    outcome = Outcome(ref)
    final = directory / (clear_name(ref.name) if clear else ref.name)
    part = final.with_name(f"{final.name}.part")
    digest = hashlib.new(ref.hash[0].lower()) if ref.hash else None
    sink = clear.decrypting(ref.name, part) if clear else FileSink(part)
    downloaded = None
    try:

        def write(chunk: bytes) -> None:
            if digest is not None:
                digest.update(chunk)
            try:
                sink.write(chunk)
            except OSError as error:  # raised inside the download: not Swift's fault
                raise CopyNotWritten(part, error) from None
            outcome.bytes += len(chunk)

        store.download(ref.name, write, stop)
        downloaded = time.monotonic()
        if digest is not None and digest.hexdigest() != ref.hash[1].lower():
            outcome.problem = CORRUPT  # before what gpg says: damaged bytes may not decrypt
            outcome.detail = f"{ref.hash[0]} {digest.hexdigest()}, manifest {ref.hash[1]}"
        else:
            try:
                sink.finish()
            except OSError as error:
                raise CopyNotWritten(part, error) from None
            except Undecryptable as error:
                if stop.is_set():  # a Ctrl-C reaches gpg too
                    raise Stopped from None
                outcome.problem, outcome.detail = UNDECRYPTABLE, str(error)
                outcome.keys = error.keys
            else:
                if keys is not None:
                    _check_contents(keys, part, ref.name, outcome)
    except Missing:
        outcome.problem = MISSING
    except Stopped:
        sink.abort()
        return None
    except BaseException:
        sink.abort()
        raise
    outcome.seconds = time.monotonic() - started
    if keep and outcome.ok:
        outcome.path = final
        os.replace(part, final)
    else:
        sink.abort()
    ready = time.monotonic() - downloaded if outcome.ok else None
    after = f", ready {ready:.3f} s after its last byte" if ready is not None else ""
    log.debug(
        "volume %s: %s (%d bytes, %.1f s%s) %s",
        ref.key,
        outcome.problem or "intact",
        outcome.bytes,
        outcome.seconds,
        after,
        outcome.detail,
    )
    return outcome


def _check_contents(keys: Keys, path: Path, name: str, outcome: Outcome) -> None:
    """Decrypt the volume and walk its tar to the end; the clear copy is deleted at once."""
    plain = path.with_name(path.name + ".tar")
    try:
        try:
            keys.decrypt_file(path, name, plain)
        except Undecryptable as error:
            if isinstance(error, Unsigned):
                outcome.problem, outcome.detail = UNSIGNED, error.found
            else:
                outcome.problem, outcome.detail = UNDECRYPTABLE, str(error)
            return
        try:
            with tarfile.open(plain, "r:") as archive:
                for _member in archive:
                    pass
        except (tarfile.TarError, OSError, EOFError) as error:
            outcome.problem, outcome.detail = UNREADABLE, str(error)
    finally:
        plain.unlink(missing_ok=True)
