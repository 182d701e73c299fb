"""Times the config hands to duplicity (``retention.remove_older_than``, ``full_if_older_than``,
and the legacy variables mapped to them) are read with duplicity's own parser when the config
is loaded: before, a value duplicity rejects passed the schema's pattern and failed mid-run
(retention after the backup had run), and values duplicity reads were refused."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from cfbackup.config import build_config, load_config
from cfbackup.errors import ConfigError, ExitCode

FORMS = "an age (3D, 12h, 1W2D; units s m h D W M Y), a date (2026-11-01"


def _profile(**keys) -> dict:
    body = {"source": "/srv", "target": "file:///x", "encryption": {"mode": "none"}, **keys}
    return {"profiles": {"web1": body}}


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"retention": {"remove_older_than": "2026-01-01T1:2"}}, "retention.remove_older_than"),
        ({"retention": {"remove_older_than": "2026-01-01T01:02"}}, "retention.remove_older_than"),
        ({"full_if_older_than": "2026-01-01T1:2"}, "full_if_older_than"),
        ({"full_if_older_than": "3 days"}, "full_if_older_than"),
    ],
)
def test_a_time_duplicity_rejects_is_a_config_error_at_load(keys, named):
    with pytest.raises(ConfigError) as caught:
        build_config(_profile(**keys), path=None)
    value = next(iter(keys.values()))
    value = value["remove_older_than"] if isinstance(value, dict) else value
    message = caught.value.message
    assert caught.value.exit_code == ExitCode.CONFIG
    assert f"profiles.web1.{named}: {value!r} is not a time duplicity reads: give " in message
    assert FORMS in message and message.endswith("Unix seconds or now.")
    assert ("'never', or an age" in message) == (named == "full_if_older_than")


@pytest.mark.parametrize(
    "value", ["6M", "1W2D", "2026/11/01", "11/01/2026", "2026-11-01T02:30:00+01:00", "1700000000"]
)
def test_every_form_duplicity_reads_is_accepted(value):
    config = build_config(
        _profile(full_if_older_than=value, retention={"remove_older_than": value}), path=None
    )
    profile = config.profile("web1")
    assert profile["full_if_older_than"] == value
    assert profile["retention"]["remove_older_than"] == value


def test_a_legacy_file_names_the_variable_the_bad_time_came_from(tmp_path):
    conf = tmp_path / "dt.conf"
    conf.write_text(
        textwrap.dedent("""\
        ROOT=/srv
        DEST=file:///x
        ENCRYPTION=no
        STATIC_OPTIONS="--full-if-older-than 2026-01-01T1:2"
        CLEAN_UP_TYPE=remove-older-than
        CLEAN_UP_VARIABLE="6 months"
        """)
    )
    conf.chmod(0o600)
    with pytest.raises(ConfigError) as caught:
        load_config(conf)
    message = caught.value.message
    assert caught.value.exit_code == ExitCode.CONFIG
    assert "2 problem(s)" in message
    assert (
        "profiles.dt-cf-backup.full_if_older_than (the file's --full-if-older-than in "
        "STATIC_OPTIONS): '2026-01-01T1:2' is not a time duplicity reads" in message
    )
    assert (
        "profiles.dt-cf-backup.retention.remove_older_than (the file's REMOVE_OLDER_THAN, or "
        "CLEAN_UP_VARIABLE with CLEAN_UP_TYPE=remove-older-than): '6 months' is not a time "
        "duplicity reads" in message
    )


def test_the_next_backup_plan_reads_full_if_older_than_as_duplicity_does():
    """The plan (compress_level auto, the quota guard's estimate) read only some of the forms:
    a date such as 2026/11/01 forced no full in the plan while duplicity's backup made one."""
    from duplicity import dup_time

    from cfbackup.next_backup import interval_seconds

    now = 1_800_000_000.0
    for value in ("2026/11/01", "1700000000", "1W2D", "2026-11-01T02:30:00Z"):
        assert interval_seconds(value, now) == dup_time.genstrtotime(value, int(now)), value
    assert interval_seconds("never", now) is None


def test_help_and_a_config_without_times_do_not_import_duplicity(tmp_path):
    """duplicity costs 50 ms or more to import: ``cfbackup --help`` stays fast."""
    code = textwrap.dedent("""\
        import contextlib, io, sys
        from cfbackup.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["--help"])
            except SystemExit:
                pass
        from cfbackup.config import build_config
        build_config({"profiles": {"a": {"source": "/", "target": "file:///x"}}}, path=None)
        print(sorted(m for m in sys.modules if m.startswith("duplicity")))
        """)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
