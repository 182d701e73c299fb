"""duplicity restores from a local copy that cfbackup is still filling (a core patch).

cfbackup fetches a restore's volumes ahead, several at once (``cfbackup/prefetch.py``), into
a folder it names in ``CFBACKUP_PREFETCH_DIR``, and runs ``duplicity restore file://FOLDER``.
For that folder only, duplicity's file backend:

1. lists the names cfbackup wrote to ``FOLDER/.listing`` (the chain's manifests and volumes),
   not what is there yet;
2. waits for a volume that is still on its way (asking for it with ``NAME.want``, so a volume
   needed out of the expected order comes next), then moves it into its temp folder instead of
   copying it: the copy holds only the volumes fetched ahead, and each is read once. It fails
   at once with cfbackup's sentence when cfbackup could not fetch the volume (``NAME.failed``,
   or ``.failed`` for the whole fetch), and when cfbackup is gone;
3. with ``CFBACKUP_PREFETCH_CLEAR=1``, trusts the volumes' hashes: cfbackup checked each
   downloaded object against its manifest hash (the check duplicity makes) before it decrypted
   it, and gpg checked the decryption; duplicity would hash the clear copy against the hash of
   the encrypted object and fail.

Nothing changes for any other folder or backend.
"""

import contextlib
import os
import time

ENV = "CFBACKUP_PREFETCH_DIR"
CLEAR = "CFBACKUP_PREFETCH_CLEAR"
LISTING = ".listing"
FAILED = ".failed"
_BACKEND = "duplicity.backends.localbackend"
_MAIN = "duplicity.dup_main"
POLL = 0.02  # seconds between looks at the folder while a volume is on its way


def _failure(folder, name):
    for marker in (f"{name}{FAILED}", FAILED):
        try:
            with open(os.path.join(folder, marker), encoding="utf-8") as handle:
                return handle.read().strip() or "cfbackup could not fetch it"
        except FileNotFoundError:
            continue
    return None


def _move(source, local_path):
    """Move ``source`` to ``local_path`` (a duplicity Path); False when it is not there yet."""
    try:
        os.replace(source, local_path.name)
    except FileNotFoundError:
        return False
    except OSError:  # another filesystem: copy, then drop the original
        with open(source, "rb") as handle:
            local_path.writefileobj(handle)
        os.unlink(source)
    local_path.setdata()
    return True


def _take(folder, name, local_path, parent):
    """Wait for ``name`` in ``folder`` and move it to ``local_path`` (a duplicity Path)."""
    from duplicity.errors import FatalBackendException

    source = os.path.join(folder, name)
    asked = False
    while True:
        if _move(source, local_path):
            if asked:
                with contextlib.suppress(OSError):
                    os.unlink(f"{source}.want")
            return
        problem = _failure(folder, name)
        if problem is not None:
            raise FatalBackendException(f"[cfbackup] {problem}", code=50)
        if os.getppid() != parent:
            raise FatalBackendException(f"[cfbackup] gone while {name} was on its way", code=50)
        if not asked:
            try:
                with open(f"{source}.want", "w"):
                    pass
            except OSError as error:
                raise FatalBackendException(f"[cfbackup] {name}: {error}", code=50) from None
            asked = True
        time.sleep(POLL)


def _patch_backend(module, folder):
    backend = module.LocalBackend
    if getattr(backend._get, "cfbackup_patched", False):
        return
    get, listing = backend._get, backend._list
    parent = os.getppid()

    def ours(self):
        return os.path.realpath(os.fsdecode(self.remote_pathdir.name)) == folder

    def _get(self, filename, local_path):
        name = os.fsdecode(filename)
        if not ours(self) or ".difftar" not in name:
            return get(self, filename, local_path)
        _take(folder, name, local_path, parent)

    def _list(self):
        if not ours(self):
            return listing(self)
        with open(os.path.join(folder, LISTING), "rb") as handle:
            return [line for line in handle.read().split(b"\n") if line]

    _get.cfbackup_patched = True
    backend._get, backend._list = _get, _list


def _patch_main(module):
    check = module.restore_check_hash
    if getattr(check, "cfbackup_patched", False):
        return

    def restore_check_hash(volume_info, vol_path):
        return True, volume_info.get_best_hash(), None

    restore_check_hash.cfbackup_patched = True
    module.restore_check_hash = restore_check_hash


def applies(env):
    return bool(env.get(ENV))


def apply(env):
    from cfbackup.duplicity.patches import after_import

    folder = os.path.realpath(env[ENV])
    after_import(_BACKEND, lambda module: _patch_backend(module, folder))
    if env.get(CLEAR) == "1":
        after_import(_MAIN, _patch_main)
