"""Loaded by duplicity's interpreter when cfbackup starts it (this folder is last on its
PYTHONPATH, ``cfbackup/duplicity/run.py``); plain Python, no cfbackup imports.

With Swift v1 auth (tempauth, Rackspace: ``SWIFT_AUTHVERSION=1``) swiftclient never uses
python-keystoneclient, yet importing swiftclient imports it and oslo.utils when installed:
0.2 s of every duplicity run (``python -X importtime``), a tenth of a one-file restore. The
import is refused (swiftclient catches the ImportError and keeps its v1 path). Keystone runs
are untouched. Then the sitecustomize this one shadows, if any, runs as if it were first.
"""

import importlib.machinery
import importlib.util
import os
import sys

if os.environ.get("SWIFT_AUTHVERSION") in ("1", "1.0") and "keystoneclient" not in sys.modules:
    sys.modules["keystoneclient"] = None


def _chain_next_sitecustomize():
    here = os.path.dirname(os.path.abspath(__file__))
    others = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_chain_next_sitecustomize()
