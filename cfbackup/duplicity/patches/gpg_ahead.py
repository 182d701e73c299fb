"""The next volume's gpg is started while the current one is written, so that gpg's key
derivation is off duplicity's critical path.

With a passphrase (symmetric encryption) gpg derives the key from it again for every file it
encrypts (iterated and salted S2K, its count calibrated by gpg-agent: ~0.2 s of CPU here), and
it does so before it reads its input: measured with gpg 2.2.40, the time from the first write
to gpg's exit is 0.2 s when gpg is fed at once and 0.005 s when it is fed 1 s after its start.
duplicity writes volumes one after the other (``gpg.GPGWriteFile`` makes a ``GPGFile`` per
volume, which starts ``gpg --symmetric``, then feeds it the tar blocks), so every volume
waited for that derivation while the other core idled: 1.5-3 s on a 600 MB full with 50 MB
volumes (docs/performance.md, levers ``level0-vol50`` against ``level0-vol50-s2k64k``).

A spare is started for the next volume once the first volume is half written (most
incrementals have one volume and need none), then as soon as each adopted volume begins
(deriving takes about as long as writing a 10 MB volume, longer on busy cores): duplicity's own
``GPGFile`` (the same gpg arguments, the user's gpg options, compression and sign key, the
passphrase on a pipe), writing into a temporary file of duplicity's temp dir. When duplicity
starts the next volume in that directory, the spare's file is renamed to the volume's name
(gpg's open file follows it) and the spare becomes that volume's ``GPGFile``. gpg writes what it
would have written anyway: plain duplicity restores it. A spare nobody adopts (after the last
volume, on an error, Ctrl-C, SIGTERM, at exit) is killed and its file removed, before
duplicity removes its temp dir. gpginterface leaves both ends of every gpg pipe inheritable: a
spare would hold the current volume's stdin open and that gpg would never see its end, so the
pipes of the gpgs duplicity starts here are made private to duplicity.

Measured (600 MB, 12 volumes of 50 MB, file:// target, 2 busy cores): a full took 9.0-10.3 s
instead of 12.5-12.8 s; with s2k reduced to 65536 (not acceptable, only the floor) 7.0-9.3 s.

Only symmetric encryption with the passphrase on a pipe: public keys need no derivation, and
with gpg-agent or gpgsm gpg may ask for the passphrase itself. ``CFBACKUP_NO_GPG_AHEAD=1``
switches it off for one run.
"""

import contextlib
import os
import signal
import threading

OFF = "CFBACKUP_NO_GPG_AHEAD"

_writing = threading.local()  # .volume: (file name, volume size) GPGWriteFile writes here
_spare = None  # (GPGFile, its file, its profile, its TemporaryDirectory): the next volume's gpg
_owner = os.getpid()  # a forked child (gpginterface's, before exec) must not touch the spare


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


def _start(genuine, volume_name: bytes, profile) -> None:
    """Start the spare gpg for the volume after ``volume_name``, next to it."""
    global _spare
    from duplicity import log, path, tempdir

    temp = tempdir.default()
    if _spare is not None or os.path.dirname(volume_name) != os.fsencode(temp.dir()):
        return
    name = temp.mktemp()
    try:
        spare = genuine(True, path.Path(name), profile)
    except Exception as error:  # noqa: BLE001 - a speed-up gives up quietly (fork: EAGAIN...)
        log.Debug(f"gpg-ahead: no gpg started ahead: {error}")
        with contextlib.suppress(OSError):
            os.unlink(name)
        temp.forget(name)
        return
    _private(spare)
    _spare = (spare, name, profile, temp)
    log.Debug(f"gpg-ahead: started gpg {spare.gpg_process.pid} ahead into {os.fsdecode(name)}")


