"""``cfbackup status`` says when a scheduled drill, verify or backup missed its last run (the
daemon or its timers stopped): a three-week-old "last drill: success" looked as healthy as last
Sunday's, and nothing but a metrics alert could tell."""

from __future__ import annotations

import json
import os
import shlex
import sqlite3

import pytest

pytestmark = pytest.mark.swift  # make_config's fixtures; the profile's target is a file:// URL


def _age_runs(state_dir, action: str, days: float) -> None:
    """Make the runs of ``action`` as old as if they had run ``days`` ago."""
    with sqlite3.connect(state_dir / "history.sqlite3") as conn:
        conn.execute(
            "UPDATE runs SET started=started-?, finished=finished-? WHERE action=?",
            (days * 86400, days * 86400, action),
        )


def _drilled(tmp_path, make_config, cfbackup, schedule: str) -> str:
    """A profile whose drill runs on ``schedule`` (``cron = "..."`` or ``interval = "..."``),
    backed up and drilled once; returns the config."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "file.txt").write_text("proof\n")
    config = make_config(
        target=f"file://{tmp_path}/backups",
        encryption='mode = "none"',
        more=f'[profiles.main.drill]\n{schedule}\nmax_wait = "1m"\nsample = "100%"\n',
    )
    assert cfbackup("-c", config, "backup", "main").returncode == 0
    assert cfbackup("-c", config, "drill", "main").returncode == 0
    return config


def test_a_scheduled_drill_that_missed_its_time_is_flagged_by_status(
    tmp_path, make_config, cfbackup
):
    config = _drilled(tmp_path, make_config, cfbackup, 'cron = "0 5 * * *"')
    fresh = cfbackup("-c", config, "status", "main")
    assert fresh.returncode == 0 and "WARNING" not in fresh.stdout, fresh

    _age_runs(tmp_path / "state", "drill", 3)  # the daemon stopped three days ago
    late = cfbackup("-c", config, "status", "main")
    assert late.returncode == 0, late  # status reports; it never fails for what it finds
    (line,) = [ln.strip() for ln in late.stdout.splitlines() if "WARNING" in ln]
    again = f"cfbackup -c {config} drill main"
    assert line.startswith(
        "WARNING: the drill scheduled in profiles.main.drill (cron '0 5 * * *') was due at "
    ), line
    assert "and has not run since (its last run began " in line, line
    assert line.endswith(f"(cfbackup -c {config} schedule list shows them), or run {again} now."), (
        line
    )
    typo = cfbackup("-c", config, "drill", "main", "--kit", tmp_path / "kit")  # exit 2: no drill
    assert "WARNING" in cfbackup("-c", config, "status", "main").stdout, typo
    data = json.loads(cfbackup("-c", config, "status", "main", "--json").stdout)
    assert [f"WARNING: {w}" for w in data["plugin_warnings"]] == [line]

    assert cfbackup(*shlex.split(again)[1:]).returncode == 0  # the fix, as printed
    done = cfbackup("-c", config, "status", "main")
    assert "WARNING" not in done.stdout, done


def test_a_run_still_going_or_ended_after_its_next_time_is_not_flagged(
    tmp_path, make_config, cfbackup
):
    """An hourly drill that takes 80 minutes: the daemon skips the time due while it runs (one
    run of a schedule at a time), and status said "was due at ... and has not run since" of a
    drill running right then, or just finished: a false alarm at every long run. A drill that
    ended before its time and none since is still flagged."""
    import subprocess
    import sys
    import time

    config = _drilled(tmp_path, make_config, cfbackup, 'cron = "0 * * * *"')
    history = tmp_path / "state" / "history.sqlite3"
    # a cfbackup drill still running (its row has no outcome yet, its pid lives)
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "cfbackup"])
    try:
        now = time.time()
        with sqlite3.connect(history) as conn:
            conn.execute(
                "UPDATE runs SET started=?, finished=NULL, exit_code=NULL, result=NULL, "
                "stats=? WHERE action='drill'",
                (now - 80 * 60, json.dumps({"pid": running.pid})),
            )
        busy = cfbackup("-c", config, "status", "main")
        assert busy.returncode == 0 and "WARNING" not in busy.stdout, busy
    finally:
        running.kill()
        running.wait()
    with sqlite3.connect(history) as conn:  # it ended a minute ago, after the time it skipped
        conn.execute(
            "UPDATE runs SET finished=?, exit_code=0, result='success', stats='{}' "
            "WHERE action='drill'",
            (now - 60,),
        )
    ended = cfbackup("-c", config, "status", "main")
    assert ended.returncode == 0 and "WARNING" not in ended.stdout, ended
    with sqlite3.connect(history) as conn:  # it ended before its next time: that one was missed
        conn.execute("UPDATE runs SET finished=started+60 WHERE action='drill'")
    missed = cfbackup("-c", config, "status", "main")
    assert "WARNING: the drill scheduled in profiles.main.drill" in missed.stdout, missed


def test_the_last_due_time_on_the_night_the_clocks_go_back():
    """Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC). An hourly schedule's
    02:00 CET comes a second time (fold 1); the next due time was asked for from it plus a
    second of wall-clock arithmetic, which dropped the fold (02:00:01 CEST, an hour back): the
    trigger gave 02:00 CET again, and status looped for ever, that night, at every call."""
    import subprocess
    import sys

    code = (
        "from datetime import datetime, UTC\n"
        "from cfbackup_scheduler.spec import Schedule, parse_cron\n"
        "from cfbackup_scheduler.overdue import _last_due\n"
        "for expression in ('0 * * * *', '*/15 * * * *', '30 2 * * *'):\n"
        "    s = Schedule('p', parse_cron(expression), None, 0, 60, action='drill')\n"
        "    for moment in ('2026-10-25T01:30', '2026-10-25T02:20', '2026-10-26T00:40'):\n"
        "        at = datetime.fromisoformat(moment).replace(tzinfo=UTC).astimezone()\n"
        "        print(expression, moment, _last_due(s, at).astimezone(UTC).strftime('%d %H:%M'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "TZ": "Europe/Berlin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "0 * * * * 2026-10-25T01:30 25 01:00",  # 02:00 CET, the second 02:00
        "0 * * * * 2026-10-25T02:20 25 02:00",
        "0 * * * * 2026-10-26T00:40 26 00:00",
        "*/15 * * * * 2026-10-25T01:30 25 01:30",
        "*/15 * * * * 2026-10-25T02:20 25 02:15",
        "*/15 * * * * 2026-10-26T00:40 26 00:30",
        "30 2 * * * 2026-10-25T01:30 25 00:30",  # once, at the first 02:30 (CEST), as cron
        "30 2 * * * 2026-10-25T02:20 25 00:30",
        "30 2 * * * 2026-10-26T00:40 25 00:30",
    ], done.stdout


def test_an_interval_schedule_is_given_the_interval_a_restart_puts_off(
    tmp_path, make_config, cfbackup
):
    """The daemon's interval (and a systemd timer's OnActiveSec) counts from its start: after
    a reboot the next run of an "every 1D" drill comes up to a day after its due time, and
    status flagged a healthy daemon for most of that day. Two intervals without a run still
    are flagged."""
    config = _drilled(tmp_path, make_config, cfbackup, 'interval = "1D"')
    _age_runs(tmp_path / "state", "drill", 1.5)  # the daemon restarted half a day after it
    restarted = cfbackup("-c", config, "status", "main")
    assert restarted.returncode == 0 and "WARNING" not in restarted.stdout, restarted
    _age_runs(tmp_path / "state", "drill", 1)  # two and a half days: missed
    missed = cfbackup("-c", config, "status", "main")
    assert "WARNING: the drill scheduled in profiles.main.drill (every 86400 s)" in (
        missed.stdout
    ), missed
