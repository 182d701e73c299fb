"""Each run's outcome in a small SQLite database, for ``status`` and ``history``."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

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


def _connect(state_dir: Path) -> sqlite3.Connection:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / "history.sqlite3"
    if not path.exists():  # messages may name hosts and paths: private, like the run logs
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    conn = sqlite3.connect(path, timeout=10)
    conn.executescript(SCHEMA)
    return conn


def record_start(state_dir: Path, profile: str, action: str) -> int:
    with contextlib.closing(_connect(state_dir)) as conn, conn:
        cur = conn.execute(
            "INSERT INTO runs (profile, action, started) VALUES (?, ?, ?)",
            (profile, action, time.time()),
        )
        return int(cur.lastrowid)


def record_finish(
    state_dir: Path, run_id: int, exit_code: int, result: str, message: str, stats: dict[str, Any]
) -> None:
    with contextlib.closing(_connect(state_dir)) as conn, conn:
        conn.execute(
            "UPDATE runs SET finished=?, exit_code=?, result=?, message=?, stats=? WHERE id=?",
            (time.time(), exit_code, result, message, json.dumps(stats, default=str), run_id),
        )


def runs(state_dir: Path, profile: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    if not (state_dir / "history.sqlite3").exists():
        return []
    with contextlib.closing(_connect(state_dir)) as conn:
        conn.row_factory = sqlite3.Row
        query = "SELECT * FROM runs" + (" WHERE profile=?" if profile else "")
        rows = conn.execute(
            query + " ORDER BY started DESC, id DESC LIMIT ?",
            ((profile,) if profile else ()) + (limit,),
        ).fetchall()
    out = []
    for row in rows:
        item = dict(row)
        item["stats"] = json.loads(item["stats"]) if item["stats"] else {}
        out.append(item)
    return out


def last(state_dir: Path, profile: str, action: str, result: str) -> dict[str, Any] | None:
    if not (state_dir / "history.sqlite3").exists():
        return None
    with contextlib.closing(_connect(state_dir)) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute(
            "SELECT * FROM runs WHERE profile=? AND action=? AND result=? "
            "ORDER BY started DESC, id DESC LIMIT 1",
            (profile, action, result),
        ).fetchone()
    if row is None:
        return None
    item = dict(row)
    item["stats"] = json.loads(item["stats"]) if item["stats"] else {}
    return item


def newest_stat(state_dir: Path, profile: str, action: str, key: str, results: tuple[str, ...]):
    """Statistic ``key`` of the newest ``action`` run of ``profile`` that ended in one of
    ``results`` and recorded it, however many runs came since (most record none); None if none
    did."""
    if not (state_dir / "history.sqlite3").exists():
        return None
    marks = ", ".join("?" for _ in results)
    with contextlib.closing(_connect(state_dir)) as conn:
        row = conn.execute(
            "SELECT json_extract(stats, ?) FROM runs WHERE profile=? AND action=? "
            f"AND result IN ({marks}) AND json_extract(stats, ?) IS NOT NULL "
            "ORDER BY started DESC, id DESC LIMIT 1",
            (f'$."{key}"', profile, action, *results, f'$."{key}"'),
        ).fetchone()
    return None if row is None else row[0]
