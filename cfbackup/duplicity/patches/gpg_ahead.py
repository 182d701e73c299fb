"""Each gpg duplicity starts to encrypt a backup set's files is started ahead, so that gpg's
key derivation is off duplicity's critical path.

With a passphrase (symmetric encryption) gpg derives the key from it again for every file it
encrypts (iterated and salted S2K, its count calibrated by gpg-agent: ~0.2 s of CPU here), and
it does so before it reads its input: measured with gpg 2.2.40, the time from the first write
to gpg's exit is 0.2 s when gpg is fed at once and 0.005 s when it is fed 1 s after its start.
duplicity writes volumes one after the other (``gpg.GPGWriteFile`` makes a ``GPGFile`` per
volume, which starts ``gpg --symmetric``, then feeds it the tar blocks), so every volume
waited for that derivation while the other core idled: 1.5-3 s on a 600 MB full with 50 MB
volumes (docs/performance.md, levers ``level0-vol50`` against ``level0-vol50-s2k64k``).

Besides the volumes, every backup set ends with two more gpgs, one after the other:
``FileobjHooked.to_remote`` encrypts the signatures, then the manifest, into the archive dir
before sending them; in a no-change incremental those, and its one volume, are most of the
time duplicity spends after the signature chain is read (3 x 0.15-0.2 s).

So a spare gpg is started ahead: duplicity's own ``GPGFile`` (the same gpg arguments, the
user's gpg options, compression and sign key, the passphrase on a pipe), writing into a
temporary file.

- Volumes: the first volume's when the set begins (an incremental's ``check_last_manifest``,
  which may fetch and decrypt the last manifest, or else when duplicity makes the set's
  manifest, just before the volumes), in duplicity's temp dir; the next volume's once the
  first is half written (most incrementals have one volume and need none), then as soon as
  each adopted volume begins (deriving takes about as long as writing a 10 MB volume, longer on
  busy cores). When duplicity starts a volume in that directory, the spare's file is renamed
  to the volume's name (gpg's open file follows it) and the spare becomes that volume's
  ``GPGFile``.
- The signatures and the manifest: when duplicity makes their files (``get_fileobj_duppath``,
  where their remote names are known), one spare each, keyed by the exact path
  ``to_remote`` will encrypt into, writing in a directory of its own inside the archive dir
  (the same filesystem, so adopting is a rename; if the rename fails the spare is killed and
  duplicity starts its own gpg). They wait, gpg idle on its input, for the set's end, however
  long a full takes. A run killed with SIGKILL leaves that directory behind: the next backup
  of that archive dir removes it.

gpg writes what it would have written anyway: plain duplicity restores it. A spare nobody
adopts (after the last volume for the volume spare; on an error, Ctrl-C, SIGTERM, at exit, or
an incremental ``--skip-if-no-change`` skips, for all) is killed and its file removed, and the
archive dir's temp dir with it. A restart of an interrupted set starts no spare before its
volumes (duplicity may execute itself again there). gpginterface leaves both ends of every gpg
pipe inheritable: a spare would hold the current volume's stdin open and that gpg would never
see its end, so the pipes of the gpgs duplicity starts here are made private to duplicity.

Measured (600 MB, 12 volumes of 50 MB, file:// target, 2 busy cores): a full took 9.0-10.3 s
instead of 12.5-12.8 s; with s2k reduced to 65536 (not acceptable, only the floor) 7.0-9.3 s.
A no-change incremental of a 1 MB tree (file://, load average 1.3-2): duplicity's part took
0.89 s instead of 1.38 s; with no idle core (load averages of 4 and more) nothing is gained.

Only symmetric encryption with the passphrase on a pipe: public keys need no derivation, and
with gpg-agent or gpgsm gpg may ask for the passphrase itself. ``CFBACKUP_NO_GPG_AHEAD=1``
switches it off for one run.
"""

import contextlib
import os
import signal
import threading
from typing import NamedTuple

OFF = "CFBACKUP_NO_GPG_AHEAD"
_SET_FILES = ("full-sig", "new-sig")  # with the manifests: the set's files sent at its end
_PREFIX = "cfbackup-gpg-ahead-"  # + pid: the archive dir's directory for the set files' spares


class _Spare(NamedTuple):
    """A gpg started ahead: duplicity's own GPGFile, encrypting into ``name`` (in ``temp``)."""

    gpg_file: object
    name: bytes
    profile: object
    temp: object  # where ``name`` is registered: duplicity's TemporaryDirectory, _ArchiveTemp
    first: bool = False  # started for the first volume of a set


