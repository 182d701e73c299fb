"""Decrypting a backup's objects as duplicity wrote them: gpg with the profile's passphrase
or keys (python-gnupg, the passphrase on gpg's standard input, never its command line), gzip
for an unencrypted profile, nothing for a plain one. What ``volumes.py`` reads manifests with,
``volume_fetch.py`` checks volumes with, and restore prefetch decrypts ahead with.

A volume can also be decrypted while it downloads (:meth:`Keys.decrypting`, a ``stores.Sink``):
gpg reads its bytes as they arrive, so its work overlaps the download instead of following it,
and the encrypted bytes never touch the disk. That gpg is run directly (``execute.fed``), with
python-gnupg's settings; the passphrase, in UTF-8 as duplicity writes it
(``execute.duplicity_passphrase``), or the session key derived from it (``session_keys.py``:
gpg then skips its own, slower derivation), reaches it on a pipe of its own
(``--passphrase-fd``, ``--override-session-key-fd``). Objects of a profile without a
``sign_key`` are decrypted that way whole too. python-gnupg's own streaming
reads from a file object in a thread of its own, which a download cannot end cleanly when gpg
fails half way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import gzip
import os
import shutil
import signal
import subprocess
import zlib
from pathlib import Path
from typing import IO, Any

from cfbackup import execute, session_keys, suggest
from cfbackup.config.model import Profile
from cfbackup.config.secrets import secret_source
from cfbackup.errors import CryptoError
from cfbackup.stores import CHUNK, FileSink, Sink, Stopped

SUFFIXES = (".gpg", ".gz")  # what duplicity adds to an encrypted or a compressed object


def clear_name(name: str) -> str:
    """Object ``name`` once decrypted: without its ``.gpg`` or ``.gz``."""
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def passphrase_source(profile: Profile) -> str:
    """Where the profile's passphrase is read from, for a message that gpg refused it (never
    the passphrase): ``the passphrase in $VAR``, ``the passphrase read from FILE``, ``the
    passphrase printed by encryption.passphrase_command``, ``the PASSPHRASE in FILE`` (a
    legacy file), ``encryption.passphrase in FILE``."""
    found = secret_source(profile["encryption"], "passphrase", "encryption")
    if found:
        return found
    where = f" in {profile.source_file}" if profile.source_file else ""
    return f"the PASSPHRASE{where}" if profile.legacy else f"encryption.passphrase{where}"


def keys_error(what: str, keys: Keys) -> CryptoError:
    """gpg could not decrypt ``what`` with ``keys``: because of the passphrase or the keys."""
    return CryptoError(
        f"gpg could not decrypt {what}: wrong passphrase, or the secret key is missing from the "
        f"keyring: check {keys.source} and the keys; "
        f"{suggest.command('check', keys.profile or 'PROFILE', '--for-restore')} tests them."
    )


class Undecryptable(Exception):
    """gpg (or gzip) could not decrypt an object; ``keys``: because of the keys or passphrase
    (gpg's own words), not the object's bytes."""

    KEY_REASONS = ("Bad session key", "No secret key", "bad passphrase", "Bad passphrase")

    def __init__(self, reason: str):
        super().__init__(reason)
        self.keys = any(words in reason for words in self.KEY_REASONS)

    def described(self) -> str:
        """What to say of the object: ``does not decrypt (gpg's words)``."""
        return f"does not decrypt ({self})"


class Unsigned(Undecryptable):
    """It decrypted, but without the good signature the profile's ``sign_key`` requires;
    ``found``: what gpg found instead."""

    def __init__(self, sign_key: str, found: str):
        super().__init__(f"no good signature by sign_key {sign_key} ({found})")
        self.found = found

    def described(self) -> str:
        return f"decrypts, but with {self}"


@dataclasses.dataclass
class Keys:
    """What it takes to decrypt a profile's objects: gpg with its passphrase, or nothing."""

    mode: str
    passphrase: str | None = None
    gnupghome: str | None = None
    sign_key: str | None = None  # objects must carry its good signature (duplicity's rule)
    source: str = "encryption.passphrase"  # where the passphrase is read from (keys_error)
    profile: str = ""  # the profile's name, for the command keys_error suggests

    @classmethod
    def for_profile(cls, profile: Profile, env: dict[str, str]) -> Keys:
        enc = profile["encryption"]
        return cls(
            mode=enc["mode"],
            passphrase=env.get("PASSPHRASE"),
            gnupghome=env.get("GNUPGHOME") or os.environ.get("GNUPGHOME") or None,
            sign_key=enc.get("sign_key") or None,
            source=passphrase_source(profile),
            profile=profile.name,
        )

    def _check_signer(self, result) -> None:
        """With a ``sign_key``, what duplicity's restore requires of each volume
        (``dup_main.restore_add_sig_check``): a good signature whose key ID ends as
        ``sign_key`` does. python-gnupg calls a decryption ok whatever its signature: a
        volume or manifest forged with the (public) encryption key would pass without this."""
        if not self.sign_key:
            return
        want = self.sign_key  # upper-case hex: the config loader spells it so
        actual = (result.key_id or "").upper() if result.valid else ""
        tail = min(len(actual), len(want))
        if actual and actual[-tail:] == want[-tail:]:
            return
        if actual:
            found = f"signed by {actual}"
        elif result.key_status or result.problems:  # expired, revoked, no public key, bad
            problem = result.problems[-1] if result.problems else {}
            what = result.key_status or problem.get("status") or "no good signature"
            by = f" {problem['keyid']}" if problem.get("keyid") else ""
            found = f"{what}{by}: check that key in the keyring"
        else:
            found = "not signed"
        raise Unsigned(want, found)

    @functools.cached_property
    def _gpg(self):
        return execute.gnupg_client(self.gnupghome)

    def _gpg_args(self) -> dict[str, Any]:
        return {
            "passphrase": execute.duplicity_passphrase(self.passphrase),
            "extra_args": ["--pinentry-mode", "loopback"],
            "always_trust": True,
        }

    def decrypt_bytes(self, data: bytes, name: str) -> bytes:
        """A small object (a manifest) in clear."""
        if name.endswith(".gpg") and self.sign_key:
            result = self._gpg.decrypt(data, **self._gpg_args())
            if not result.ok:
                raise Undecryptable(_gpg_reason(result.stderr, result.status))
            self._check_signer(result)
            return result.data
        if name.endswith(".gpg"):
            with session_keys.memory_file("cfbackup-clear") as clear:  # never on a disk
                sink = _GpgSink(self._sink_argv(), self.passphrase, None, clear)
                self._sink_through(sink, (data,))
                clear.seek(0)
                return clear.read()
        if name.endswith(".gz"):
            return gzip.decompress(data)
        return data

    def decrypt_file(self, source: Path, name: str, output: Path) -> None:
        """Object ``name`` downloaded to ``source``, in clear into ``output``."""
        if name.endswith(".gpg") and self.sign_key:
            with open(source, "rb") as handle:
                result = self._gpg.decrypt_file(handle, output=str(output), **self._gpg_args())
            if not result.ok:
                output.unlink(missing_ok=True)
                raise Undecryptable(_gpg_reason(result.stderr, result.status))
            try:
                self._check_signer(result)
            except Undecryptable:
                output.unlink(missing_ok=True)
                raise
        elif name.endswith(".gpg"):
            with open(source, "rb") as handle:
                chunks = iter(functools.partial(handle.read, CHUNK), b"")
                self._sink_through(self.decrypting(name, output), chunks)
        elif name.endswith(".gz"):
            try:
                with gzip.open(source, "rb") as plain, open(output, "wb") as out:
                    shutil.copyfileobj(plain, out, CHUNK)
            except (OSError, EOFError) as error:
                raise Undecryptable(f"gzip: {error}") from None
        else:
            shutil.copyfile(source, output)

    @staticmethod
    def _sink_through(sink: Sink, chunks) -> None:
        """Write ``chunks`` to ``sink`` and finish it (``stores.Stopped`` when the signal that
        stops the run reached gpg first); abort it on the way out otherwise."""
        try:
            for chunk in chunks:
                sink.write(chunk)
        except BaseException:
            sink.abort()
            raise
        sink.finish()

    def _sink_argv(self) -> list[str]:
        """gpg for a sink. It never judges signatures (``--skip-verify``: a signed profile's
        objects are checked by python-gnupg or duplicity; an unsigned profile's carry none it
        needs): a signed object whose public key is not in the keyring decrypts all the same,
        as python-gnupg counted it."""
        home = ["--homedir", self.gnupghome] if self.gnupghome else []
        return [self._gpg.gpgbinary, "--batch", "--no-tty", *home, "--pinentry-mode", "loopback",
                "--skip-verify"]  # fmt: skip

    def decrypting(self, name: str, output: Path) -> Sink:
        """Object ``name`` decrypted into ``output`` as its bytes are written (a gpg, gzip or
        plain object). ``finish`` raises Undecryptable when it does not decrypt, and
        ``stores.Stopped`` when gpg was killed by a signal that stops runs (a Ctrl-C or SIGTERM
        reached it before the run stopped the download; any other signal is Undecryptable);
        then, and after ``abort``, there is no ``output`` and no gpg left."""
        if name.endswith(".gpg"):
            if self.sign_key:  # this gpg's signature goes unchecked: duplicity checks those
                raise ValueError("decrypting: a signed profile's objects are decrypted whole")
            return _GpgSink(self._sink_argv(), self.passphrase, output)
        if name.endswith(".gz"):
            return _GunzipSink(output)
        return FileSink(output)


_STOPS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT}  # how runs are stopped


_NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device", as gpg reports it


class _GpgSink:
    """gpg decrypting what is written to it into ``output``. With a passphrase it starts once
    the object's first bytes are in: when they are gpg's usual form, the key is derived here
    (``session_keys.py``, a third of gpg's time) and gpg decrypts without deriving it; else gpg
    gets the passphrase and derives it while the rest arrives. gpg reads its input to the end
    even when it cannot decrypt it; when it ends before (killed: a Ctrl-C reaches the whole
    process group) the rest is dropped, never waited on, and the download goes on to its end
    (its hash checked as always) or its stop; ``finish`` then says what gpg said."""

    def __init__(
        self, argv: list[str], passphrase: str | None, output: Path | None, into: IO[bytes] = None
    ):
        """Decrypt into the file ``output``, or into ``into`` (a file the caller owns)."""
        self.output = output
        self._argv = argv
        self._passphrase = passphrase
        self._into = into
        self._out = into or open(output, "wb")  # noqa: SIM115 - closed by finish or abort
        # gpg's few lines (no pipe to drain), in memory: given a session key, gpg 2.2 prints it
        self._err = session_keys.memory_file("gpg-stderr")
        self._ended = False  # gpg stopped reading
        self._process: subprocess.Popen | None = None
        # with a passphrase, gpg starts once the object's head tells its key (session_keys.py)
        self._head = bytearray() if passphrase is not None and session_keys.enabled() else None
        if self._head is None:
            self._start(None)

    def _start(self, session_key: str | None) -> None:
        """gpg, given ``session_key`` when there is one, else the passphrase (if any)."""
        secret, option = (session_key, "--override-session-key-fd")
        if session_key is None:
            secret, option = self._passphrase, "--passphrase-fd"
        argv, readable = self._argv, None
        try:
            if secret is not None:
                readable = session_keys.secret_pipe(secret)
                argv = [*argv, option, str(readable)]
            self._process = execute.fed(
                [*argv, "--decrypt"],
                stdout=self._out,
                stderr=self._err,
                pass_fds=() if readable is None else (readable,),
            )
        except BaseException:
            self._close_files()
            self._drop_output()
            raise
        finally:
            if readable is not None:
                os.close(readable)

    def _begin(self) -> None:
        """The head is in (or the whole object, when smaller): start gpg and feed it that."""
        head, self._head = bytes(self._head or b""), None
        passphrase = (self._passphrase or "").encode("utf-8")
        self._start(session_keys.session_key(head[: session_keys.HEAD], passphrase))
        self._feed(head)

    def write(self, chunk: bytes) -> None:
        if self._head is not None:
            self._head += chunk
            if len(self._head) >= session_keys.HEAD:
                self._begin()
            return
        self._feed(chunk)

    def _feed(self, chunk: bytes) -> None:
        if self._ended:
            return
        try:
            self._process.stdin.write(chunk)  # blocks while gpg is behind: the download waits
        except BrokenPipeError:
            self._ended = True

    def finish(self) -> None:
        if self._head is not None:
            self._begin()
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.close()
        code = self._process.wait()
        if -code in _STOPS:  # the Ctrl-C or SIGTERM stopping the run reached it first
            self.abort()
            raise Stopped
        if code < 0:  # the OOM killer, a crash: the run goes on, and this volume is not read
            self.abort()
            raise Undecryptable(f"gpg was killed by {signal.Signals(-code).name}")
        if code != 0:
            self._err.seek(0)
            said = self._err.read().decode("utf-8", "replace")
            self.abort()
            if _NO_SPACE in said:  # its output's disk, not the volume
                raise OSError(errno.ENOSPC, _NO_SPACE)
            raise Undecryptable(_gpg_reason(said, f"gpg exited with {code}"))
        self._close_files()

    def abort(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            with contextlib.suppress(OSError):
                self._process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=10)
        self._close_files()
        self._drop_output()

    def _drop_output(self) -> None:
        """What gpg wrote is not the object: no file left, nothing in the caller's."""
        if self._into is None:
            self.output.unlink(missing_ok=True)
        elif not self._into.closed:
            self._into.seek(0)
            self._into.truncate()

    def _close_files(self) -> None:
        if self._into is None:
            self._out.close()
        self._err.close()


class _GunzipSink:
    """A gzip object (an unencrypted profile's) undone as its bytes are written, a bounded
    amount at a time; a damaged stream is reported by ``finish``, as gpg's is."""

    def __init__(self, output: Path):
        self.output = output
        self._out = open(output, "wb")  # noqa: SIM115 - closed by finish or abort
        self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._problem = ""

    def write(self, chunk: bytes) -> None:
        if self._problem:
            return
        try:
            while chunk:
                self._out.write(self._member.decompress(chunk, CHUNK))
                chunk = self._member.unconsumed_tail
                if self._member.eof and self._member.unused_data:  # a next member, as gzip reads
                    chunk = self._member.unused_data
                    self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        except zlib.error as error:
            self._problem = f"gzip: {error}"

    def finish(self) -> None:
        if not self._problem and not self._member.eof:
            self._problem = "gzip: the compressed stream ends before its end-of-stream marker"
        if self._problem:
            self.abort()
            raise Undecryptable(self._problem)
        self._out.close()

    def abort(self) -> None:
        self._out.close()
        self.output.unlink(missing_ok=True)


def _gpg_reason(stderr: str | None, fallback: str | None) -> str:
    """gpg's own words for a failed decryption: its last ``gpg:`` line. Never its debug lines:
    given a session key, gpg 2.2 prints it in one (``gpg: DBG: seskey: ...``)."""
    lines = [
        line
        for line in (stderr or "").splitlines()
        if line.startswith("gpg:") and not line.startswith("gpg: DBG:")
    ]
    return lines[-1] if lines else fallback or "gpg failed"
