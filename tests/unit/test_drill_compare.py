"""How the drill compares what duplicity restored with what the backup recorded: besides the
bytes, the type, the permission bits, the mtime (to the second, as duplicity keeps it), a
device's numbers and, as root, the owner; a mismatch says what differs."""

from __future__ import annotations

import os
import stat

import pytest

from cfbackup import drill, drill_compare, signatures


def _entry(path, kind, mode, mtime=1_000_000_000, uid=None, gid=None, **more):
    st_uid, st_gid = os.geteuid(), os.getegid()
    return signatures.Entry(
        path,
        kind,
        mtime,
        mode=mode,
        uid=st_uid if uid is None else uid,
        gid=st_gid if gid is None else gid,
        **more,
    )


def _check(entry, restored, source):
    result = drill_compare.FileResult(entry.path, 0)
    drill_compare.compare(entry, restored, source, result)
    return result


def _file(path, text, mode, mtime=1_000_000_000.7):
    path.write_text(text)
    path.chmod(mode)
    os.utime(path, (mtime, mtime))
    return path


def test_a_file_with_the_right_bytes_and_the_wrong_mode_is_a_mismatch(tmp_path):
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir(), out.mkdir()
    _file(source / "app.conf", "key = value\n", 0o644)
    restored = _file(out / "app.conf", "key = value\n", 0o600)
    entry = _entry("app.conf", signatures.FILE, stat.S_IFREG | 0o644, block_len=512, blocks=1)
    result = _check(entry, restored, source)
    assert result.status == drill_compare.MISMATCH
    assert result.reason == "restored with mode 0600, the backup recorded 0644"
    restored.chmod(0o644)
    assert _check(entry, restored, source).status == drill_compare.MATCH  # mtime: to the second
    os.utime(restored, (1_000_000_005, 1_000_000_005))
    result = _check(entry, restored, source)
    assert result.status == drill_compare.MISMATCH
    assert "restored with mtime 2001-09-09 01:46:45 UTC, the backup recorded 2001-09-09 " in (
        result.reason
    )


def test_set_uid_bits_folders_and_fifos(tmp_path):
    out = tmp_path / "out"
    (out / "empty").mkdir(parents=True)
    (out / "empty").chmod(0o700)
    os.utime(out / "empty", (1_000_000_000, 1_000_000_000))
    os.mkfifo(out / "fifo", 0o640)
    os.chmod(out / "fifo", 0o640)
    os.utime(out / "fifo", (1_000_000_000, 1_000_000_000))
    folder = _entry("empty", signatures.DIRECTORY, stat.S_IFDIR | 0o700)
    assert _check(folder, out / "empty", tmp_path).reference == "metadata"
    folder.mode = stat.S_IFDIR | 0o2700
    assert _check(folder, out / "empty", tmp_path).reason == (
        "restored with mode 0700, the backup recorded 2700"
    )
    fifo = _entry("fifo", signatures.OTHER, stat.S_IFIFO | 0o640)
    assert _check(fifo, out / "fifo", tmp_path).status == drill_compare.MATCH
    as_folder = _entry("fifo", signatures.DIRECTORY, stat.S_IFDIR | 0o640)
    assert _check(as_folder, out / "fifo", tmp_path).reason == (
        "restored as a FIFO, the backup recorded a folder"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="a restore keeps owners only as root")
def test_owner_and_device_numbers_as_root(tmp_path):
    os.mknod(tmp_path / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    os.utime(tmp_path / "null", (1_000_000_000, 1_000_000_000))
    device = _entry("null", signatures.OTHER, stat.S_IFCHR | 0o600, device=(1, 3))
    assert _check(device, tmp_path / "null", tmp_path).status == drill_compare.MATCH
    device.device, device.uid, device.gid = (1, 5), 1234, 4321
    assert _check(device, tmp_path / "null", tmp_path).reason == (
        "restored with owner 0:0, the backup recorded 1234:4321; "
        "restored as device 1,3, the backup recorded 1,5"
    )


def test_a_symlink_is_compared_by_its_target_only(tmp_path):
    (tmp_path / "link").symlink_to("etc/app.conf")  # its own mode and mtime are not restored
    link = _entry("link", signatures.SYMLINK, stat.S_IFLNK | 0o777, 5, linkname="etc/app.conf")
    assert _check(link, tmp_path / "link", tmp_path).reference == "link target"


def test_what_a_drill_samples():
    entries = {
        e.path: e
        for e in (
            _entry("", signatures.DIRECTORY, stat.S_IFDIR | 0o755),
            _entry("etc", signatures.DIRECTORY, stat.S_IFDIR | 0o755),
            _entry("etc/app.conf", signatures.FILE, stat.S_IFREG | 0o644),
            _entry("empty", signatures.DIRECTORY, stat.S_IFDIR | 0o700),
            _entry("fifo", signatures.OTHER, stat.S_IFIFO | 0o644),
            _entry("link", signatures.SYMLINK, stat.S_IFLNK | 0o777),
        )
    }
    # not the source folder (the whole backup) nor a folder with something in it
    assert [e.path for e in drill._sampleable(entries)] == ["empty", "etc/app.conf", "fifo", "link"]


def test_a_file_name_with_a_newline_is_one_line_of_the_drill_s_report():
    """The drill names each file on a line of its own: a newline or a tab in the name is
    spelled out, as an ESC or a byte that is not UTF-8 is."""
    result = drill_compare.FileResult(os.fsdecode(b"a\nb\tc\x1b\xe9"), 0, reason="differs")
    assert result.describe() == "a\\x0ab\\x09c\\x1b\\xe9: differs"


def test_a_source_file_that_cannot_be_read_falls_back_to_the_signature(tmp_path, monkeypatch):
    """A source file as the backup recorded it (mtime, size) that the drill cannot read (no
    permission for its user, an I/O error on NFS) is no internal error: the restored bytes are
    compared with the signature instead, and a wrong byte is still a mismatch."""
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir(), out.mkdir()
    _file(source / "secret", "s3cret\n", 0o600)
    restored = _file(out / "secret", "s3cret\n", 0o600)
    entry = _entry(
        "secret",
        signatures.FILE,
        stat.S_IFREG | 0o600,
        block_len=512,
        blocks=1,
        signature=signatures.of_file(restored, 512),
    )

    def unreadable(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(source / "secret"))

    monkeypatch.setattr(drill_compare.filecmp, "cmp", unreadable)
    result = _check(entry, restored, source)
    assert (result.status, result.reference) == (drill_compare.MATCH, "signature"), result
    _file(out / "secret", "s3creT\n", 0o600)
    result = _check(entry, restored, source)
    assert result.status == drill_compare.MISMATCH and "signature" in result.reason, result
