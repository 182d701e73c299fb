"""``cfbackup quota set`` command-line mistakes are USAGE (2), found before Swift is asked."""

from __future__ import annotations

import pytest

from cfbackup.cli import main
from cfbackup.errors import ExitCode


@pytest.mark.parametrize(
    "args, says",
    [
        ((), "give --bytes N and/or --count N"),
        (("--count", "12k"), "is not a count"),
        (("--count", "1.5"), "is not a count"),
        (("--bytes", "lots"), "is not a size"),
        (("--bytes", "5M", "--admin-user", "admin"), "--admin-password-env"),
    ],
)
def test_quota_set_command_line_mistakes_are_usage_errors(cli, config, args, says):
    # the profile's target is file://, so anything past the arguments would be a CONFIG error
    code, err = cli(main, "-c", config, "quota", "set", "main", *args)
    assert code == ExitCode.USAGE, err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_quota_set_on_a_target_without_swift_is_still_a_config_error(cli, config):
    code, err = cli(main, "-c", config, "quota", "set", "main", "--bytes", "5M")
    assert code == ExitCode.CONFIG and "is not a swift:// target" in err, err