_writing = threading.local()  # .volume: (file name, volume size) GPGWriteFile writes here
_spare = None  # the next volume's _Spare, in duplicity's temp dir
_named = {}  # target path -> _Spare: the signatures' and the manifest's, in the archive dir
_archive_temp = None  # the _ArchiveTemp the _named spares write into
_swept = False  # directories killed runs left in the archive dir were removed
_owner = os.getpid()  # a forked child (gpginterface's, before exec) must not touch the spares


def applies(env):
    return bool(env.get("PASSPHRASE")) and not env.get(OFF)


def _symmetric(profile) -> bool:
    from duplicity import config

    return bool(
        profile.passphrase
        and not (profile.recipients or profile.hidden_recipients)
        and not (config.use_agent or config.use_gpgsm)
    )


def _private(gpg_file) -> None:
    """duplicity's ends of gpg's pipes are no longer inherited by the programs it starts."""
    for handle in gpg_file.gpg_process.handles.values():
        with contextlib.suppress(ValueError, OSError):  # the passphrase pipe is closed already
            os.set_inheritable(handle.fileno(), False)


class _ArchiveTemp:
    """The archive dir's directory for the set files' spares, on its filesystem: adopting is a
    rename. Named after this process, so that the next run can tell one a killed run left
    (SIGKILL: nothing runs) and remove it; files are registered as duplicity's temp dirs do."""

    def __init__(self, parent: bytes):
        import tempfile

        self._dir = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=os.fsdecode(parent))
        self._files = []
        self._count = 0

    def dir(self) -> str:
        return self._dir

    def mktemp(self) -> bytes:
        self._count += 1
        name = os.fsencode(os.path.join(self._dir, f"spare-{self._count}"))
        self._files.append(name)
        return name

    def forget(self, name: bytes) -> None:
        with contextlib.suppress(ValueError):
            self._files.remove(name)

    def cleanup(self) -> None:
        for name in self._files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        with contextlib.suppress(OSError):
            os.rmdir(self._dir)


def _sweep(parent: bytes) -> None:
    """Remove the spares' directories runs killed with SIGKILL left in the archive dir (only
    their ``spare-N`` files; a directory holding anything else stays)."""
    with contextlib.suppress(OSError), os.scandir(os.fsdecode(parent)) as entries:
        for entry in entries:
            pid = entry.name[len(_PREFIX) :].split("-")[0] if entry.name.startswith(_PREFIX) else ""
            if not pid.isdigit() or not entry.is_dir(follow_symlinks=False) or _alive(int(pid)):
                continue
            with contextlib.suppress(OSError), os.scandir(entry.path) as files:
                for file in files:
                    if file.name.startswith("spare-") and file.is_file(follow_symlinks=False):
                        os.unlink(file.path)
            with contextlib.suppress(OSError):
                os.rmdir(entry.path)


def _alive(pid: int) -> bool:
    return pid == 0 or os.path.exists(f"/proc/{pid}")  # a zombie too: it is left for later


def _launch(genuine, temp, profile, *, first: bool = False):
    """duplicity's GPGFile encrypting into a new file of ``temp``; None when it cannot start."""
    from duplicity import log, path

    name = temp.mktemp()
    try:
        gpg_file = genuine(True, path.Path(name), profile)
    except Exception as error:  # noqa: BLE001 - a speed-up gives up quietly (fork: EAGAIN...)
        log.Debug(f"gpg-ahead: no gpg started ahead: {error}")
        with contextlib.suppress(OSError):
            os.unlink(name)
        temp.forget(name)
        return None
    _private(gpg_file)
    return _Spare(gpg_file, name, profile, temp, first)


def _start(genuine, profile, *, first: bool = False) -> None:
    """Start the spare gpg for the next volume, in duplicity's temp dir (where volumes are)."""
    global _spare
    from duplicity import log, tempdir

    if _spare is None:
        _spare = _launch(genuine, tempdir.default(), profile, first=first)
        if _spare is not None:
            log.Debug(
                f"gpg-ahead: started gpg {_spare.gpg_file.gpg_process.pid} ahead into "
                f"{os.fsdecode(_spare.name)}"
            )


def _start_for(genuine, target: bytes, profile) -> None:
    """Start the spare gpg for the set's file ``target`` (in the archive dir), beside it."""
    global _archive_temp
    from duplicity import log

    if target in _named:
        return
    if _archive_temp is None:
        try:
            _archive_temp = _ArchiveTemp(os.path.dirname(target))
        except OSError as error:
            log.Debug(f"gpg-ahead: no gpg started ahead: {error}")
            return
    spare = _launch(genuine, _archive_temp, profile)
    if spare is not None:
        _named[target] = spare
        log.Debug(
            f"gpg-ahead: started gpg {spare.gpg_file.gpg_process.pid} ahead into "
            f"{os.fsdecode(spare.name)} for {os.fsdecode(target)}"
        )


