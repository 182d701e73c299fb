"""A notification carries the run's own warnings beside the ones every run repeats: a backup
that succeeded but whose retention deletes Swift could not confirm says so in the mail."""

from __future__ import annotations

from types import SimpleNamespace

from cfbackup_notify import summary

from cfbackup.errors import ExitCode


def test_the_runs_own_warnings_reach_the_summary_and_its_text():
    run = SimpleNamespace(
        profile=SimpleNamespace(name="main", source="/srv", target="swift://c",
                                secret_file_warnings=["secret file readable"]),
        config=SimpleNamespace(permission_warning=None),
        action="backup", started=0.0, log_file=None,
    )  # fmt: skip
    result = SimpleNamespace(
        ok=True, result="success", exit_code=ExitCode.OK, message="backup done",
        duration=1.0, stats={}, error=None,
        warnings=["retention ran, but the deletes of 3 object(s) could not be confirmed"],
    )  # fmt: skip
    built = summary.build(run, result)
    assert built["warnings"] == [
        "secret file readable",
        "retention ran, but the deletes of 3 object(s) could not be confirmed",
    ]
    assert "WARNING: retention ran" in summary.text(built)