def _adopt(volume_name: bytes, profile):
    """The spare, its file renamed to ``volume_name``; None when there is none that fits."""
    global _spare
    from duplicity import log

    spare, _spare = _spare, None
    if spare is None:
        return None
    gpg_file, name, spare_profile, temp = spare
    fits = spare_profile is profile and os.path.dirname(name) == os.path.dirname(volume_name)
    if not fits or gpg_file.gpg_process.returned is not None:  # a gpg that ended is no use
        _end(spare)
        return None
    try:
        os.rename(name, volume_name)
    except OSError:
        _end(spare)
        return None
    temp.forget(name)
    log.Debug(f"gpg-ahead: adopted the gpg started ahead for {os.fsdecode(volume_name)}")
    return gpg_file


def _end(spare, *, forget: bool = True) -> None:
    """Kill the spare gpg, reap it, remove its file; ``forget``: also drop it from duplicity's
    temp dir records (which takes duplicity's lock: never from a signal handler)."""
    gpg_file, name, _, temp = spare
    process = gpg_file.gpg_process
    if process.returned is None:  # not reaped yet by its waiter thread: the pid is still gpg's
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
    with contextlib.suppress(OSError):
        gpg_file.gpg_input.close()
    process.thread.join(timeout=10)
    gpg_file.stderr_fp.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)
    if forget:
        temp.forget(name)


def discard(temp=None) -> None:
    """Kill the spare gpg nobody will adopt and remove its file (idempotent); with ``temp``
    only when the spare's file is in that TemporaryDirectory (duplicity makes several)."""
    global _spare
    if os.getpid() != _owner or (temp is not None and _spare and _spare[3] is not temp):
        return
    spare, _spare = _spare, None
    if spare is not None:
        _end(spare)


def _on_sigterm(signum, frame):
    """duplicity dies of SIGTERM as before, without leaving the spare behind. The default
    comes back first and no duplicity lock is taken here: the main thread may hold one (it
    logs under its temp dir's lock), and a second SIGTERM must still end the process."""
    global _spare
    signal.signal(signum, signal.SIG_DFL)
    spare, _spare = _spare, None
    if spare is not None and os.getpid() == _owner:
        _end(spare, forget=False)
    os.kill(os.getpid(), signum)


def apply(env):
    import atexit

    from duplicity import gpg, tempdir

    global _owner
    _owner = os.getpid()
    genuine = gpg.GPGFile
    write_volume = gpg.GPGWriteFile

    class GPGFile(genuine):
        __doc__ = genuine.__doc__

        def __init__(self, encrypt, encrypt_path, profile):
            volume = getattr(_writing, "volume", None)
            is_volume = bool(encrypt and volume and os.fsencode(encrypt_path.name) == volume[0])
            spare = _adopt(volume[0], profile) if is_volume else None
            if spare is None:
                genuine.__init__(self, encrypt, encrypt_path, profile)
            else:
                vars(self).update(vars(spare))
                self.name = encrypt_path
            _private(self)
            self._profile = profile
            # the first volume's spare once it is half written (most incrementals have one
            # volume, and need none), the next ones' at once: deriving takes as long as writing
            # a 10 MB volume here, longer when the cores are busy
            start = 0 if spare is not None else volume[1] // 2 if is_volume else None
            self._ahead_at = start if start is not None and _symmetric(profile) else None

        def write(self, buf):
            written = genuine.write(self, buf)
            if self._ahead_at is not None and self.byte_count >= self._ahead_at:
                self._ahead_at = None
                _start(genuine, os.fsencode(self.name.name), self._profile)
            return written

    # the same defaults as duplicity's GPGWriteFile
    def GPGWriteFile(block_iter, filename, profile, size=200 * 1024 * 1024,  # noqa: N802
                     max_footer_size=16 * 1024):
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

    GPGWriteFile.__doc__ = write_volume.__doc__
    gpg.GPGFile = GPGFile
    gpg.GPGWriteFile = GPGWriteFile

    cleanup = tempdir.TemporaryDirectory.cleanup

    def cleanup_after_the_spare(self):
        discard(self)  # first: the spare's file may be in this directory
        return cleanup(self)

    tempdir.TemporaryDirectory.cleanup = cleanup_after_the_spare
    atexit.register(discard)
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
