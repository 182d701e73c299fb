"""The strace log parser behind the secrets test (tests/support/exectrace.py) records every
program that ran, also when strace split an execve in two lines (a busy machine, or threads)."""

from __future__ import annotations

import pytest
from support.exectrace import parse

LOG = """\
100 execve("/usr/bin/cfbackup", ["cfbackup", "backup"], ["HOME=/root", "A=b=c"]) = 0
101 execve("/usr/local/bin/gpg", ["gpg", "--batch"], ["HOME=/root"]) = -1 ENOENT (No such file)
101 execve("/usr/bin/gpg", ["gpg", "--batch"], ["HOME=/root"] <unfinished ...>
102 execve("/bin/sh", ["sh", "-c", "echo \\"hi\\""], ["X=1"] <unfinished ...>
101 <... execve resumed>)             = 0
103 execve("/bin/true", ["true"], [] <unfinished ...>
104 +++ superseded by execve in pid 103 +++
104 <... execve resumed>)             = 0
102 <... execve resumed>)             = -1 EACCES (Permission denied)
101 +++ exited with 0 +++
"""


def test_split_and_superseded_execves_are_recorded_and_failed_ones_are_not():
    records = parse(LOG)
    assert [(r.pid, r.program, r.argv) for r in records] == [
        (100, "cfbackup", ["cfbackup", "backup"]),
        (101, "gpg", ["gpg", "--batch"]),
        (104, "true", ["true"]),
    ]
    assert records[0].env == {"HOME": "/root", "A": "b=c"}


def test_a_resumed_execve_without_its_start_fails_rather_than_going_unrecorded():
    with pytest.raises(AssertionError, match="no start"):
        parse('105 <... execve resumed>)             = 0\n')
