"""Loaded by duplicity's interpreter when cfbackup starts it: this folder is last on its
PYTHONPATH (``cfbackup/duplicity/run.py``). Plain Python, no cfbackup imports but the
standard-library-only ``cfbackup.servicenet`` when asked for. The one way
cfbackup and its plugins change anything inside duplicity's process:

1. With Swift v1 auth (tempauth, Rackspace: ``SWIFT_AUTHVERSION=1``) swiftclient never uses
   python-keystoneclient, yet importing swiftclient imports it and oslo.utils when installed:
   0.2 s of every duplicity run (``python -X importtime``), a tenth of a one-file restore. The
   import is refused (swiftclient catches the ImportError and keeps its v1 path); Keystone runs
   are untouched.
2. Upload progress counts what was uploaded. duplicity's ``--progress`` adds up the bytes a
   backend reports (``progress.report_transfer``); the local backend reports, the swift backend
   does not, so every progress record of a Swift backup said "0 bytes" (and its estimate
   stayed at 0% until the end). Each upload that reported nothing is counted once it is done.
3. A v1 profile with ``interface = "internal"`` (Rackspace ServiceNet) gets swiftclient's
   storage URL rewritten (``cfbackup/servicenet.py``, standard library only).
4. The files a plugin names for this run (``CFBACKUP_DUPLICITY_STARTUP``, set through
   ``run.startup_file``) run next, e.g. quota_guard's sized uploads.
5. Then the sitecustomize this one shadows, if any (Debian ships one), as if it were first.
"""

import importlib.abc
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



def _count_uploads(backend_module):
    """Wrap ``BackendWrapper.put``: an upload the backend did not report is reported after."""
    from duplicity import progress

    wrapper = backend_module.BackendWrapper
    put = wrapper.put

    def put_counted(self, source_path, remote_filename=None):
        tracker = progress.tracker
        before = tracker.total_bytecount if tracker is not None else None
        size = source_path.getsize()  # before: the local backend moves the file away
        put(self, source_path, remote_filename)
        if tracker is not None and tracker.total_bytecount == before and size:
            progress.report_transfer(0, size)
            progress.report_transfer(size, size)

    wrapper.put = put_counted


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs ``patch(module)`` once ``name`` is imported (duplicity imports it itself)."""

    def __init__(self, name, patch):
        self.name, self.patch = name, patch

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module, patch = spec.loader.exec_module, self.patch

        def exec_and_patch(module):
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


sys.meta_path.insert(0, _AfterImport("duplicity.backend", _count_uploads))

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
