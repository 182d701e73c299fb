"""The ``dns_check_old`` rule, the same for RFC 2136 and Designate.

A record (one name, one type) that holds exactly the old addresses is updated; one that already
holds exactly the new addresses is left as it is (an earlier run did it: that is what makes
ip-fixup safe to run again); one that holds anything else was changed by someone else and is
refused, before anything is changed. Addresses compare as sets, as RFC 2136 prerequisites do.

An address the server kept (one in both old and new, or left out of old because the server has
it now, as unpark does) may sit beside the old ones: a record holding 10.0.0.5 and the floating
203.0.113.7 that the new server got back is updated from old 10.0.0.5 to new 10.0.0.9 and
203.0.113.7. A record holding only addresses the server has now is still "changed".
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
    if now == before:
        return UPDATE
    lost = before - after  # the old addresses the server no longer has
    if lost and now - after == lost:
        return UPDATE
    return CHANGED


def describe(record: str, current: Iterable[str], old: Iterable[str], new: Iterable[str]) -> str:
    """``the A record of web1.example.com holds 10.9.9.9, not the old 10.0.0.5 nor the new
    10.0.0.9`` (``record`` is "the A record of NAME")."""
    now = sorted(_normal(current))
    holds = f"holds {' '.join(now)}" if now else "does not exist"
    return (
        f"{record} {holds}, not the old {' '.join(sorted(_normal(old)))} "
        f"nor the new {' '.join(sorted(_normal(new)))}"
    )


def refusal_fix(where: str, count: int, rerun: str) -> str:
    """The fix named after ``count`` refused records (``where``: ``profiles.P.ip_fixup``,
    ``rerun``: the command that runs the fix-up again, rerun.py)."""
    it = "it" if count == 1 else "them"
    return (
        f"someone else changed {it} since (dns_check_old): check {it}; to overwrite {it}, put "
        f"the old addresses back or set dns_check_old = false in [{where}], then run {rerun}"
    )
