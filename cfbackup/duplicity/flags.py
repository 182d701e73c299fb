"""Small helpers that turn profile values into duplicity flags (argv is data: tuples)."""

from __future__ import annotations

from collections.abc import Iterable


def flag(name: str, value: object | None) -> tuple[str, ...]:
    """``--name=value``, or nothing when value is None or empty.

    Always bound with ``=``: duplicity 3 reads a separate value that starts with ``-`` as an
    option (DESIGN.md section 5).
    """
    if value is None or value == "" or value is False:
        return ()
    if value is True:
        return (name,)
    return (f"{name}={value}",)


def repeated(name: str, values: Iterable[object]) -> tuple[str, ...]:
    return tuple(f"{name}={value}" for value in values)
