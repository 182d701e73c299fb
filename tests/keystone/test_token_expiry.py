"""Token expiry never breaks a run: backups that outlive several token lifetimes complete, with a
password (duplicity's swiftclient re-authenticates) and with an application credential (the
application-credential patch's keystoneauth1 session does), and Swift's proxy log shows the 401s
mid-run; duplicity starts with the token of cfbackup's checks (the handed-token patch), which
expires in its hands. Restores and verifies of those backups are frozen (SIGSTOP) in the middle
of their downloads for longer than a token lives, and complete when they go on.

The two backups (keystone_helpers.ExpiryRuns) start with the session, in the background; this
test waits for them and reads the evidence.
"""

from __future__ import annotations

import datetime
import os
import re
import signal
import subprocess
import time

import pytest
from keystone_helpers import TOKEN_LIFETIME, ExpiryRuns, run_logs
from support.cli import BIN

pytestmark = [pytest.mark.keystone, pytest.mark.slow]

LOG_LINE = re.compile(r" (\d\d/\w{3}/\d{4}/\d\d/\d\d/\d\d) (\w+) (/v1/\S+) HTTP/1\.\d (\d{3}) ")
# a volume object's path (/v1/ACCOUNT/CONTAINER/...volN.difftar...), not a listing's: the proxy
# logs a listing's query quoted (CONTAINER%3F...marker%3D...vol9.difftar.gpg), with no / after
# the container
VOLUME = re.compile(r"^/v1/[^/]+/[^/]+/\S*\.vol\d+\.difftar")


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
        patched = bool(re.search(r"duplicity patches: [^\n]*\bapplication-credential\b", logs))
        assert patched == (project == "expiry-appcred"), project
        # duplicity started with the checks' token: it expired in its hands, and was replaced
        # inside swiftclient's own retry, never by duplicity's (which waits and spends one of
        # its attempts: with an application credential swiftclient alone gives up on the 401
        # to a token its session did not issue, and duplicity retried the PUT)
        assert "handed-token" in logs, project
        assert "duplicity retries it" not in logs, (project, logs[-3000:])
        tier.assert_no_secret(logs)


def _new_requests(tier, account: str, skip: int) -> list[tuple[str, str, int]]:
    """(method, path, status) of the requests to ``account`` logged after line ``skip``."""
    found = []
    for line in tier.proxy_log()[skip:]:
        match = LOG_LINE.search(line)
        if match and match[3].startswith(f"/v1/{account}"):
            found.append((match[2], match[3], int(match[4])))
    return found


def _spawn(tier, config, env, action: tuple[str, ...], account: str) -> dict:
    """Start ``cfbackup -c CONFIG ACTION`` in a process group of its own."""
    skip = len(tier.proxy_log())
    process = subprocess.Popen(
        [str(BIN / "cfbackup"), "-c", str(config), *action],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    return {"process": process, "account": account, "skip": skip}


def test_restore_and_verify_outlive_the_token(tier, token_expiry_runs, tmp_path):
    """Each run is frozen once it has downloaded a volume, for longer than a token lives; the
    downloads after the pause use a new token (duplicity's after a 401; the restore prefetch's
    keystoneauth renews before it asks), the run completes. The two projects' restores, then
    their verifies, run and are frozen side by side: each project is an account of its own, so
    Swift's log tells their requests apart.

    The freeze waits for a volume object's GET (VOLUME), not any path naming a volume: cfbackup
    lists the target before duplicity starts (keep_lost_manifests), and that listing's last
    page asks for the names after the last volume (marker=...vol9.difftar.gpg). Frozen there,
    verify's duplicity started after the pause with a fresh token: no 401, and a duplicity
    that never re-authenticated passed."""
    env = {**tier.cli_env(token_expiry_runs.base), "T_KS_APPCRED": token_expiry_runs.secret}
    results = token_expiry_runs.results()
    for project in ExpiryRuns.PROJECTS:
        assert results[project][0].returncode == 0, (project, results[project][0])
    for name in ("restore", "verify"):
        runs = {}
        for project in ExpiryRuns.PROJECTS:
            action = (
                ("restore", "main", str(tmp_path / project))
                if name == "restore"
                else ("verify", "main")
            )
            runs[project] = _spawn(
                tier, token_expiry_runs.configs[project], env, action, tier.account(project)
            )
        deadline = time.monotonic() + 120
        waiting = set(runs)
        while waiting:
            for project in sorted(waiting):
                run = runs[project]
                if any(
                    m == "GET" and VOLUME.match(p) and s == 200
                    for m, p, s in _new_requests(tier, run["account"], run["skip"])
                ):
                    os.killpg(run["process"].pid, signal.SIGSTOP)  # cfbackup and duplicity
                    run["frozen"] = time.monotonic()
                    waiting.discard(project)
                else:
                    assert run["process"].poll() is None, (project, run["process"].communicate())
            assert time.monotonic() < deadline, f"{name} never downloaded a volume: {waiting}"
            time.sleep(0.05)
        # the token's lifetime is the point: it must pass. A run may have been given a new
        # token until it was frozen: the later one frozen waits a whole lifetime (and a margin).
        last = max(run["frozen"] for run in runs.values())
        time.sleep(max(0.0, last + TOKEN_LIFETIME + 3 - time.monotonic()))
        resumed = len(tier.proxy_log())
        for run in runs.values():
            os.killpg(run["process"].pid, signal.SIGCONT)
        for project, run in runs.items():
            out, err = run["process"].communicate(timeout=300)
            assert run["process"].returncode == 0, (project, name, err)
            tier.assert_no_secret(out + err)
            requests = _new_requests(tier, run["account"], run["skip"])
            after = _new_requests(tier, run["account"], resumed)
            refused = [p for _m, p, status in after if status == 401]
            # every token issued before the pause has expired: a volume downloaded after it was
            # downloaded with a new one. duplicity learns it from a 401; cfbackup's own restore
            # prefetch (keystoneauth) renews an expired token before using it, so no 401 there.
            later = [p for m, p, s in after if m == "GET" and s == 200 and VOLUME.match(p)]
            assert later, (project, name, requests)
            if name == "verify":  # duplicity's own downloads, frozen mid-run with its token
                assert refused, f"{project} verify: no 401 after the pause: {requests}"
            print(f"{project} {name}: {len(refused)} x 401, {len(later)} volumes after pause")
    for project in ExpiryRuns.PROJECTS:
        restored = tmp_path / project
        assert restored.is_dir(), project
        assert sorted(p.name for p in restored.iterdir()) == sorted(
            p.name for p in token_expiry_runs.source.iterdir()
        ), project
