"""duplicity's upload pool (``--concurrency``) without its waits, started only for a backup
that has a second volume, and without orphans (a core patch).

With ``--concurrency N`` duplicity builds the next volume while N processes of its
``backend_pool`` upload the previous ones. In duplicity 3.2.1 that cost more than it overlapped
(docs/performance.md), for reasons this patch removes:

1. After the last volume, duplicity polls the pool with ``time.sleep(2)`` until no upload is
   left: up to 2 s lost per backup. ``dup_main`` sees a ``time`` whose ``sleep`` returns as soon
   as an upload of a live pool finishes (at the latest after the same 2 s).
2. The pool collects finished uploads with ``as_completed(..., timeout=0.1)``, twice per
   volume: the process that builds volumes stood still 0.2 s a volume while an upload ran. It
   now takes the finished ones without waiting.
3. The worker processes ("spawn": each a fresh interpreter that imports duplicity, cfbackup's
   patches and the swift backend, then authenticates: about 0.5 s of CPU) start when the
   backup is known to have a second volume: once the first volume is half written (the point
   where the gpg-ahead patch starts the next volume's gpg; a volume that is not a set's last is
   full), while the rest of it is built, or at the latest when such a volume is handed to the
   pool. duplicity started them only when the first volume was ready, so their start-up came
   on top; started with the pool instead, they cost every incremental and no-change run (one
   small volume) 0.2-0.3 s at 20 ms. A set whose only volume ends before half of it is
   uploaded by duplicity's own process, as without ``--concurrency``, and nothing is started:
   neither a worker nor the pool's resource tracker (``backend_pool`` sees a
   ``concurrent.futures`` whose ``ProcessPoolExecutor`` is made when the first worker is).
4. duplicity queues one volume more than the pool has workers. Its local manifest records an
   upload only when duplicity collects it (after building the next volume), so it could fall
   two volumes behind the target, and a backup killed then could not resume (duplicity
   resumes one volume back; else "Impossible backup state", and the set starts again). A
   volume is now handed over once a worker is free: with one worker a killed backup resumes
   (``tests/faults/test_kill.py`` on loopback, 1 MB volumes: 6 runs of 6; 1 of 6 with the
   extra volume queued and the workers starting late). Building still overlaps uploading; only
   a volume built faster than the one before it uploads waits for that upload.
   That left one window: duplicity hands volume N over, then records N-1 (whose upload it
   waited for) in its manifest. When N's upload ended first (duplicity's process held up
   there, as on a loaded CI machine: the target two volumes ahead of the manifest once in
   about ten suite runs), a kill in between lost the resume. Volume N is now held back and
   handed over once duplicity has recorded N-1: when it starts writing the next volume, or
   asks how many uploads are left after the last (after the manifest's flush and fsync, a
   millisecond or two later). This holds for one worker (what upload_workers "auto" runs
   across a network); with more, N-1 may still be uploading when N is handed over, as in
   duplicity.
5. duplicity handed the next volume to the pool before it looked at the upload it had waited
   for: when that upload had failed for good (Swift gone), the next one was already running
   and ran its retries too before duplicity could stop (about a minute more with the
   defaults). A failed upload now ends the backup before anything else is handed over.
6. A worker's log went to stderr only: duplicity's ``--log-fd`` is not passed to "spawn"
   processes, so cfbackup never saw a worker's "Attempt of put Nr. 1 failed" as it happened
   (nor its warnings and errors as records). Each worker opens duplicity's log descriptor
   again (``/proc/PID/fd/N``, named in :data:`LOG_ENV`) and writes its warnings and errors
   there too. Two records that are each shorter than the pipe's atomic write (4 KiB) never
   interleave; a worker's are (its tracebacks are debug records, which stay on stderr).

A worker is not killed with duplicity: killed without its ``finally`` (SIGTERM, SIGKILL) it
would leave them waiting for work for ever. Each worker asks the kernel for a SIGTERM when
duplicity dies, as cfbackup does for duplicity (``cfbackup.execute``). The other patches reach
the workers because they run the launcher again (``cfbackup/duplicity/launcher.py``); a worker
started late gets duplicity's environment as it was at the start (no patch changes it after).
"""

import os
import time
import weakref

LOG_ENV = "CFBACKUP_POOL_LOG"  # "PID:FD": duplicity's machine-readable log, for its workers
_live = weakref.WeakSet()  # the BackendPools not yet shut down (one per duplicity process)
_set_ends = False  # the volume written last ended its backup set (duplicity's at_end)


class _Time:
    """``time`` as ``dup_main`` sees it: ``sleep`` ends when an upload of a live pool ends."""

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds):
        _hand_over_all()
        pending = [future for pool in list(_live) for future in pool._command_queue]
        if not pending:
            time.sleep(seconds)
            return
        import concurrent.futures

        concurrent.futures.wait(
            pending, timeout=seconds, return_when=concurrent.futures.FIRST_COMPLETED
        )


