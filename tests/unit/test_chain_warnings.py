"""split_chains: a chain's warning (its deletes Swift could not confirm) stays in the run's
history when another chain fails the run; before, the first chain's failure left it on stderr
and in the run log only."""

from __future__ import annotations

import pytest

from cfbackup import chains, history
from cfbackup.actions import backup, maintenance
from cfbackup.errors import BackendError, ExitCode, RetentionFailed

WARNING = "retention ran on chain /a, but the deletes of 3 object(s) could not be confirmed"


@pytest.fixture
def split(config, tmp_path):
    """The unit tests' profile split into two chains (/a, /b), with a retention to run."""
    for root in ("a", "b"):
        (tmp_path / "src" / root).mkdir()
        (tmp_path / "src" / root / "file").write_text(root)
    config.write_text(
        config.read_text().replace(
            "restore_prefetch = 0\n",
            f'restore_prefetch = 0\nsplit_chains = true\ninclude = ["{tmp_path}/src/a", '
            f'"{tmp_path}/src/b"]\n\n[profiles.main.retention]\nkeep_full = 1\n',
        )
    )
    return config


def _objects_at_target(tmp_path) -> None:
    """An object in each chain's folder at the target: prune and cleanup on a target with
    nothing of the profile say there is nothing to do, without running duplicity."""
    for root in ("a", "b"):
        folder = tmp_path / "target" / chains.slug_of(root)
        folder.mkdir(parents=True)
        (folder / "duplicity-full.20261201T000000Z.manifest").write_bytes(b"")


def _assert_recorded(tmp_path, exit_code: int, failure: str, warning: str) -> None:
    """The run's history row: the failure's exit code, its message, and the other chain's
    warning beside it."""
    run = history.runs(tmp_path / "state", "main", limit=1)[0]
    assert run["exit_code"] == exit_code
    assert failure in run["message"], run
    assert f"warning: {warning}" in run["message"], run


def _a_warns_b_fails(error):
    def retention(run, chain, env, **_):
        if chain.root == "a":
            return WARNING
        raise error

    return retention


def test_a_backup_whose_other_chain_fails_retention_keeps_the_warning(
    cli, split, tmp_path, monkeypatch
):
    from cfbackup.cli import main

    monkeypatch.setattr(backup, "retention", _a_warns_b_fails(RetentionFailed("refused")))
    code, err = cli(main, "-c", split, "backup")
    assert code == ExitCode.RETENTION_FAILED, err
    _assert_recorded(tmp_path, ExitCode.RETENTION_FAILED, "chain /b: refused", WARNING)


@pytest.mark.parametrize(
    "error", [RetentionFailed("refused"), BackendError("refused")], ids=["refused", "backend"]
)
def test_a_prune_whose_other_chain_fails_keeps_the_warning(
    cli, split, tmp_path, monkeypatch, error
):
    from cfbackup.cli import main

    monkeypatch.setattr(maintenance, "prepare", lambda run: {})
    _objects_at_target(tmp_path)
    monkeypatch.setattr(backup, "retention", _a_warns_b_fails(error))
    code, err = cli(main, "-c", split, "prune")
    assert code == error.exit_code, err
    _assert_recorded(tmp_path, error.exit_code, "chain /b: refused", WARNING)


def test_a_cleanup_whose_other_chain_fails_keeps_the_warning(cli, split, tmp_path, monkeypatch):
    from cfbackup.cli import main

    class Check:  # chain /a: deletes unconfirmed; chain /b: a delete refused
        def __init__(self, profile, done):
            self.refused = "" if profile["include"][0].endswith("/a") else "1 object(s) left"
            self.unconfirmed = "the deletes of 1 object(s) could not be confirmed"

    monkeypatch.setattr(maintenance, "prepare", lambda run: {})
    _objects_at_target(tmp_path)
    monkeypatch.setattr(maintenance, "duplicity", lambda run, argv, env, **options: None)
    monkeypatch.setattr(maintenance, "check_deletes", Check)
    code, err = cli(main, "-c", split, "cleanup")
    assert code == ExitCode.RETENTION_FAILED, err
    _assert_recorded(
        tmp_path,
        ExitCode.RETENTION_FAILED,
        "chain /b: cleanup failed: 1 object(s) left",
        "cleanup ran on chain /a, but the deletes of 1 object(s) could not be confirmed",
    )
