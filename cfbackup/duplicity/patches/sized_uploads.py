"""Uploads carry a Content-Length, and a 413 ends the run at once (a core patch).

Two fixes to duplicity 3.2's swift backend, applied when duplicity imports it:

1. Uploads carry a Content-Length. The backend hands swiftclient an open file without a length,
   so swiftclient sends it chunked, and Swift's quota middlewares do not check a chunked PUT
   (DESIGN.md section 5): over-quota volumes were accepted, whatever plugins were on.
2. A 413 ("Upload exceeds quota.") stops the backup at once, with the container's and the
   account's numbers in the message, instead of five retries 30 s apart.

Nothing else changes. ``CFBACKUP_NO_SIZED_UPLOADS=1`` switches it off for one run.
"""

import os
import sys

_TARGET = "duplicity.backends.swiftbackend"


def _with_length(put_object):
    def put_object_with_length(self, container, obj, contents, content_length=None, **kwargs):
        if content_length is None and hasattr(contents, "fileno") and hasattr(contents, "tell"):
            try:
                size = os.fstat(contents.fileno()).st_size
                content_length = max(0, size - contents.tell())
            except (OSError, ValueError):
                content_length = None
        return put_object(self, container, obj, contents, content_length=content_length, **kwargs)

    put_object_with_length.cfbackup_patched = True
    return put_object_with_length


def _numbers(backend, name, size):
    """One line with what Swift says now; best effort (the 413 is the real news)."""
    parts = [f"object {name} ({size} bytes)"]
    try:
        h = backend.conn.head_container(backend.container)
        parts.append(
            f"container {backend.container}: {h.get('x-container-bytes-used')} bytes in "
            f"{h.get('x-container-object-count')} objects, quota "
            f"{h.get('x-container-meta-quota-bytes') or 'none'} bytes / "
            f"{h.get('x-container-meta-quota-count') or 'none'} objects"
        )
        a = backend.conn.head_account()
        quota = a.get("x-account-quota-bytes") or a.get("x-account-meta-quota-bytes")
        parts.append(
            f"account: {a.get('x-account-bytes-used')} bytes in "
            f"{a.get('x-account-object-count')} objects, quota {quota or 'none'} bytes / "
            f"{a.get('x-account-quota-count') or 'none'} objects"
        )
        used, limit = int(h.get("x-container-bytes-used", 0)), h.get("x-container-meta-quota-bytes")
        count, climit = (
            int(h.get("x-container-object-count", 0)),
            h.get("x-container-meta-quota-count"),
        )
        container_full = (limit and used + size > int(limit)) or (
            climit and count + 1 > int(climit)
        )
        parts.insert(0, "scope=container" if container_full or not quota else "scope=account")
    except Exception as error:  # noqa: BLE001 - numbers are a bonus
        parts.append(f"(could not read usage: {type(error).__name__})")
    return "; ".join(parts)


def _fatal_on_413(put):
    def _put(self, source_path, remote_filename):
        try:
            return put(self, source_path, remote_filename)
        except Exception as error:
            if getattr(error, "http_status", None) != 413:
                raise
            import multiprocessing

            from duplicity.errors import FatalBackendException

            name = self.prefix + os.fsdecode(remote_filename)
            try:
                size = os.path.getsize(os.fsdecode(source_path.name))
            except OSError:
                size = -1
            message = f"Upload exceeds quota (HTTP 413): {_numbers(self, name, size)}"
            if multiprocessing.parent_process() is not None:
                # a worker of duplicity's upload pool (--concurrency): the pool passes on the
                # exception's type and code, not its message; its stderr reaches cfbackup
                print(message, file=sys.stderr, flush=True)
            raise FatalBackendException(message, code=53) from None

    _put.cfbackup_patched = True
    return _put


def _patch(module):
    import swiftclient.client

    connection = swiftclient.client.Connection
    if not getattr(connection.put_object, "cfbackup_patched", False):
        connection.put_object = _with_length(connection.put_object)
    backend = getattr(module, "SwiftBackend", None)
    put = getattr(backend, "_put", None)
    if put is not None and not getattr(put, "cfbackup_patched", False):
        backend._put = _fatal_on_413(put)


def applies(env):
    return not env.get("CFBACKUP_NO_SIZED_UPLOADS")


def apply(env):
    from cfbackup.duplicity.patches import after_import

    after_import(_TARGET, _patch)
