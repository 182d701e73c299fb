"""End a console script the way Python's own exit does, without freeing every object first.

At exit the interpreter waits for the threads that are not daemons, runs the ``atexit``
functions (logging's flush and close, duplicity's lock file, the gpg-ahead spares,
multiprocessing's workers, ``weakref.finalize``), flushes stdout and stderr, and then tears
down every module and object: 30-50 ms for cfbackup and as much for its duplicity (swiftclient,
requests, duplicity's modules), on the critical path of every run, twice (duplicity's exit,
then cfbackup's). :func:`exit_now` does the first three, in that order, then ``os._exit``.

Only the teardown is skipped: what it would still do is free memory and call the ``__del__``
of objects nobody closed (a file left open would lose its buffered writes; cfbackup's and the
patches' files are closed by ``with`` or by finish/abort, duplicity's by its own cleanup, and
the temporary folders by ``atexit``). Where a step cannot be done as the interpreter would (a
flush fails: the reader of stdout went away; a code that is not a number), the ordinary
``sys.exit`` does the rest, as before.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def exit_now(code: object) -> NoReturn:
    """``sys.exit(code)``, the interpreter's teardown left out."""
    if code is None:
        code = 0
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255:
        sys.exit(code)  # printed or mapped by the interpreter, as ever
    import atexit
    import threading

    shutdown = getattr(threading, "_shutdown", None)  # what the interpreter calls first
    if shutdown is None:
        sys.exit(code)
    shutdown()
    atexit._run_exitfuncs()  # noqa: SLF001 - the interpreter's next step; they run once
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # the interpreter reports it, and exits 120
            sys.exit(code)
    os._exit(code)
