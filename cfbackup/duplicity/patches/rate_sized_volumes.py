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

The files, in the folder ``CFBACKUP_UPLOADS`` names (the run's private scratch folder):

- ``rates``: ``BYTES SECONDS`` a line, appended by whichever duplicity process uploaded (the
  upload pool's workers too); cfbackup keeps the rate in the backup's statistics, where the next
  backup starts from it.
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


def read_rates(folder) -> list:
    """The (bytes, seconds) of each upload written down in ``folder``, oldest first."""
    try:
        with open(os.path.join(folder, RATES)) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        parts = line.split()
        try:
            size, seconds = int(parts[0]), float(parts[1])
        except (IndexError, ValueError):
            continue  # a line being written: the next look reads it whole
        if seconds > 0:
            records.append((size, seconds))
    return records


def rate(records, newest=RECENT) -> "float | None":
    """Bytes per second over the ``newest`` last uploads (all with None); None without any."""
    recent = records[-newest:] if newest else records
    seconds = sum(s for _, s in recent)
    return sum(b for b, _ in recent) / seconds if recent and seconds > 0 else None


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


def _recording(put, folder):
    """``BackendWrapper.put``, writing down how long each upload took (retries included)."""

    def put_and_time(self, source_path, remote_filename=None):
        size = source_path.getsize()  # before: the local backend moves the file away
        start = time.monotonic()
        put(self, source_path, remote_filename)
        seconds = time.monotonic() - start
        line = f"{size} {seconds:.6f}\n".encode()
        try:  # one write of a short line in append mode: lines from several processes stay whole
            fd = os.open(os.path.join(folder, RATES), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError:
            pass  # the rate is advice: the upload itself succeeded

    put_and_time.cfbackup_rate_recorded = True
    return put_and_time


def _sizing(write, folder, state):
    """One of duplicity's volume writers, the size of a volume (``write_multivol`` gives
    ``config.volsize`` last, by position; the signatures and manifest are written with
    ``size=`` and left alone) chosen from the uploads so far."""

    def write_sized(block_iter, *args, **kwargs):
        from duplicity import config, log

        rule = state.setdefault("rule", read_sizes(folder))
        if rule is not None and args and not kwargs and args[-1] == config.volsize:
            small, large, fast = rule
            measured = rate([r for r in read_rates(folder) if r[0] >= small * _MB // 2])
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

    def patch_backend(backend):
        wrapper = backend.BackendWrapper
        if not getattr(wrapper.put, "cfbackup_rate_recorded", False):
            wrapper.put = _recording(wrapper.put, folder)

    after_import("duplicity.backend", patch_backend)
    if in_pool_worker():
        return  # the workers only upload
    state = {}

    def patch_writers(gpg):
        for name in ("GPGWriteFile", "GzipWriteFile", "PlainWriteFile"):
            write = getattr(gpg, name)
            if not getattr(write, "cfbackup_rate_sized", False):
                setattr(gpg, name, _sizing(write, folder, state))

    after_import("duplicity.gpg", patch_writers)
