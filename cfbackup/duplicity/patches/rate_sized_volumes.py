"""Each upload's rate is written down, and with ``volsize = "auto"`` across a network each
volume is sized from the rate of the uploads before it (a core patch).

A one-file restore downloads the whole volume that holds the file: a 20 MB volume takes 3.5 s at
48 Mbit/s, where restic restored the file in 2.0 s (docs/performance.md), and 0.8 s at
200 Mbit/s. cfbackup's probe times a round trip, which does not tell a slow link from a fast one;
the uploads do. So when cfbackup leaves the size to this patch (the ``sizes`` file below), the
backup starts with the size cfbackup chose (the small one unless an earlier backup measured the
link: ``cfbackup/volume_size.py``), and each volume duplicity starts is the large size if the
uploads that finished in this run went at the "fast" rate or more (the newest
:data:`RECENT`), else the small one. Only uploads of at least half a small volume count: a
smaller one measures the round trip more than the rate.

The rate is what a whole volume's transfer took: each PUT that Swift answered with success
(``swiftclient.client.put_object``: one attempt, a retry's wait not included), its bytes over the
time from its request to Swift's answer, round trip and TCP's slow start
included, which a restore's download of a volume pays too. Uploads that ran side by side (split
chains, ``upload_workers`` 2 or more) count the time any of them ran once: they share the link.

The files, in the folder ``CFBACKUP_UPLOADS`` names (the run's private scratch folder):

- ``rates``: ``BYTES START END`` a line (``time.monotonic``, one clock for every process of the
  machine), appended by whichever duplicity process uploaded (the upload pool's workers too);
  cfbackup keeps the rate in the backup's statistics, where the next backup starts from it.
- ``sizes``: ``SMALL_MB LARGE_MB FAST_BYTES_PER_SECOND``, written by cfbackup before duplicity
  gets its arguments. Without it ``--volsize`` stands for every volume.

duplicity reads ``config.volsize`` for each volume (``dup_main.write_multivol``); the writers are
wrapped outermost, so the gpg-ahead and upload-pool patches see the size of the volume at hand.
A set's volumes may then differ in size: duplicity's manifest records each volume's range, not
its size, and restores, verifies and resumes read nothing else.
"""

import os
import time

ENV = "CFBACKUP_UPLOADS"
RATES = "rates"
SIZES = "sizes"
RECENT = 3  # uploads: the rate of the newest few follows a link that changes
_MB = 1024 * 1024


def read_rates(folder, tail: int = 0) -> list:
    """The (bytes, start, end) of each upload written down in ``folder``, oldest first; with
    ``tail``, only those in its last ``tail`` bytes (before each volume: the file grows with the
    backup). A line still being written is left for the next look."""
    try:
        with open(os.path.join(folder, RATES), "rb") as handle:
            cut = max(0, os.fstat(handle.fileno()).st_size - tail) if tail else 0
            handle.seek(cut)
            lines = handle.read().decode("ascii", "replace").split("\n")
    except OSError:
        return []
    records = []
    # the first line of a tail may be cut; what follows the last newline is not whole yet
    for line in lines[1 if cut else 0 : -1]:
        try:
            size, start, end = line.split()
            record = (int(size), float(start), float(end))
        except ValueError:
            continue
        if record[2] > record[1]:
            records.append(record)
    return records


def rate(records, newest=RECENT) -> "float | None":
    """Bytes per second over the ``newest`` last uploads (all with None): their bytes over the
    time at least one of them ran; None without any."""
    recent = sorted(records[-newest:] if newest else records, key=lambda r: r[1])
    busy, until = 0.0, None
    for _, start, end in recent:
        if until is None or start >= until:
            busy += end - start
            until = end
        elif end > until:
            busy += end - until
            until = end
    return sum(r[0] for r in recent) / busy if recent and busy > 0 else None


def measurable(records, small_mb: int) -> list:
    """The uploads of at least half a small volume: a smaller one measures the round trip more
    than the rate."""
    return [r for r in records if r[0] >= small_mb * _MB // 2]


def read_sizes(folder) -> "tuple | None":
    """(small MB, large MB, fast bytes/s) cfbackup wrote, or None: ``--volsize`` stands."""
    try:
        with open(os.path.join(folder, SIZES)) as handle:
            small, large, fast = handle.read().split()
        return int(small), int(large), float(fast)
    except (OSError, ValueError):
        return None


def write_sizes(folder, small: int, large: int, fast: float) -> None:
    with open(os.path.join(folder, SIZES), "w") as handle:
        handle.write(f"{small} {large} {fast:.0f}\n")


def _recording(put_object, folder):
    """swiftclient's ``put_object`` (one HTTP request), writing down when each upload of a
    known length ran, if Swift accepted it."""

    def put_object_timed(*args, **kwargs):
        start = time.monotonic()
        etag = put_object(*args, **kwargs)
        end = time.monotonic()
        size = kwargs.get("content_length")
        if size:
            line = f"{size} {start:.6f} {end:.6f}\n".encode()
            try:  # one write of a short line in append mode: lines of several processes stay whole
                fd = os.open(
                    os.path.join(folder, RATES), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600
                )
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
            except OSError:
                pass  # the rate is advice: the upload itself succeeded
        return etag

    put_object_timed.cfbackup_rate_recorded = True
    return put_object_timed


def _sizing(write, folder, state):
    """One of duplicity's volume writers, the size of a volume (``write_multivol`` gives
    ``config.volsize`` last, by position; the signatures and manifest are written with
    ``size=`` and left alone) chosen from the uploads so far."""

    def write_sized(block_iter, *args, **kwargs):
        from duplicity import config, log

        if "rule" not in state:
            state["rule"] = read_sizes(folder)
        rule = state["rule"]
        if rule is not None and args and not kwargs and args[-1] == config.volsize:
            small, large, fast = rule
            recent = read_rates(folder, tail=4096)  # a line is about 40 bytes
            measured = rate(measurable(recent, small))
            if measured is not None:
                size = (large if measured >= fast else small) * _MB
                if size != config.volsize:
                    log.Info(
                        f"rate-sized-volumes: volumes of {size // _MB} MB from now on: uploads "
                        f"ran at {measured * 8 / 1e6:.0f} Mbit/s"
                    )
                    config.volsize = size
                    args = (*args[:-1], size)
        return write(block_iter, *args, **kwargs)

    write_sized.__doc__ = write.__doc__
    write_sized.cfbackup_rate_sized = True
    return write_sized


def applies(env):
    return bool(env.get(ENV))


def apply(env):
    from cfbackup.duplicity.patches import after_import, in_pool_worker

    folder = env[ENV]

    def patch_swiftclient(client):
        if not getattr(client.put_object, "cfbackup_rate_recorded", False):
            client.put_object = _recording(client.put_object, folder)

    after_import("swiftclient.client", patch_swiftclient)
    if in_pool_worker():
        return  # the workers only upload
    state = {}

    def patch_writers(gpg):
        for name in ("GPGWriteFile", "GzipWriteFile", "PlainWriteFile"):
            write = getattr(gpg, name)
            if not getattr(write, "cfbackup_rate_sized", False):
                setattr(gpg, name, _sizing(write, folder, state))

    after_import("duplicity.gpg", patch_writers)