class _Unstarted:
    """A pool's ProcessPoolExecutor before its first worker is needed: its arguments only."""

    def __init__(self, max_workers=None, **kwargs):
        self.kwargs = dict(kwargs, max_workers=max_workers)
        self._max_workers = max_workers or os.cpu_count() or 1  # what BackendPool reads

    def shutdown(self, wait=True, *, cancel_futures=False):
        pass


class _Futures:
    """``concurrent.futures`` as ``backend_pool`` sees it: the pool's executor is made when
    its first worker is (:func:`_start`)."""

    ProcessPoolExecutor = _Unstarted

    def __getattr__(self, name):
        import concurrent.futures

        return getattr(concurrent.futures, name)


class _Concurrent:
    futures = _Futures()


def _start(pool, why: str) -> None:
    """Start the pool's workers, all at once (one process is spawned per task nobody idles
    for), unless they are."""
    import concurrent.futures

    from duplicity import log

    unstarted = pool.ppe
    if not isinstance(unstarted, _Unstarted):
        return
    pool.ppe = concurrent.futures.ProcessPoolExecutor(**unstarted.kwargs)
    for _ in range(pool.ppe._max_workers):
        pool.ppe.submit(os.getpid)
    log.Debug(f"upload-pool: {pool.ppe._max_workers} upload process(es) started: {why}")


def _unstarted_pool():
    return next((p for p in list(_live) if isinstance(p.ppe, _Unstarted)), None)


class _Blocks:
    """The tar blocks a volume is written from (duplicity's block iterator, unchanged): the
    pool's workers start once half a volume of them went by."""

    def __init__(self, blocks, half: int, pool):
        self._blocks, self._half, self._pool, self._read = blocks, half, pool, 0

    def __getattr__(self, name):
        return getattr(self._blocks, name)

    def __iter__(self):
        return self

    def __next__(self):
        block = self._blocks.__next__()
        if self._pool is not None:
            self._read += len(block.data)
            if self._read >= self._half:
                pool, self._pool = self._pool, None
                _start(pool, "half a volume written, so the backup has another one")
        return block


