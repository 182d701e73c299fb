"""The ``dns_check_old`` rule (checkold.py), the same for RFC 2136 and Designate: what a record
holds now decides whether it is updated, already done, or was changed by someone else."""

from __future__ import annotations

import pytest
from cfbackup_ip_fixup.checkold import ALREADY, CHANGED, UPDATE, state

A, F, X = "10.0.0.5", "203.0.113.7", "10.0.0.9"  # lost, kept (a floating IP), gained


@pytest.mark.parametrize(
    ("current", "old", "new", "verdict"),
    [
        ([A], [A], [X], UPDATE),
        ([X], [A], [X], ALREADY),
        (["10.9.9.9"], [A], [X], CHANGED),
        ([], [A], [X], CHANGED),  # deleted by hand
        # the server kept F: old may name it (ip-fixup --old A,F) or leave it out (unpark)
        ([A, F], [A, F], [X, F], UPDATE),
        ([A, F], [A], [X, F], UPDATE),
        ([F, X], [A], [X, F], ALREADY),
        ([F], [A], [X, F], UPDATE),  # only the server's own addresses: nobody else's change
        ([A], [A, F], [X, F], UPDATE),
        ([A, F, "10.9.9.9"], [A], [X, F], CHANGED),
        ([A, F], [F], [X, F], CHANGED),  # A is none of the server's
        # every old address of the type was kept (unpark leaves it out): a hand-made change
        # is still refused, the server's address left alone
        (["198.51.100.77"], [], [F], CHANGED),
        ([F], [], [F], ALREADY),
        ([], [], [X], UPDATE),  # the server's first address of the type: the record is made
        # unpark --force over a server booted since: DNS holds one generation, either one
        ([X], [A, X], ["10.0.0.14"], UPDATE),
        ([A], [A, X], ["10.0.0.14"], UPDATE),
        (["2001:db8:0::5"], ["2001:db8::5"], ["2001:db8::9"], UPDATE),  # one spelling
    ],
)
def test_the_rule(current, old, new, verdict):
    assert state(current, old, new) == verdict
