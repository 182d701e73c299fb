"""``cfbackup verify``: every volume downloads, decrypts and matches its hashes; with
``--compare-data`` also the files on disk. A difference is its own exit code."""

from __future__ import annotations

import re

from cfbackup.actions.common import duplicity, prepare
from cfbackup.duplicity import commands
from cfbackup.errors import VerifyDifferences
from cfbackup.runner import Run, RunResult

SUMMARY = re.compile(r"Verify complete: (\d+) file\(s\) compared, (\d+) difference\(s\) found")


def run_verify(run: Run) -> RunResult:
    profile = run.profile
    env = prepare(run, need_secret_key=True)
    compare = bool(run.options.get("compare_data"))
    result = duplicity(
        run,
        lambda fd: commands.verify_argv(
            profile, compare_data=compare, time=run.options.get("time"), log_fd=fd
        ),
        env,
        check=False,
    )
    compared = differences = None
    found: list[str] = []
    for record in result.records:
        match = SUMMARY.search(record.message)
        if match:
            compared, differences = int(match.group(1)), int(match.group(2))
        if record.message.startswith("Difference found:"):
            found.append(record.message.removeprefix("Difference found:").strip())
    stats = {"compared": compared, "differences": differences}
    if result.returncode == 1 and differences:
        shown = "; ".join(found[:5]) + (" ..." if len(found) > 5 else "")
        raise VerifyDifferences(
            f"verify of {profile.name} found {differences} difference(s) in {compared} file(s): "
            f"{shown}"
        )
    if result.returncode != 0:
        from cfbackup.duplicity.run import classify_failure

        raise classify_failure(result)
    what = "backup and files match" if compare else "every volume is intact"
    return RunResult(
        profile=profile.name,
        action="verify",
        stats=stats,
        message=f"verify of {profile.name} passed: {compared} file(s), {what}",
    )
