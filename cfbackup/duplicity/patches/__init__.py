"""Everything cfbackup changes inside duplicity's interpreter, in one registry.

cfbackup starts every duplicity command through one launcher (``cfbackup/duplicity/launcher.py``,
``python -m cfbackup.duplicity.launcher ARGS``): it applies the patches chosen for the run, in
order, then runs duplicity's own ``main`` in the same process. A patch is a module with two
functions, ``applies(env) -> bool`` (does this run need it; from the environment duplicity
gets) and ``apply(env)``; :class:`Patch` says what it changes, why, and against which duplicity
it was written. Core's patches are :data:`CORE`; a plugin adds its own with the
``cfbackup_duplicity_patches(register)`` hook (``docs/plugins.md``), only for the profiles that
enable it.

Patch modules load in every duplicity process: standard library only at import time, the rest
inside ``apply``. ``tests/unit/test_duplicity_patches.py`` fails when the installed duplicity or
swiftclient no longer has an attribute a patch targets: review the patch against that version.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import NamedTuple

ENV = "CFBACKUP_DUPLICITY_PATCHES"  # the patch modules the launcher applies, comma-separated
_applied: set[str] = set()  # in this interpreter: each patch once


class Patch(NamedTuple):
    name: str
    module: str  # importable in duplicity's interpreter: defines applies(env) and apply(env)
    written_for: str  # the duplicity version it was written and tested against
    targets: tuple[str, ...]  # "module:attribute.path" it replaces, wraps or relies on
    why: str


CORE: tuple[Patch, ...] = (
    Patch(
        "skip-keystoneclient",
        "cfbackup.duplicity.patches.skip_keystoneclient",
        "3.2.1",
        ("swiftclient.client:ksclient_v3",),
        "with Swift v1 auth, importing swiftclient also imports python-keystoneclient and "
        "oslo.utils, which v1 never uses: 0.2 s of every run",
    ),
    Patch(
        "swift-timeout",
        "cfbackup.duplicity.patches.swift_timeout",
        "3.2.1",
        (
            "swiftclient:Connection",
            "swiftclient.client:Connection",
            "swiftclient.service:Connection",
            "duplicity.config:timeout",
            "urllib3.connection:HTTPConnection.getresponse",
            "swiftclient.client:Connection._retry",
            "swiftclient.client:Connection.get_object",
            "swiftclient.client:_RetryBody.read",
        ),
        "duplicity's swift backend and its SwiftService make their Connections without a "
        "timeout (--timeout only sets the socket default, which requests overrides): a proxy "
        "that took a volume's PUT and never answered held the backup for ever; the wait for "
        "the answer starts once the buffered body is acknowledged, or a slow uplink timed out; "
        "a request that timed out is not retried by swiftclient (each retry waited the whole "
        "timeout again: a mute Swift held a run about 11 minutes), duplicity's attempts remain",
    ),
    Patch(
        "servicenet",
        "cfbackup.duplicity.patches.servicenet",
        "3.2.1",
        (
            "swiftclient:Connection",
            "swiftclient.client:Connection",
            "swiftclient.service:Connection",
        ),
        "a v1 profile with interface internal (Rackspace ServiceNet) must reach the snet- storage "
        "host; swiftclient 4 dropped its snet option and duplicity never had one",
    ),
    Patch(
        "application-credential",
        "cfbackup.duplicity.patches.application_credential",
        "3.2.1",
        (
            "swiftclient:Connection",
            "swiftclient.client:Connection",
            "swiftclient.service:Connection",
            "duplicity.backends.swiftbackend:SwiftBackend",
        ),
        "duplicity's swift backend knows no Keystone application credential; a pre-minted "
        "token would expire mid-run",
    ),
    Patch(
        "handed-token",
        "cfbackup.duplicity.patches.handed_token",
        "3.2.1",
        (
            "swiftclient:Connection",
            "swiftclient.client:Connection",
            "swiftclient.service:Connection",
            "swiftclient.client:Connection._retry",
            "swiftclient.client:Connection.get_auth",
        ),
        "duplicity authenticated two or three times (2 round trips each across a WAN) right "
        "after cfbackup's checks had (backup, restore, verify, list, prune, cleanup); it starts "
        "with their token, and re-authenticates with its own credentials when Swift rejects it",
    ),
    Patch(
        "swift-retries",
        "cfbackup.duplicity.patches.swift_retries",
        "3.2.1",
        (
            "swiftclient:Connection",
            "swiftclient.client:Connection",
            "swiftclient.service:Connection",
        ),
        "duplicity's swiftclient retries each request 5 times (about 31 s) before an attempt "
        "counts as failed, and duplicity has no option for it: a profile's swift.retries sets it",
    ),
    Patch(
        "handed-manifest",
        "cfbackup.duplicity.patches.handed_manifest",
        "3.2.1",
        ("duplicity.dup_collections:BackupSet.get_remote_manifest",),
        "an incremental's duplicity downloaded and decrypted the manifest cfbackup's passphrase "
        "check had just opened (a request and a gpg key derivation): it gets the check's copy",
    ),
    Patch(
        "upload-progress",
        "cfbackup.duplicity.patches.upload_progress",
        "3.2.1",
        (
            "duplicity.backend:BackendWrapper.put",
            "duplicity.progress:report_transfer",
            "duplicity.progress:tracker",
        ),
        "duplicity's --progress adds up the bytes a backend reports, and the swift backend "
        "reports none: every progress record of a Swift backup said 0 bytes",
    ),
    Patch(
        "sized-uploads",
        "cfbackup.duplicity.patches.sized_uploads",
        "3.2.1",
        (
            "swiftclient.client:Connection.put_object",
            "duplicity.backends.swiftbackend:SwiftBackend._put",
            "duplicity.backend:BackendWrapper.validate",
        ),
        "duplicity uploads chunked, which Swift's quotas never check; a 413 is retried for "
        "minutes instead of ending the run with the numbers; each volume's size was asked "
        "again after its upload, one more round trip per volume",
    ),
    Patch(
        "swift-deletes",
        "cfbackup.duplicity.patches.swift_deletes",
        "3.2.1",
        (
            "duplicity.backends.swiftbackend:SwiftBackend._delete",
            "duplicity.backends.swiftbackend:SwiftBackend._error_code",
            "duplicity.backend:BackendWrapper._do_delete",
            "swiftclient.service:SwiftService.delete",
        ),
        "duplicity's swift backend never reads SwiftService.delete's result: a delete Swift "
        "refused (403, 503) was silent, and retention's failure could not say why",
    ),
    Patch(
        "upload-pool",
        "cfbackup.duplicity.patches.upload_pool",
        "3.2.1",
        (
            "duplicity.dup_main:time.sleep",
            "duplicity.backend_pool:concurrent.futures.ProcessPoolExecutor",
            "duplicity.backend_pool:BackendPool.__init__",
            "duplicity.backend_pool:BackendPool.command",
            "duplicity.backend_pool:BackendPool.shutdown",
            "duplicity.backend_pool:BackendPool._collect_finished_cmds",
            "duplicity.backend_pool:BackendPool._raise_exception_if_any",
            "duplicity.backend_pool:BackendPool._process_init",
            "duplicity.backend_pool:TrackRecord",
            "duplicity.log:_logger",
            "duplicity.log:MachineFormatter",
            "duplicity.log:add_fd",
            "duplicity.log:setup",
            "duplicity.log:DupToLoggerLevel",
            "duplicity.gpg:GPGWriteFile",
            "duplicity.gpg:GzipWriteFile",
            "duplicity.gpg:PlainWriteFile",
            "duplicity.config:backend",
            "duplicity.config:volsize",
        ),
        "with --concurrency duplicity polls its upload pool every 2 s at the end, waits 0.1 s "
        "twice a volume, and starts the upload processes only once the first volume is ready "
        "(or, started with the pool, in every one-volume incremental too); killed, it leaves "
        "them behind; a failed upload let the next one run its retries too, and a worker's "
        "retries never reached the run log as they happened",
    ),
    Patch(
        "gpg-environment",
        "cfbackup.duplicity.patches.gpg_environment",
        "3.2.1",
        ("duplicity.gpginterface:GnuPG._as_child", "subprocess:Popen.__init__"),
        "gpg and other programs inherit duplicity's environment, passphrase and Swift key "
        "included, and the gpg-agent gpg starts keeps them for as long as it lives",
    ),
    Patch(
        "gpg-selftest",
        "cfbackup.duplicity.patches.gpg_selftest",
        "3.2.1",
        ("duplicity.gpg:check_gpg", "duplicity.gpginterface:GnuPG.run"),
        "before every action duplicity tested loopback pinentry with a symmetric encryption: "
        "a key derivation (0.3 s of CPU) for output nobody reads; the test asks gpg-agent "
        "the same without deriving",
    ),
    Patch(
        "gpg-session-keys",
        "cfbackup.duplicity.patches.gpg_session_keys",
        "3.2.1",
        (
            "duplicity.gpg:GPGFile.__init__",
            "duplicity.gpg:GPGFile.gpg_failed",
            "duplicity.gpginterface:GnuPG.run",
        ),
        "gpg derives each passphrase-encrypted file's key (0.2 s of CPU) before decrypting it: "
        "every manifest and signature of a chain on a new machine, a signed profile's volumes; "
        "derived in duplicity's process it takes a third of that",
    ),
    Patch(
        "gpg-waiters",
        "cfbackup.duplicity.patches.gpg_waiters",
        "3.2.1",
        ("duplicity.gpginterface:threading.Thread", "duplicity.gpginterface:threaded_waitpid"),
        "a restore that fails mid-volume (a full disk) hung for ever at exit: Python waited "
        "for the thread waiting for a gpg blocked on a pipe nobody reads",
    ),
    Patch(
        "progress-stop",
        "cfbackup.duplicity.patches.progress_stop",
        "3.2.1",
        (
            "duplicity.progress:LogProgressThread",
            "duplicity.progress:LogProgressThread.run",
            "duplicity.progress:tracker",
            "duplicity.config:progress_rate",
        ),
        "with --progress duplicity joins its progress thread at the end of a backup, which "
        "sleeps --progress-rate seconds between reports: interactive backups ended up to 1 s "
        "late",
    ),
    Patch(
        "gpg-ahead",
        "cfbackup.duplicity.patches.gpg_ahead",
        "3.2.1",
        (
            "duplicity.gpg:GPGFile.__init__",
            "duplicity.gpg:GPGFile.write",
            "duplicity.gpg:GPGWriteFile",
            "duplicity.dup_temp:get_fileobj_duppath",
            "duplicity.dup_main:check_last_manifest",
            "duplicity.file_naming:parse",
            "duplicity.tempdir:TemporaryDirectory.cleanup",
            "duplicity.tempdir:TemporaryDirectory.mktemp",
            "duplicity.tempdir:TemporaryDirectory.forget",
            "duplicity.config:use_agent",
            "duplicity.config:use_gpgsm",
            "duplicity.config:restart",
            "duplicity.config:dry_run",
        ),
        "with a passphrase, gpg derives the key again for each file (0.2 s of CPU) before "
        "reading it, while duplicity waits: each volume's, the signatures' and the manifest's "
        "gpg starts ahead, beside the work before it",
    ),
    Patch(
        "rate-sized-volumes",
        "cfbackup.duplicity.patches.rate_sized_volumes",
        "3.2.1",
        (
            "swiftclient.client:put_object",
            "swiftclient.client:Connection.put_object",
            "duplicity.gpg:GPGWriteFile",
            "duplicity.gpg:GzipWriteFile",
            "duplicity.gpg:PlainWriteFile",
            "duplicity.config:volsize",
        ),
        "a one-file restore downloads a whole volume, and how long that takes depends on the "
        "link's rate, which only the uploads measure: with volsize auto across a network each "
        "volume is sized from the rate of the uploads before it (after gpg-ahead: outermost)",
    ),
    Patch(
        "prefetched-volumes",
        "cfbackup.duplicity.patches.prefetched_volumes",
        "3.2.1",
        (
            "duplicity.backends.localbackend:LocalBackend._get",
            "duplicity.backends.localbackend:LocalBackend._list",
            "duplicity.dup_main:restore_check_hash",
        ),
        "duplicity restores from a local copy cfbackup fills while it runs (cfbackup/prefetch.py): "
        "it must wait for a volume on its way, and a volume cfbackup checked and decrypted no "
        "longer has the hash its manifest records",
    ),
    Patch(
        "archive-lock",
        "cfbackup.duplicity.patches.archive_lock",
        "3.2.1",
        (
            "duplicity.util:acquire_lockfile",
            "duplicity.config:lockfile",
            "duplicity.config:lockpath",
        ),
        "a duplicity refused by another's archive-dir lock deleted that lock's file as it "
        "exited, so a third duplicity locked a new file and ran beside the first in the same "
        "archive dir",
    ),
    Patch(
        "machine-log-names",
        "cfbackup.duplicity.patches.machine_log_names",
        "3.2.1",
        ("duplicity.log:add_fd", "duplicity.log:_logger"),
        "duplicity's --log-fd stream is strict UTF-8: a record naming a file whose name is not "
        "UTF-8 (latin-1 caf\\xe9) was dropped, and list left out every such file",
    ),
    Patch(
        "named-deletes",
        "cfbackup.duplicity.patches.named_deletes",
        "3.2.1",
        (
            "duplicity.backend:BackendWrapper.delete",
            "duplicity.log:_logger",
            "duplicity.log:MachineFormatter",
            "duplicity.util:escape",
        ),
        "duplicity goes on when the target refuses a delete (retention and cleanup exited 0, "
        "the old backups stayed): its machine log names each file it deletes, whatever the "
        "verbosity, and cfbackup checks each is gone",
    ),
    Patch(
        "interrupted-set",
        "cfbackup.duplicity.patches.interrupted_set",
        "3.2.1",
        (
            "duplicity.dup_collections:BackupSet.delete",
            "duplicity.dup_collections:BackupSet.get_timestr",
            "duplicity.dup_main:Restart.checkManifest",
            "duplicity.config:action",
        ),
        "a backup deletes an interrupted set it cannot resume and never checks that it went: "
        "when Swift refused the deletes, duplicity deleted it again, for ever; the backup now "
        "ends with Swift's answer (after swift-deletes, whose refusals it reads)",
    ),
)


def in_pool_worker() -> bool:
    """True in an interpreter multiprocessing spawned (only duplicity's upload pool does)."""
    return "--multiprocessing-fork" in sys.orig_argv


def from_plugins(hooks) -> tuple[Patch, ...]:
    """The patches the plugins behind ``hooks`` (a profile's, or the manager's) register."""
    found: list[Patch] = []
    hooks.cfbackup_duplicity_patches(register=found.append)
    return tuple(found)


def chosen(env: Mapping[str, str], extra: Iterable[Patch] = ()) -> tuple[Patch, ...]:
    """Core's patches, then ``extra``, that apply to a duplicity run with environment ``env``."""
    return tuple(p for p in (*CORE, *extra) if importlib.import_module(p.module).applies(env))


def apply(modules: Iterable[str], env: Mapping[str, str]) -> None:
    """Apply the patch modules in order (inside duplicity's interpreter), each once."""
    for name in modules:
        if name not in _applied:
            _applied.add(name)
            importlib.import_module(name).apply(env)


_after: dict[str, list[Callable[[ModuleType], None]]] = {}  # module name -> its patches


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs the patches waiting for a module right after it is executed (one finder for every
    module and patch: with a finder per patch, the last one registered for a module shadowed
    the others, and their patches never ran)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _after:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            for patch in _after.pop(fullname, ()):
                patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def after_import(name: str, patch: Callable[[ModuleType], None]) -> None:
    """Run ``patch(module)`` once module ``name`` is imported (duplicity imports its backends
    itself, late), or now when it already is; several patches of one module run in the order
    they were registered."""
    if name in sys.modules:
        patch(sys.modules[name])
        return
    _after.setdefault(name, []).append(patch)
    if not any(isinstance(finder, _AfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())


def machine_log_handlers() -> list:
    """duplicity's handlers that write its machine-readable log (``--log-fd``) in this
    process: none without it (or before ``log.setup``)."""
    from duplicity import log

    return [
        handler
        for handler in getattr(log._logger, "handlers", ())
        if isinstance(getattr(handler, "formatter", None), log.MachineFormatter)
    ]
