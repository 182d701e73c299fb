"""duplicity's upload pool (``--concurrency``) without its waits, and without orphans (a core
patch).

With ``--concurrency N`` duplicity builds the next volume while N processes of its
``backend_pool`` upload the previous ones. In duplicity 3.2.1 that cost more than it overlapped
(docs/performance.md), for three reasons this patch removes:

1. After the last volume, duplicity polls the pool with ``time.sleep(2)`` until no upload is
   left: up to 2 s lost per backup. ``dup_main`` sees a ``time`` whose ``sleep`` returns as soon
   as an upload of a live pool finishes (at the latest after the same 2 s).
2. The pool collects finished uploads with ``as_completed(..., timeout=0.1)``, twice per
   volume: the process that builds volumes stood still 0.2 s a volume while an upload ran. It
   now takes the finished ones without waiting.
3. The worker processes start ("spawn": a fresh interpreter that imports duplicity, cfbackup's
   patches and the swift backend, then authenticates) only when the first volume is ready, so
   their start-up came on top. They now start with the pool, while the first volume is built.

A worker is not killed with duplicity: killed without its ``finally`` (SIGTERM, SIGKILL) it
would leave them waiting for work for ever. Each worker asks the kernel for a SIGTERM when
duplicity dies, as cfbackup does for duplicity (``cfbackup.execute``). The other patches reach
the workers because they run the launcher again (``cfbackup/duplicity/launcher.py``).
"""

import time
import weakref

_live = weakref.WeakSet()  # the BackendPools not yet shut down (one per duplicity process)


class _Time:
    """``time`` as ``dup_main`` sees it: ``sleep`` ends when an upload of a live pool ends."""

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds):
        pending = [future for pool in list(_live) for future in pool._command_queue]
        if not pending:
            time.sleep(seconds)
            return
        import concurrent.futures

        concurrent.futures.wait(
            pending, timeout=seconds, return_when=concurrent.futures.FIRST_COMPLETED
        )


def _collect_finished_cmds(self):
    """BackendPool's, without the 0.1 s wait for uploads still running."""
    for future in [f for f in self._command_queue if f.done()]:
        record = future.result()
        self._raise_exception_if_any(record)
        self.all_results.append(record)
        self._all_futures.append(future)
        self._command_queue.remove(future)
        self.peak_in_queue = max(self.peak_in_queue, len(self._command_queue))


def _patch_pool(backend_pool):
    import os

    pool = backend_pool.BackendPool
    init, shutdown = pool.__init__, pool.shutdown
    if getattr(init, "cfbackup_patched", False):
        return

    def started_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        _live.add(self)
        for _ in range(self.ppe._max_workers):  # one process spawned per task nobody idles for
            self.ppe.submit(os.getpid)

    def shutdown_and_forget(self, *args, **kwargs):
        _live.discard(self)
        return shutdown(self, *args, **kwargs)

    started_init.cfbackup_patched = True
    pool.__init__ = started_init
    pool.shutdown = shutdown_and_forget
    pool._collect_finished_cmds = _collect_finished_cmds


def _patch_dup_main(dup_main):
    dup_main.time = _Time()


def _die_with_parent():
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    import multiprocessing
    import os

    parent = multiprocessing.parent_process()  # died before the line above: no signal comes
    if parent is not None and os.getppid() != parent.pid:
        os._exit(1)


def applies(env):
    return True


def apply(env):
    from cfbackup.duplicity.patches import after_import, in_pool_worker

    if in_pool_worker():
        _die_with_parent()
        return
    after_import("duplicity.backend_pool", _patch_pool)
    after_import("duplicity.dup_main", _patch_dup_main)
