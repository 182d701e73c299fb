"""Loaded by duplicity's interpreter when cfbackup starts it: this folder is last on its
PYTHONPATH (``cfbackup/duplicity/run.py``). Plain Python, no cfbackup imports but the
standard-library-only ``cfbackup.servicenet`` when asked for. The one way
cfbackup and its plugins change anything inside duplicity's process:

1. With Swift v1 auth (tempauth, Rackspace: ``SWIFT_AUTHVERSION=1``) swiftclient never uses
   python-keystoneclient, yet importing swiftclient imports it and oslo.utils when installed:
   0.2 s of every duplicity run (``python -X importtime``), a tenth of a one-file restore. The
   import is refused (swiftclient catches the ImportError and keeps its v1 path); Keystone runs
   are untouched.
2. A v1 profile with ``interface = "internal"`` (Rackspace ServiceNet) gets swiftclient's
   storage URL rewritten (``cfbackup/servicenet.py``, standard library only).
3. The files a plugin names for this run (``CFBACKUP_DUPLICITY_STARTUP``, set through
   ``run.startup_file``) run next, e.g. quota_guard's sized uploads.
4. Then the sitecustomize this one shadows, if any (Debian ships one), as if it were first.
"""

import importlib.machinery
import importlib.util
import os
import runpy
import sys

if os.environ.get("SWIFT_AUTHVERSION") in ("1", "1.0") and "keystoneclient" not in sys.modules:
    sys.modules["keystoneclient"] = None

if os.environ.get("CFBACKUP_SWIFT_SERVICENET") == "1":  # v1 with interface internal
    from cfbackup import servicenet

    servicenet.install()

for _file in filter(None, os.environ.get("CFBACKUP_DUPLICITY_STARTUP", "").split(os.pathsep)):
    runpy.run_path(_file, run_name="cfbackup_duplicity_startup")


def _chain_next_sitecustomize():
    here = os.path.dirname(os.path.abspath(__file__))
    absolute = [os.path.abspath(p or os.curdir) for p in sys.path]
    after = sys.path[absolute.index(here) + 1 :] if here in absolute else sys.path
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", after)
    if spec is not None and spec.loader is not None and spec.origin != __file__:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_chain_next_sitecustomize()
