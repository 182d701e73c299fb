"""Each run's outcome in a small SQLite database, for ``status`` and ``history``."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from cfbackup.units import printable

log = logging.getLogger("cfbackup")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    profile TEXT NOT NULL,
    action TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    exit_code INTEGER,
    result TEXT,
    message TEXT,
    stats TEXT
);
CREATE INDEX IF NOT EXISTS runs_profile ON runs(profile, started);
"""


def _connect(state_dir: Path, *, write: bool = False) -> sqlite3.Connection:
    """The database, its table made if new. ``write``: in a transaction the caller's ``with
    conn`` commits, the table's creation included: a new database's table, index and first row
    in one commit, not three (each some fdatasyncs: 10-60 ms on this disk, before a backup's
    duplicity starts). IMMEDIATE: the write lock is taken (or waited for) first, never asked for
    by a reader that holds a read lock, which SQLite refuses at once when another writer waits."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / "history.sqlite3"
    if not path.exists():  # messages may name hosts and paths: private, like the run logs
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    conn = sqlite3.connect(path, timeout=10)
    if not write:
        conn.executescript(SCHEMA)
        return conn
    try:
        conn.execute("BEGIN IMMEDIATE")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
    except BaseException:
        conn.close()
        raise
    return conn


def record_start(
    state_dir: Path, profile: str, action: str, stats: dict[str, Any] | None = None
) -> int:
    """A run begins; ``stats``: what is known of it already (its kind, ``Run.marks``), kept
    when it never records its outcome (kill -9)."""
    with contextlib.closing(_connect(state_dir, write=True)) as conn, conn:
        cur = conn.execute(
            "INSERT INTO runs (profile, action, started, stats) VALUES (?, ?, ?, ?)",
            (profile, action, time.time(), _json(stats) if stats else None),
        )
        return int(cur.lastrowid)


def forget(state_dir: Path, run_id: int) -> None:
    """Remove the row of a run that ran nothing (stopped while it waited for the lock, or a
    schedule's second firing skipped): it is neither a failure nor a run ``status`` shows."""
    with contextlib.closing(_connect(state_dir, write=True)) as conn, conn:
        conn.execute("DELETE FROM runs WHERE id=?", (run_id,))


def record_finish(
    state_dir: Path,
    run_id: int,
    exit_code: int,
    result: str,
    message: str,
    stats: dict[str, Any],
    *,
    started: float | None = None,
) -> None:
    """A run ends; ``started``: when it really started (it took the profile lock), if later
    than its row was written (a wait for the lock is not part of its duration)."""
    with contextlib.closing(_connect(state_dir, write=True)) as conn, conn:
        conn.execute(
            "UPDATE runs SET finished=?, exit_code=?, result=?, message=?, stats=?, "
            "started=MAX(started, COALESCE(?, started)) WHERE id=?",
            # SQLite keeps UTF-8: a name that is not is kept as caf\\xe9
            (time.time(), exit_code, result, printable(message), _json(stats), started, run_id),
        )


def _json(stats: dict[str, Any]) -> str:
    """``stats`` as JSON SQLite reads: a NaN or an infinity (Python writes them as ``NaN``,
    which is not JSON) becomes null, else every later ``json_extract`` over the table fails."""

    def finite(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [finite(v) for v in value]
        return value

    return json.dumps(finite(stats), default=str)


def runs(
    state_dir: Path,
    profile: str | None = None,
    limit: int = 50,
    *,
    actions: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """The newest runs first (of ``profile``; of ``actions`` only, when given)."""
    if not (state_dir / "history.sqlite3").exists():
        return []
    where, args = [], []
    if profile:
        where.append("profile=?")
        args.append(profile)
    if actions:
        where.append(f"action IN ({', '.join('?' for _ in actions)})")
        args += actions
    with contextlib.closing(_connect(state_dir)) as conn:
        conn.row_factory = sqlite3.Row
        query = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        rows = conn.execute(
            query + " ORDER BY started DESC, id DESC LIMIT ?", (*args, limit)
        ).fetchall()
    out = []
    for row in rows:
        item = dict(row)
        item["stats"] = json.loads(item["stats"]) if item["stats"] else {}
        out.append(item)
    return out


# a --dry-run changed nothing at the target: never "the last backup" (or prune) that happened
NOT_DRY = "NOT COALESCE(CASE WHEN json_valid(stats) THEN json_extract(stats, '$.dry_run') END, 0)"


def last(state_dir: Path, profile: str, action: str, *results: str) -> dict[str, Any] | None:
    """The newest ``action`` run of ``profile`` that ended in one of ``results``, however many
    other runs came since."""
    if not (state_dir / "history.sqlite3").exists():
        return None
    marks = ", ".join("?" for _ in results)
    with contextlib.closing(_connect(state_dir)) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute(
            f"SELECT * FROM runs WHERE profile=? AND action=? AND result IN ({marks}) "
            f"AND {NOT_DRY} ORDER BY started DESC, id DESC LIMIT 1",
            (profile, action, *results),
        ).fetchone()
    if row is None:
        return None
    item = dict(row)
    item["stats"] = json.loads(item["stats"]) if item["stats"] else {}
    return item


# the results of a backup whose new set is at the target (a partial one lacks some files;
# one whose retention failed afterwards is complete)
AT_TARGET = ("success", "partial", "retention_failed")


def last_backup_at_target(state_dir: Path, profile: str) -> dict[str, Any] | None:
    """The newest backup of ``profile`` whose set reached the target, however many other runs
    (``status``, ``check``, drills) came since."""
    return last(state_dir, profile, "backup", *AT_TARGET)


def newest_stat(state_dir: Path, profile: str, action: str, key: str, results: tuple[str, ...]):
    """Statistic ``key`` of the newest ``action`` run of ``profile`` that ended in one of
    ``results`` and recorded it, however many runs came since (most record none); None if none
    did."""
    if not (state_dir / "history.sqlite3").exists():
        return None
    marks = ", ".join("?" for _ in results)
    valid = "CASE WHEN json_valid(stats) THEN json_extract(stats, ?) END"  # a row of older code
    try:
        with contextlib.closing(_connect(state_dir)) as conn:
            row = conn.execute(
                f"SELECT {valid} FROM runs WHERE profile=? AND action=? "
                f"AND result IN ({marks}) AND {valid} IS NOT NULL AND {NOT_DRY} "
                "ORDER BY started DESC, id DESC LIMIT 1",
                (f'$."{key}"', profile, action, *results, f'$."{key}"'),
            ).fetchone()
    except sqlite3.Error as error:  # a statistic is a hint: never a reason to stop a backup
        log.debug("history: %s of %s not read: %s", key, profile, error)
        return None
    return None if row is None else row[0]


def stat_values(state_dir: Path, profile: str, action: str, key: str) -> list[Any]:
    """Every value statistic ``key`` took in ``profile``'s ``action`` runs that recorded it,
    newest first (e.g. the include roots each backup backed up)."""
    if not (state_dir / "history.sqlite3").exists():
        return []
    valid = "CASE WHEN json_valid(stats) THEN json_extract(stats, ?) END"  # a row of older code
    try:
        with contextlib.closing(_connect(state_dir)) as conn:
            rows = conn.execute(
                f"SELECT {valid} FROM runs WHERE profile=? AND action=? AND {valid} IS NOT NULL "
                f"AND {NOT_DRY} ORDER BY started DESC, id DESC",
                (f'$."{key}"', profile, action, f'$."{key}"'),
            ).fetchall()
    except sqlite3.Error as error:
        log.debug("history: %s of %s not read: %s", key, profile, error)
        return []
    return [json.loads(row[0]) if isinstance(row[0], str) else row[0] for row in rows]