def _set_begins() -> bool:
    """A backup set (not a restart: it may re-execute duplicity before the set begins, in
    dup_main's checkManifest) is about to be encrypted with the passphrase, by this process."""
    from duplicity import config

    return bool(
        config.encryption
        and not config.restart
        and not config.dry_run
        and os.getpid() == _owner
        and _symmetric(config.gpg_profile)
    )


def _ahead_of_check(genuine) -> None:
    """An incremental's set begins with the check of its last manifest (fetched and decrypted
    unless cfbackup handed it over): the first volume's gpg derives its key meanwhile."""
    from duplicity import config

    if _set_begins():
        _start(genuine, config.gpg_profile, first=True)


def _ahead_of_set(genuine, dirpath, remname) -> None:
    """duplicity made the signatures' or the manifest's file of a backup set (both just before
    it writes the volumes): start the gpgs that will encrypt them at the set's end, and, with
    the manifest, the first volume's."""
    global _swept
    from duplicity import config, file_naming

    parsed = file_naming.parse(remname)
    wanted = parsed and parsed.encrypted and (parsed.manifest or parsed.type in _SET_FILES)
    if wanted and not _swept and os.getpid() == _owner:  # a restart too: it follows a kill
        _swept = True
        _sweep(os.fsencode(dirpath.name))
    if not wanted or not _set_begins():
        return
    if parsed.manifest:  # if check_last_manifest did not start it already
        _start(genuine, config.gpg_profile, first=True)
    _start_for(genuine, os.fsencode(dirpath.append(remname).name), config.gpg_profile)


def _quietly(start, *args) -> None:
    """Start spares ahead; a speed-up that fails never fails the backup (duplicity starts its
    own gpgs, as without this patch)."""
    from duplicity import log

    try:
        start(*args)
    except Exception as error:  # noqa: BLE001
        log.Debug(f"gpg-ahead: no gpg started ahead: {error!r}")


def _take(spare, target: bytes, profile):
    """``spare`` with its file renamed to ``target``; None (the spare ended) when it does not
    fit: another profile, a gpg that ended already, or a rename that fails."""
    from duplicity import log

    if spare.profile is not profile or spare.gpg_file.gpg_process.returned is not None:
        _end(spare)
        return None
    try:
        os.rename(spare.name, target)
    except OSError:  # another filesystem...: duplicity's own gpg does it
        _end(spare)
        return None
    spare.temp.forget(spare.name)
    log.Debug(
        f"gpg-ahead: adopted the gpg started ahead for {os.fsdecode(target)} "
        f"(gpg {spare.gpg_file.gpg_process.pid})"
    )
    return spare


def _adopt(volume_name: bytes, profile):
    """The volume spare, its file renamed to ``volume_name``; None when there is none that fits."""
    global _spare
    spare, _spare = _spare, None
    if spare is None:
        return None
    if os.path.dirname(spare.name) != os.path.dirname(volume_name):
        _end(spare)
        return None
    return _take(spare, volume_name, profile)


def _adopt_for(target: bytes, profile):
    """The spare started for ``target`` (a set's signatures or manifest), its file renamed to it."""
    spare = _take(_named.pop(target), target, profile)
    if not _named:
        _release_archive_temp()
    return spare


def _end(spare, *, forget: bool = True) -> None:
    """Kill the spare gpg, reap it, remove its file; ``forget``: also drop it from duplicity's
    temp dir records (which takes duplicity's lock: never from a signal handler)."""
    process = spare.gpg_file.gpg_process
    if process.returned is None:  # not reaped yet by its waiter thread: the pid is still gpg's
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
    with contextlib.suppress(OSError):
        spare.gpg_file.gpg_input.close()
    process.thread.join(timeout=10)
    spare.gpg_file.stderr_fp.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(spare.name)
    if forget:
        spare.temp.forget(spare.name)


def _release_archive_temp() -> None:
    """Remove the archive dir's temp dir once no spare writes in it."""
    global _archive_temp
    temp, _archive_temp = _archive_temp, None
    if temp is not None:
        temp.cleanup()


def discard(temp=None) -> None:
    """Kill the volume spare nobody will adopt and remove its file (idempotent); with ``temp``
    only when the spare's file is in that TemporaryDirectory (duplicity makes several). The
    signatures' and the manifest's spares stay: the set's end adopts them."""
    global _spare
    if os.getpid() != _owner or (temp is not None and _spare and _spare.temp is not temp):
        return
    spare, _spare = _spare, None
    if spare is not None:
        _end(spare)


def _discard_named() -> None:
    """Kill the signatures' and the manifest's spares, remove their directory."""
    if os.getpid() != _owner:
        return
    while _named:
        _end(_named.popitem()[1])
    _release_archive_temp()


