"""Token expiry never breaks a run: backups that outlive several token lifetimes complete, with a
password (duplicity's swiftclient re-authenticates) and with an application credential (the
application-credential patch's keystoneauth1 session does), and Swift's proxy log shows the 401s
mid-run.

The two backups (keystone_helpers.ExpiryRuns) start with the session, in the background; this
test waits for them and reads the evidence.
"""

from __future__ import annotations

import datetime
import re

import pytest
from keystone_helpers import TOKEN_LIFETIME, ExpiryRuns, run_logs

pytestmark = [pytest.mark.keystone, pytest.mark.slow]

LOG_LINE = re.compile(r" (\d\d/\w{3}/\d{4}/\d\d/\d\d/\d\d) (\w+) (/v1/\S+) HTTP/1\.\d (\d{3}) ")


def _requests(tier, account: str) -> list[tuple[datetime.datetime, str, int]]:
    """(time, method, status) of every request to ``account`` in the proxy's log."""
    found = []
    for line in tier.proxy_log():
        match = LOG_LINE.search(line)
        if match and match[3].startswith(f"/v1/{account}"):
            when = datetime.datetime.strptime(match[1], "%d/%b/%Y/%H/%M/%S")
            found.append((when, match[2], int(match[4])))
    return found


def test_backups_outlive_the_token_with_a_password_and_an_application_credential(
    tier, token_expiry_runs
):
    for project, (result, seconds) in token_expiry_runs.results().items():
        assert result.returncode == 0, (project, result)
        files = ExpiryRuns.VOLUMES + 1  # and the folder
        assert f"{files} files, {files} new" in result.stdout, (project, result)
        assert seconds > 2 * TOKEN_LIFETIME, (project, seconds)

        requests = _requests(tier, tier.account(project))
        puts = [when for when, method, status in requests if method == "PUT" and status < 300]
        rejected = [when for when, _method, status in requests if status == 401]
        assert rejected, f"{project}: no 401 in Swift's log: the token never expired mid-run"
        assert min(puts) < min(rejected) and max(rejected) < max(puts), (project, requests)
        assert len(puts) > ExpiryRuns.VOLUMES, (project, len(puts))
        print(f"{project}: {seconds:.0f} s, {len(puts)} uploads, {len(rejected)} x 401")

        logs = run_logs(token_expiry_runs.base / project)
        patched = "duplicity patches: application-credential" in logs
        assert patched == (project == "expiry-appcred"), project
        tier.assert_no_secret(logs)