def _watching(write):
    """One of duplicity's volume writers (``gpg.GPGWriteFile``, ``GzipWriteFile``,
    ``PlainWriteFile``: same first argument, same result), telling the pool what it needs."""

    def write_volume(block_iter, *args, **kwargs):
        global _set_ends
        _hand_over_all()  # the volume before this one is in duplicity's manifest by now
        pool = _unstarted_pool()
        if pool is not None and not isinstance(block_iter, _Blocks):
            from duplicity import config

            block_iter = _Blocks(block_iter, config.volsize // 2, pool)
        at_end = write(block_iter, *args, **kwargs)
        _set_ends = bool(at_end)
        return at_end

    write_volume.__doc__ = write.__doc__
    write_volume.cfbackup_upload_pool = True
    return write_volume


def _run_here(pool, func_name, args, kwds):
    """Run the pool's command in this process, as duplicity runs an upload without
    ``--concurrency`` (an error ends the backup the same way), and queue its record as a
    finished command, where ``collect_put_results`` takes it."""
    import concurrent.futures
    import datetime

    from duplicity import backend_pool, config, log

    pool._track_id += 1
    record = backend_pool.TrackRecord(pool._track_id, os.getpid(), log_prefix=log.PREFIX)
    record.result = getattr(config.backend, func_name)(*args, **(kwds or {}))
    record.stop_time = datetime.datetime.now()
    done = concurrent.futures.Future()
    done.set_result(record)
    pool._command_queue.append(done)
    log.Debug(
        "upload-pool: the set's only volume was uploaded by duplicity itself, no upload "
        "process started"
    )
    return pool._track_id


def _collect_finished_cmds(self):
    """BackendPool's, without the 0.1 s wait for uploads still running."""
    for future in [f for f in self._command_queue if f.done()]:
        record = future.result()
        self._raise_exception_if_any(record)
        self.all_results.append(record)
        self._all_futures.append(future)
        self._command_queue.remove(future)
        self.peak_in_queue = max(self.peak_in_queue, len(self._command_queue))


def _hold(pool, func_name, args):
    """Keep a volume's upload until duplicity has recorded the one before it (4. above); its
    track id is the one ``command`` would have given it."""
    pool._track_id += 1
    pool.cfbackup_held = (pool._track_id, func_name, args)
    return pool._track_id


def _hand_over(pool) -> None:
    """Hand the held upload, if any, to the pool's workers, as ``BackendPool.command`` does."""
    held, pool.cfbackup_held = getattr(pool, "cfbackup_held", None), None
    if held is not None:
        from duplicity import backend_pool

        track_id, func_name, args = held
        pool._command_queue.append(
            pool.ppe.submit(backend_pool.track_cmd, track_id, func_name, *args)
        )


def _hand_over_all() -> None:
    for pool in list(_live):
        _hand_over(pool)


def _patch_pool(backend_pool):
    pool = backend_pool.BackendPool
    init, shutdown, command = pool.__init__, pool.shutdown, pool.command
    throttled, get_queue_length = pool.command_throttled, pool.get_queue_length
    if getattr(init, "cfbackup_patched", False):
        return

    def lazy_init(self, *args, **kwargs):
        global _set_ends
        _set_ends = False
        fd = _machine_log_fd()  # the workers inherit the environment as it is when they start
        if fd is not None:
            os.environ[LOG_ENV] = f"{os.getpid()}:{fd}"
        else:
            os.environ.pop(LOG_ENV, None)
        init(self, *args, **kwargs)  # its executor is an _Unstarted
        _live.add(self)

    def command_started(self, func_name, args=(), kwds=None):
        if isinstance(self.ppe, _Unstarted):
            if _set_ends:
                return _run_here(self, func_name, args, kwds)
            _start(self, "a volume that is not its set's last is ready")
        else:
            self._collect_finished_cmds()  # a failed upload ends it here (5. above)
        if getattr(self, "cfbackup_holding", False):
            return _hold(self, func_name, args)
        return command(self, func_name, args, kwds)

    def command_throttled(self, func_name, commands_in_buffer=1, args=(), kwds=None):
        _hand_over(self)
        self.cfbackup_holding = True  # duplicity's volumes: see 4. above
        try:
            return throttled(self, func_name, 0, args, kwds)
        finally:
            self.cfbackup_holding = False

    def queue_length(self):
        _hand_over(self)  # after the last volume: duplicity has recorded the one before
        return get_queue_length(self)

    def shutdown_and_forget(self, *args, **kwargs):
        _live.discard(self)
        self.cfbackup_held = None  # the backup ended before its upload was handed over
        return shutdown(self, *args, **kwargs)

    lazy_init.cfbackup_patched = True
    backend_pool.concurrent = _Concurrent()
    pool.__init__ = lazy_init
    pool.command = command_started
    pool.command_throttled = command_throttled
    pool.get_queue_length = queue_length
    pool.shutdown = shutdown_and_forget
    pool._collect_finished_cmds = _collect_finished_cmds


def _machine_log_fd():
    """The descriptor duplicity's ``--log-fd`` records go to in this process, None without."""
    from cfbackup.duplicity.patches import machine_log_handlers

    handlers = machine_log_handlers()
    return handlers[0].stream.fileno() if handlers else None


def _log_to_duplicity(backend_pool):
    """In a worker: its warnings and errors also go to duplicity's machine-readable log (6.
    above), from before it connects to Swift (a failed connection is an error there too).
    Without it, or when that log is not cfbackup's pipe, they stay on stderr."""
    init = backend_pool.BackendPool._process_init

    def process_init(url_string, config_dump):
        _add_machine_log()
        init(url_string, config_dump)

    backend_pool.BackendPool._process_init = staticmethod(process_init)


def _add_machine_log():
    import stat

    from duplicity import log

    pid, _, fd = os.environ.get(LOG_ENV, "").partition(":")
    if not pid.isdigit() or not fd.isdigit() or int(pid) != os.getppid():
        return  # no log descriptor, or another process's
    try:
        own = os.open(f"/proc/{pid}/fd/{fd}", os.O_WRONLY | os.O_CLOEXEC)
    except OSError as error:  # a /proc that is not there or not ours to open
        log.setup()
        log.Notice(f"upload-pool: this process's records stay on stderr: {error}")
        return
    if not stat.S_ISFIFO(os.fstat(own).st_mode):  # a file given by hand: never written over
        os.close(own)
        return
    log.setup()  # what duplicity's set-up of the worker does first (it runs once)
    log.add_fd(own)
    # warnings and errors only (duplicity numbers its levels its own way): see 6. above
    log._logger.handlers[-1].setLevel(log.DupToLoggerLevel(log.WARNING))


def _patch_dup_main(dup_main):
    dup_main.time = _Time()


def _patch_writers(gpg):
    for name in ("GPGWriteFile", "GzipWriteFile", "PlainWriteFile"):
        write = getattr(gpg, name)
        if not getattr(write, "cfbackup_upload_pool", False):
            setattr(gpg, name, _watching(write))


def _die_with_parent():
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    import multiprocessing

    parent = multiprocessing.parent_process()  # died before the line above: no signal comes
    if parent is not None and os.getppid() != parent.pid:
        os._exit(1)


def applies(env):
    return True


def apply(env):
    from cfbackup.duplicity.patches import after_import, in_pool_worker

    if in_pool_worker():
        _die_with_parent()
        after_import("duplicity.backend_pool", _log_to_duplicity)
        return
    after_import("duplicity.backend_pool", _patch_pool)
    after_import("duplicity.dup_main", _patch_dup_main)
    after_import("duplicity.gpg", _patch_writers)