def _discard_all() -> None:
    """At exit: every spare nobody adopted (an error, Ctrl-C, an incremental with no change
    skipped by ``--skip-if-no-change``)."""
    discard()
    _discard_named()


def _on_sigterm(signum, frame):
    """duplicity dies of SIGTERM as before, without leaving a spare behind. The default
    comes back first and no duplicity lock is taken here: the main thread may hold one (it
    logs under its temp dir's lock), and a second SIGTERM must still end the process."""
    global _spare
    signal.signal(signum, signal.SIG_DFL)
    if os.getpid() == _owner:
        spares = [_spare, *_named.values()]
        _spare = None
        _named.clear()
        for spare in spares:
            if spare is not None:
                _end(spare, forget=False)
        if _archive_temp is not None:
            with contextlib.suppress(OSError):  # none of its files is left
                os.rmdir(_archive_temp.dir())
    os.kill(os.getpid(), signum)


def apply(env):
    import atexit

    from duplicity import dup_temp, gpg, tempdir

    from cfbackup.duplicity.patches import after_import

    global _owner
    _owner = os.getpid()
    genuine = gpg.GPGFile
    write_volume = gpg.GPGWriteFile
    get_fileobj = dup_temp.get_fileobj_duppath

    class GPGFile(genuine):
        __doc__ = genuine.__doc__

        def __init__(self, encrypt, encrypt_path, profile):
            target = os.fsencode(encrypt_path.name)
            volume = getattr(_writing, "volume", None)
            start = None  # after how many bytes written to start the next volume's spare
            if encrypt and target in _named:  # the set's signatures or manifest, at its end
                spare = _adopt_for(target, profile)
            elif encrypt and volume and target == volume[0]:
                spare = _adopt(target, profile)
                # the next volume's spare at once after an adopted one, but once the set's
                # first volume is half written (most incrementals have one volume, and need
                # none): deriving takes as long as writing a 10 MB volume here, longer when
                # the cores are busy
                start = 0 if spare is not None and not spare.first else volume[1] // 2
            else:
                spare = None
            if spare is None:
                genuine.__init__(self, encrypt, encrypt_path, profile)
            else:
                vars(self).update(vars(spare.gpg_file))
                self.name = encrypt_path
            _private(self)
            self._profile = profile
            self._ahead_at = start if start is not None and _symmetric(profile) else None

        def write(self, buf):
            written = genuine.write(self, buf)
            if self._ahead_at is not None and self.byte_count >= self._ahead_at:
                self._ahead_at = None
                here = os.path.dirname(os.fsencode(self.name.name))
                if here == os.fsencode(tempdir.default().dir()):
                    _start(genuine, self._profile)
            return written

    # the same defaults as duplicity's GPGWriteFile
    def GPGWriteFile(
        block_iter,
        filename,
        profile,
        size=200 * 1024 * 1024,  # noqa: N802
        max_footer_size=16 * 1024,
    ):
        _writing.volume = (os.fsencode(filename), size)
        try:
            at_end = write_volume(block_iter, filename, profile, size, max_footer_size)
        except BaseException:
            discard()
            raise
        finally:
            _writing.volume = None
        if at_end:  # the last volume of this set: no next one to start ahead
            discard()
        return at_end

    def get_fileobj_duppath(dirpath, partname, permname, remname, overwrite=False):
        fileobj = get_fileobj(dirpath, partname, permname, remname, overwrite)
        _quietly(_ahead_of_set, genuine, dirpath, remname)
        return fileobj

    def patch_dup_main(dup_main):
        check_last_manifest = dup_main.check_last_manifest

        def check_last_manifest_beside_the_first_gpg(col_stats):
            _quietly(_ahead_of_check, genuine)
            return check_last_manifest(col_stats)

        check_last_manifest_beside_the_first_gpg.__doc__ = check_last_manifest.__doc__
        dup_main.check_last_manifest = check_last_manifest_beside_the_first_gpg

    GPGWriteFile.__doc__ = write_volume.__doc__
    get_fileobj_duppath.__doc__ = get_fileobj.__doc__
    gpg.GPGFile = GPGFile
    gpg.GPGWriteFile = GPGWriteFile
    dup_temp.get_fileobj_duppath = get_fileobj_duppath

    cleanup = tempdir.TemporaryDirectory.cleanup

    def cleanup_after_the_spare(self):
        discard(self)  # first: the volume spare's file may be in this directory
        return cleanup(self)

    tempdir.TemporaryDirectory.cleanup = cleanup_after_the_spare
    after_import("duplicity.dup_main", patch_dup_main)
    atexit.register(_discard_all)
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
