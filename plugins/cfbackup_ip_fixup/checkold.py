"""The ``dns_check_old`` rule, the same for RFC 2136 and Designate.

A record (one name, one type) that holds only addresses the server has had or has now (old or
new ones) is updated; one that already holds exactly the new addresses is left as it is (an
earlier run did it: that is what makes ip-fixup safe to run again); one that holds any other
address was changed by someone else and is refused, before anything is changed. So is one
that no longer exists while old addresses of its type were given (deleted by hand); one that
never had any (a server's first IPv6 address) is created. Addresses compare as sets, one
spelling each, as RFC 2136 prerequisites do.

Old and new may share addresses (a floating address the cloud handed back), and ``old`` may
span several servers (unpark --force after a failed fix-up: the parked server's and the one
booted since): DNS holds one of them, whichever it is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

UPDATE, ALREADY, CHANGED = "update", "already", "changed"


def _normal(addresses: Iterable[str]) -> frozenset[str]:
    return frozenset(str(ipaddress.ip_address(str(a))) for a in addresses)


def state(current: Iterable[str], old: Iterable[str], new: Iterable[str]) -> str:
    now, before, after = _normal(current), _normal(old), _normal(new)
    if now == after:
        return ALREADY
    if not now:  # no such record: deleted by hand, unless the server never had one
        return CHANGED if before else UPDATE
    return UPDATE if now <= before | after else CHANGED


def describe(record: str, current: Iterable[str], old: Iterable[str], new: Iterable[str]) -> str:
    """``the A record of web1.example.com holds 10.9.9.9, not the old 10.0.0.5 nor the new
    10.0.0.9`` (``record`` is "the A record of NAME")."""
    now = sorted(_normal(current))
    holds = f"holds {' '.join(now)}" if now else "does not exist"
    before = " ".join(sorted(_normal(old)))
    after = " ".join(sorted(_normal(new)))
    if not before:  # every old address of its type was kept
        return f"{record} {holds}, not the new {after}"
    return f"{record} {holds}, not the old {before} nor the new {after}"


def refusal_fix(where: str, count: int, rerun: str) -> str:
    """The fix named after ``count`` refused records (``where``: ``profiles.P.ip_fixup``,
    ``rerun``: the command that runs the fix-up again, rerun.py)."""
    it = "it" if count == 1 else "them"
    return (
        f"someone else changed {it} since (dns_check_old): check {it}; to overwrite {it}, put "
        f"the old addresses back or set dns_check_old = false in [{where}], then run {rerun}"
    )
