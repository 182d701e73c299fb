"""The hosts-file rewrite of ip_fixup: property tests over arbitrary hosts files (only the target
lines change, and in them only the address; comments, spacing and line ends are kept; a second
run is a no-op) and the file handling (atomic, owner and mode kept, backup, symlinks)."""

from __future__ import annotations

import os
import pwd
import stat

import pytest
from cfbackup_ip_fixup import hosts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.recovery

OLD = ["10.0.0.5", "203.0.113.7", "2001:db8::5"]
NEW = ["10.0.0.9", "203.0.113.20", "2001:db8::9"]
EXPECTED = {"10.0.0.5": "10.0.0.9", "203.0.113.7": "203.0.113.20", "2001:db8::5": "2001:db8::9"}
NAMES = ["web1", "web1.example.com"]

spaces = st.text(" \t", min_size=1, max_size=4).map(str.encode)
maybe_spaces = st.text(" \t", max_size=3).map(str.encode)
target_name = st.sampled_from(
    ["web1", "WEB1", "web1.example.com", "Web1.Example.COM", "web1.example.com."]
).map(str.encode)
other_name = st.sampled_from(
    [
        "web10",
        "xweb1",
        "web1-db",
        "web1.example.com.evil",
        "db1",
        "localhost",
        "ip6-localhost",
        "web2.example.com",
    ]
).map(str.encode)
address = st.sampled_from(
    [
        *OLD,
        *NEW,
        "127.0.0.1",
        "127.0.1.1",
        "::1",
        "192.0.2.1",
        "not-an-ip",
        "10.0.0.55",
        "2001:db8::50",
    ]
).map(str.encode)
comment_text = st.binary(max_size=20).filter(lambda b: b"\n" not in b)


@st.composite
def entry(draw):
    """(line bytes, expected line bytes after the rewrite)."""
    lead = draw(maybe_spaces)
    addr = draw(address)
    names = draw(st.lists(st.one_of(target_name, other_name), min_size=1, max_size=4))
    seps = [draw(spaces) for _ in names]
    body = b"".join(sep + name for sep, name in zip(seps, names, strict=True))
    trailer = draw(
        st.one_of(
            st.just(b""),
            st.tuples(maybe_spaces, comment_text).map(lambda t: t[0] + b"#" + t[1]),
            maybe_spaces,
        )
    )
    line = lead + addr + body + trailer
    is_target = addr.decode() in EXPECTED and any(
        n.lower().rstrip(b".") in {x.encode() for x in NAMES} for n in names
    )
    expected = lead + EXPECTED[addr.decode()].encode() + body + trailer if is_target else line
    return line, expected


@st.composite
def other_line(draw):
    kind = draw(st.sampled_from(["blank", "comment", "commented-entry", "junk"]))
    if kind == "blank":
        line = draw(maybe_spaces)
    elif kind == "comment":
        line = draw(maybe_spaces) + b"#" + draw(comment_text)
    elif kind == "commented-entry":  # a target only inside a comment: not a target
        line = b"# " + OLD[0].encode() + b" web1"
    else:
        line = draw(st.binary(max_size=30).filter(lambda b: b"\n" not in b))
    return line, line


@st.composite
def hosts_file(draw):
    lines = draw(st.lists(st.one_of(entry(), other_line()), max_size=25))
    crlf = draw(st.booleans())
    final_newline = draw(st.booleans())
    end = b"\r\n" if crlf else b"\n"

    def join(parts):
        text = end.join(parts)
        return text + end if final_newline and parts else text

    return join([a for a, _ in lines]), join([b for _, b in lines])


@settings(max_examples=200, deadline=None)
@given(hosts_file())
def test_only_target_lines_change_and_only_their_address(case):
    data, expected = case
    updated, changes, _warnings = hosts.rewrite(data, NAMES, OLD, NEW)
    assert updated == expected
    assert len(changes) == sum(
        a != b for a, b in zip(data.split(b"\n"), expected.split(b"\n"), strict=True)
    )
    again, second_changes, _ = hosts.rewrite(updated, NAMES, OLD, NEW)
    assert again == updated and second_changes == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_and_untouched_without_a_target(data):
    updated, changes, _ = hosts.rewrite(data, NAMES, OLD, NEW)
    if not changes:
        assert updated == data
    assert len(updated.split(b"\n")) == len(data.split(b"\n"))
    assert hosts.rewrite(updated, NAMES, OLD, NEW)[0] == updated


def test_mapping_follows_the_longest_prefix_and_keeps_addresses_still_owned():
    mapping = hosts.address_map(
        ["10.0.0.5", "203.0.113.7", "10.0.0.6"], ["203.0.113.20", "10.0.0.9", "10.0.0.6"]
    )
    assert {str(k): str(v) for k, v in mapping.items()} == {
        "10.0.0.5": "10.0.0.9",
        "203.0.113.7": "203.0.113.20",
    }
    data = b"10.0.0.6 web1\n2001:db8::5 web1\n"
    updated, changes, warnings = hosts.rewrite(
        data, ["web1"], ["10.0.0.6", "2001:db8::5"], ["10.0.0.6"]
    )
    assert updated == data and changes == []
    assert warnings and "no new IPv6 address" in warnings[0]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=hosts_file(), mode=st.sampled_from([0o644, 0o600, 0o640, 0o444]))
def test_file_replaced_atomically_with_owner_mode_and_backup(tmp_path, case, mode):
    data, expected = case
    etc = tmp_path / "etc"  # the hosts file's folder holds nothing else
    etc.mkdir(exist_ok=True)
    path = etc / "hosts"
    backup = etc / "hosts.cfbackup.bak"
    backup.unlink(missing_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    nobody = pwd.getpwnam("nobody")
    if os.geteuid() == 0:
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    inode = path.stat().st_ino
    changes, _ = hosts.fix_file(path, NAMES, OLD, NEW)
    assert path.read_bytes() == expected
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == mode
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (nobody.pw_uid, nobody.pw_gid)
    if changes:
        assert info.st_ino != inode  # replaced, not written in place
        assert backup.read_bytes() == data and stat.S_IMODE(backup.stat().st_mode) == mode
    else:
        assert info.st_ino == inode and not backup.exists()
    assert hosts.fix_file(path, NAMES, OLD, NEW)[0] == []
    assert path.stat().st_ino == info.st_ino  # the second run does not even rewrite
    # exactly these files: a leftover temp file (.hosts.cfbackup-*) from the rewrite fails here
    left = sorted(p.name for p in etc.iterdir())
    assert left == (["hosts", "hosts.cfbackup.bak"] if changes else ["hosts"]), left


def test_symlinked_hosts_file_keeps_its_link(tmp_path):
    real = tmp_path / "real-hosts"
    real.write_bytes(b"127.0.0.1\tlocalhost\n10.0.0.5\tweb1  # the web server\n")
    link = tmp_path / "hosts"
    link.symlink_to(real)
    changes, _ = hosts.fix_file(link, ["web1"], ["10.0.0.5"], ["10.0.0.9"], backup=False)
    assert [(c.line, c.old, c.new) for c in changes] == [(2, "10.0.0.5", "10.0.0.9")]
    assert link.is_symlink()
    assert real.read_bytes() == b"127.0.0.1\tlocalhost\n10.0.0.9\tweb1  # the web server\n"
