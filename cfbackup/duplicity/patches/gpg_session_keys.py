"""Each gpg duplicity starts to decrypt a file encrypted with the passphrase gets the file's
session key, derived in duplicity's process (``cfbackup/session_keys.py``), instead of deriving
it from the passphrase itself.

gpg 2.2 takes 0.16-0.2 s of CPU to derive a passphrase-encrypted file's key, hashlib 0.03-0.07
s. duplicity decrypts with gpg whatever cfbackup does not decrypt ahead: on a machine whose
archive dir is empty (the new machine after an incident) every manifest and signature file of
the chain, before anything is restored; a signed profile's volumes; ``verify``'s volumes;
``collection-status`` and ``list-current-files`` syncing the archive dir. Two files a set: a
chain of a full and 30 incrementals costs 12 s of derivations, 4 s here.

When duplicity makes a ``GPGFile`` to decrypt (``gpg.GPGFile.__init__`` with ``encrypt``
false), with the passphrase on a pipe (no ``--use-agent``, no gpgsm), the file's first bytes
are read and its key derived and checked (``session_keys.session_key``); gpg then also gets
``--override-session-key-fd`` on a pipe of its own holding the key (never its command line) and
decrypts without deriving. Files of another form (public keys, another cipher) and a
passphrase that is not the file's get gpg exactly as duplicity starts it: its verdict and
message are duplicity's. gpg 2.2 prints a key it is given on its stderr (``gpg: DBG: seskey:``):
that stderr is kept in memory, and left out of the GPGError duplicity raises with it.
``CFBACKUP_NO_SESSION_KEYS=1`` switches it off for one run.
"""

from __future__ import annotations

import contextlib
import os
import threading

OFF = "CFBACKUP_NO_SESSION_KEYS"  # the same switch as cfbackup's own decryptions
_pending = threading.local()  # the key for the gpg the current GPGFile is about to start


def applies(env):
    return bool(env.get("PASSPHRASE")) and not env.get(OFF)


def apply(env):
    from duplicity import config, gpg, gpginterface

    from cfbackup import session_keys

    genuine_init = gpg.GPGFile.__init__
    genuine_run = gpginterface.GnuPG.run
    genuine_failed = gpg.GPGFile.gpg_failed

    def key_of(encrypt_path, profile) -> str | None:
        if config.use_agent or config.use_gpgsm or not profile.passphrase:
            return None
        try:
            with encrypt_path.open("rb") as handle:
                head = handle.read(session_keys.HEAD)
            passphrase = profile.passphrase.encode("utf-8")
        except (OSError, UnicodeError):  # duplicity's own open and write report it
            return None
        return session_keys.session_key(head, passphrase)

    def __init__(self, encrypt, encrypt_path, profile):
        _pending.key = None if encrypt else key_of(encrypt_path, profile)
        _pending.file = self
        try:
            genuine_init(self, encrypt, encrypt_path, profile)
        finally:
            _pending.key = _pending.file = None

    def run(self, gnupg_commands, args=None, create_fhs=None, attach_fhs=None):
        key, owner = getattr(_pending, "key", None), getattr(_pending, "file", None)
        if key is None or owner is None or list(gnupg_commands) != ["--decrypt"]:
            return genuine_run(self, gnupg_commands, args, create_fhs, attach_fhs)
        _pending.key = None
        # gpg 2.2 prints the key it is given ("gpg: DBG: seskey: ..."): its stderr goes to
        # memory, never to a file in the temp dir
        attach_fhs = dict(attach_fhs or {})
        owner.stderr_fp.close()
        owner.stderr_fp = attach_fhs["stderr"] = session_keys.memory_file("gpg-stderr")
        readable = session_keys.secret_pipe(key)
        try:
            os.set_inheritable(readable, True)  # gpginterface forks and execs: gpg gets it
            self.options.extra_args.extend(["--override-session-key-fd", str(readable)])
            return genuine_run(self, gnupg_commands, args, create_fhs, attach_fhs)
        finally:
            with contextlib.suppress(OSError):
                os.close(readable)

    def gpg_failed(self):
        """duplicity's GPGError quotes gpg's whole stderr: never the line with the key."""
        self.stderr_fp.seek(0)
        kept = [line for line in self.stderr_fp if not line.startswith(b"gpg: DBG:")]
        self.stderr_fp.seek(0)
        self.stderr_fp.truncate()
        self.stderr_fp.writelines(kept)
        return genuine_failed(self)

    gpg.GPGFile.__init__ = __init__
    gpg.GPGFile.gpg_failed = gpg_failed
    gpginterface.GnuPG.run = run
