"""The history's writes are each one transaction: a new database's table, index and first row
are one commit (three before: each some fdatasyncs, 10-60 ms on a busy disk, all before a
backup's duplicity starts), and a writer takes SQLite's write lock first (``BEGIN IMMEDIATE``),
so that it waits for another writer instead of failing at once."""

from __future__ import annotations

import sqlite3
import threading
import time

from cfbackup import history


def _traced(monkeypatch) -> list[str]:
    """Every statement the history module's connections run, in order."""
    statements: list[str] = []
    real = sqlite3.connect

    def connect(*args, **kwargs):
        conn = real(*args, **kwargs)
        conn.set_trace_callback(lambda sql: statements.append(" ".join(sql.split())))
        return conn

    monkeypatch.setattr(history.sqlite3, "connect", connect)
    return statements


def test_a_new_database_and_its_first_row_are_one_commit(tmp_path, monkeypatch):
    statements = _traced(monkeypatch)
    run_id = history.record_start(tmp_path / "state", "p", "backup", {"kind": "full"})
    # nothing before the transaction starts (a CREATE there commits on its own)
    assert statements[0] == "BEGIN IMMEDIATE"
    assert statements[-1] == "COMMIT"
    assert [s.split()[0] for s in statements[1:-1]] == ["CREATE", "CREATE", "INSERT"]
    statements.clear()
    history.record_finish(tmp_path / "state", run_id, 0, "ok", "done", {"n": 1})
    assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT"
    assert statements.count("COMMIT") == 1
    (row,) = history.runs(tmp_path / "state", "p")
    assert (row["id"], row["result"], row["stats"]) == (run_id, "ok", {"n": 1})


def test_a_writer_waits_for_another_writer(tmp_path):
    state = tmp_path / "state"
    history.record_start(state, "p", "backup")
    other = sqlite3.connect(
        state / "history.sqlite3", isolation_level=None, check_same_thread=False
    )
    other.execute("BEGIN IMMEDIATE")  # another run writing its row
    released = threading.Timer(0.5, other.execute, ("COMMIT",))
    released.start()
    started = time.monotonic()
    try:
        second = history.record_start(state, "p", "backup")
    finally:
        released.join()
        other.close()
    assert time.monotonic() - started >= 0.4
    assert [r["id"] for r in history.runs(state, "p")] == [second, 1]
