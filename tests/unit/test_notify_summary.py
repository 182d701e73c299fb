"""A notification carries the run's own warnings beside the ones every run repeats: a backup
that succeeded but whose retention deletes Swift could not confirm says so in the mail, and
mails with ``when = "warnings"``; a warning every run repeats (a config others can read) does
not make every run mail."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from cfbackup_notify import should_send, summary

from cfbackup.errors import ExitCode

UNCONFIRMED = "retention ran, but the deletes of 3 object(s) could not be confirmed"


def _built(*, ok=True, standing=(), own=()):
    """The summary of a run whose profile repeats ``standing`` and whose result carried ``own``."""
    run = SimpleNamespace(
        profile=SimpleNamespace(name="main", source="/srv", target="swift://c",
                                secret_file_warnings=list(standing)),
        config=SimpleNamespace(permission_warning=None),
        action="backup", started=0.0, log_file=None,
    )  # fmt: skip
    result = SimpleNamespace(
        ok=ok, result="success" if ok else "duplicity",
        exit_code=ExitCode.OK if ok else ExitCode.DUPLICITY, message="backup done",
        duration=1.0, stats={}, error=None, warnings=list(own),
    )  # fmt: skip
    return summary.build(run, result)


def test_the_runs_own_warnings_reach_the_summary_and_its_text():
    built = _built(standing=["secret file readable"], own=[UNCONFIRMED])
    assert built["warnings"] == ["secret file readable", UNCONFIRMED]
    assert built["run_warnings"] == 1  # the standing one is not the run's
    assert "WARNING: retention ran" in summary.text(built)


@pytest.mark.parametrize(
    ("when", "plain", "standing", "own", "failed"),
    [
        ("failure", False, False, False, True),
        ("warnings", False, False, True, True),
        ("always", True, True, True, True),
    ],
)
def test_when_decides_whether_mail_and_webhook_go_out(when, plain, standing, own, failed):
    assert should_send(when, _built()) is plain
    assert should_send(when, _built(standing=["secret file readable"])) is standing
    assert should_send(when, _built(own=[UNCONFIRMED])) is own
    assert should_send(when, _built(ok=False)) is failed


def test_the_subject_counts_the_runs_own_warnings():
    assert summary.subject(_built(), "[x]").endswith(": OK")
    assert summary.subject(_built(standing=["secret file readable"]), "[x]").endswith(": OK")
    assert summary.subject(_built(own=[UNCONFIRMED]), "[x]").endswith(": OK, 1 warning")
    two = _built(own=[UNCONFIRMED, UNCONFIRMED.replace("3", "2")])
    assert summary.subject(two, "[x]").endswith(": OK, 2 warnings")
    assert summary.subject(_built(ok=False, own=[UNCONFIRMED]), "[x]").endswith(
        ": FAILED (duplicity)"
    )
