"""Fixtures shared by the unit tests that call a command-line entry point in-process."""

import logging
import textwrap

import pytest


@pytest.fixture(autouse=True)
def _no_config_in_suggestions():
    """A command run in-process leaves its ``-c FILE`` in ``suggest`` for the fix commands it
    prints: every test starts without one, whatever ran before it in the same worker."""
    from cfbackup import suggest

    suggest.use_config(None)
    yield
    suggest.use_config(None)


@pytest.fixture(autouse=True)
def _no_secrets_from_other_tests():
    """Secrets an in-process run registers for masking stay in ``redact`` for the process: a
    test's fake secret ("secret", say) would mask another test's paths. Each unit test starts
    with none registered, whichever tests ran before it in the worker, and ends with the
    registry as it found it."""
    from cfbackup import redact

    values, variables = set(redact._values), set(redact._variables)
    with redact._lock:  # what tests of other folders in this worker registered, too
        redact._values.clear()
        redact._variables.clear()
    yield
    with redact._lock:
        redact._values.clear()
        redact._values.update(values)
        redact._variables.clear()
        redact._variables.update(variables)


@pytest.fixture
def cli(capsys):
    """Call ``cfbackup``'s or ``dt-cf-backup``'s main in-process; returns (code, stderr)."""
    logger = logging.getLogger("cfbackup")
    handlers = list(logger.handlers)

    def call(main, *argv: str) -> tuple[int, str]:
        code = main([str(a) for a in argv])
        return code, capsys.readouterr().err

    yield call
    for handler in logger.handlers[:]:
        if handler not in handlers:
            logger.removeHandler(handler)


@pytest.fixture
def config(tmp_path):
    """A profile backing up to a file:// target (nothing in these tests reaches it)."""
    (tmp_path / "src").mkdir()
    path = tmp_path / "config.toml"
    path.write_text(
        textwrap.dedent(f"""\
        state_dir = "{tmp_path}/state"

        [profiles.main]
        source = "{tmp_path}/src"
        target = "file://{tmp_path}/target"
        archive_dir = "{tmp_path}/archive"
        restore_prefetch = 0

        [profiles.main.encryption]
        mode = "none"
        """)
    )
    path.chmod(0o600)
    return path
