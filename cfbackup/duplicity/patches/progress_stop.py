"""duplicity's progress thread stops when told to, not after its next sleep (a core patch).

With ``--progress`` duplicity reports from a thread that sleeps ``--progress-rate`` seconds
between reports; at the end of a backup it sets the thread's ``finished`` and joins it, so every
backup that shows progress (an interactive one) ended up to that long after its last upload
(measured: half a second on average with cfbackup's rate of 1 s, up to 3 s with duplicity's
default). The thread now waits on an event that setting ``finished`` sets.
"""

import threading


def applies(env):
    return True


def apply(env):
    from duplicity import config, progress

    genuine = progress.LogProgressThread

    class LogProgressThread(genuine):
        __doc__ = genuine.__doc__

        def __init__(self):
            self._cfbackup_done = threading.Event()
            super().__init__()  # sets finished = False

        @property
        def finished(self):
            return self._cfbackup_done.is_set()

        @finished.setter
        def finished(self, value):
            if value:
                self._cfbackup_done.set()
            else:
                self._cfbackup_done.clear()

        def run(self):  # genuine's, waiting on the event instead of time.sleep
            if not config.dry_run and config.progress and progress.tracker.has_collected_evidence():
                while not self.finished:
                    progress.tracker.log_upload_progress()
                    self._cfbackup_done.wait(config.progress_rate)

    progress.LogProgressThread = LogProgressThread
