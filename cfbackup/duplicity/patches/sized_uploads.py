"""Uploads carry a Content-Length, a 413 ends the run at once, and an upload's answer is its
check (a core patch).

Three changes to duplicity 3.2's swift backend, applied when duplicity imports it:

1. Uploads carry a Content-Length. The backend hands swiftclient an open file without a length,
   so swiftclient sends it chunked, and Swift's quota middlewares do not check a chunked PUT
   (DESIGN.md section 5): over-quota volumes were accepted, whatever plugins were on.
2. A 413 ("Upload exceeds quota.") stops the backup at once, with the container's and the
   account's numbers in the message, instead of five retries 30 s apart.
3. An upload is checked by its own answer. After each volume's upload duplicity asked Swift
   for the object's size (a HEAD through ``SwiftService.stat``: one more round trip per
   volume, 20-80 ms each across a network) and compared it with the file's.
   A PUT that carried a Content-Length and was answered with success (201) stored exactly
   that many bytes (Swift reads that many bytes of the body, no more, and answers an error
   when fewer come), so that answer is the same check: duplicity's ``BackendWrapper.validate``
   accepts the upload the backend's connection just made with that length, once, and does its
   own check as before for anything else (a segmented ``--mp-segment-size`` upload, a length
   unknown).

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
        self.cfbackup_stored = None
        etag = put_object(self, container, obj, contents, content_length=content_length, **kwargs)
        if content_length is not None:  # a success: Swift stored exactly that many bytes
            self.cfbackup_stored = (container, obj, content_length)
        return etag

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


def _checked_by_its_answer(validate):
    """duplicity's ``BackendWrapper.validate`` (its check after each volume's upload): the
    upload the Swift backend's connection just made with that length is accepted once without
    a request; anything else goes to duplicity's own check (its query, retries and all)."""

    def validate_by_answer(self, remote_filename, expected_size, source_path=None):
        backend = self.backend
        conn = getattr(backend, "conn", None)
        stored = getattr(conn, "cfbackup_stored", None)
        if stored is not None:
            name = getattr(backend, "prefix", "") + os.fsdecode(remote_filename)
            if stored == (getattr(backend, "container", None), name, expected_size):
                conn.cfbackup_stored = None  # one answer checks one upload
                return True, "Swift answered the upload of that length with success"
        return validate(self, remote_filename, expected_size, source_path=source_path)

    validate_by_answer.cfbackup_patched = True
    return validate_by_answer


def _patch(module):
    import swiftclient.client

    connection = swiftclient.client.Connection
    if not getattr(connection.put_object, "cfbackup_patched", False):
        connection.put_object = _with_length(connection.put_object)
    backend = getattr(module, "SwiftBackend", None)
    put = getattr(backend, "_put", None)
    if put is not None and not getattr(put, "cfbackup_patched", False):
        backend._put = _fatal_on_413(put)
    from duplicity import backend as duplicity_backend

    wrapper = duplicity_backend.BackendWrapper
    if not getattr(wrapper.validate, "cfbackup_patched", False):
        wrapper.validate = _checked_by_its_answer(wrapper.validate)


def applies(env):
    return not env.get("CFBACKUP_NO_SIZED_UPLOADS")


def apply(env):
    from cfbackup.duplicity.patches import after_import

    after_import(_TARGET, _patch)
