"""Every way Keystone authentication goes wrong: one line naming the cause and the fix, the
documented exit code, no traceback and no secret. Each case runs ``check`` (cfbackup's own
client, which pinpoints the cause); the cases marked DUPLICITY also run ``list``, where duplicity
(or its application-credential patch) fails first and cfbackup diagnoses the failure afterwards:
one case per way duplicity reports it. The cases run concurrently to keep the tier short."""

from __future__ import annotations

import datetime
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from keystone_helpers import appcred_swift, password_swift

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.keystone

WRONG = "Xq7-not-the-password"
DUPLICITY = {  # one case per kind of failure duplicity or cfbackup's patch reports
    "wrong password",  # keystoneclient: "Unauthorized. Check username/id, password, ..."
    "a role Swift does not accept",  # swiftclient: "Container PUT failed ... 403 Forbidden"
    "none in the region",  # swiftclient: "Endpoint for object-store not found"
    "Keystone unreachable",  # keystoneauth1: "Unable to establish connection to .../auth/tokens"
    "application credential deleted",  # the patch: "[cfbackup] Keystone does not know ..."
}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_keystone_failures_are_one_clear_line(tmp_path, tier, write_config, cfbackup):
    auditor = tier.keystone.user("auditor")
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)
    expired_id, expired_secret = tier.application_credential(
        expires_at=expires.strftime("%Y-%m-%dT%H:%M:%S")
    )
    deleted_id, deleted_secret = tier.application_credential()
    tier.keystone.delete_application_credential(deleted_id)
    closed = f"http://127.0.0.1:{_closed_port()}/v3"

    # name -> ([swift] table, environment, what check and list must say)
    cases = {
        "wrong password": (
            password_swift(tier),
            {"T_KS_PASSWORD": WRONG},
            "Keystone rejected the password of user backup (domain BackupDomain) (401)",
        ),
        "unknown user domain": (
            password_swift(tier, user_domain_name="NoSuchDomain"),
            {},
            "Keystone rejected the password of user backup (domain NoSuchDomain) (401)",
        ),
        "unknown project": (
            password_swift(tier, project_name="no-such-project"),
            {},
            "Keystone accepted user backup (domain BackupDomain) but not project "
            "no-such-project (domain BackupDomain) (401)",
        ),
        "unknown project domain": (
            password_swift(tier, project_domain_name="NoSuchDomain"),
            {},
            "but not project backups (domain NoSuchDomain) (401)",
        ),
        "a role Swift does not accept": (
            password_swift(tier, username="auditor", user_domain_name="Default"),
            {"T_KS_PASSWORD": auditor["password"]},
            "Swift refused access (403)",
        ),
        "no object-store in the catalog": (
            password_swift(tier, project_name="nocatalog"),
            {},
            "the Keystone catalog of project nocatalog has no object-store (Swift) endpoint",
        ),
        "none in the region": (
            password_swift(tier, region_name="RegionTwo"),
            {},
            "no object-store endpoint for interface public in region RegionTwo (it has: "
            "RegionOne/internal, RegionOne/public)",
        ),
        "Keystone unreachable": (
            password_swift(tier, auth_url=closed),
            {},
            f"cannot reach Keystone at {closed}",
        ),
        "application credential deleted": (
            appcred_swift(tier, deleted_id),
            {"T_KS_APPCRED": deleted_secret},
            f"Keystone does not know application credential {deleted_id} (404): it was deleted",
        ),
        "application credential expired": (
            appcred_swift(tier, expired_id),
            {"T_KS_APPCRED": expired_secret},
            f"Keystone rejected application credential {expired_id} (401): it has expired",
        ),
        "application credential secret wrong": (
            appcred_swift(tier, expired_id),
            {"T_KS_APPCRED": WRONG},
            f"Keystone rejected application credential {expired_id} (401)",
        ),
    }
    time.sleep(max(0.0, (expires - datetime.datetime.now(datetime.UTC)).total_seconds() + 1))

    def run(name):
        swift, env, _ = cases[name]
        config = write_config(swift, name=f"{name.replace(' ', '-')}.toml", own_state=True)
        check = cfbackup("-c", config, "check", env=env)
        return check, cfbackup("-c", config, "list", env=env) if name in DUPLICITY else None

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(cases, pool.map(run, cases), strict=True))

    problems = []
    for name, (check, listing) in results.items():
        expected = cases[name][2]
        if check.returncode != ExitCode.REFUSED or expected not in check.stdout:
            problems.append(f"{name}: check said\n{check}")
        if listing is None:
            continue
        errors = [line for line in listing.stderr.splitlines() if line.startswith("cfbackup:")]
        if listing.returncode != ExitCode.BACKEND or len(errors) != 1 or expected not in errors[0]:
            problems.append(f"{name}: list said\n{listing}")
    assert not problems, "\n\n".join(problems)


@pytest.mark.parametrize(
    ("swift", "expected"),
    [
        (
            'auth_url = "http://127.0.0.1:1/v3"\napplication_credential_id = "abc"\n',
            "profiles.main.swift: application_credential_id needs the credential's secret too",
        ),
        (
            'auth_version = "3"\nauth_url = "http://127.0.0.1:1/v3"\nusername = "u"\n'
            'password_env = "T_KS_PASSWORD"\nproject_name = "p"\n',
            "profiles.main.swift.user_domain_name: Keystone needs the user's domain",
        ),
        (
            'auth_version = "3"\nauth_url = "http://127.0.0.1:1/v3"\nusername = "u"\n'
            'password_env = "T_KS_PASSWORD"\nuser_domain_name = "Default"\n',
            "profiles.main.swift.project_name: Swift needs a project-scoped token",
        ),
    ],
)
def test_incomplete_keystone_settings_are_config_errors(write_config, cfbackup, swift, expected):
    result = cfbackup("-c", write_config(swift), "backup")
    assert result.returncode == ExitCode.CONFIG, result
    assert expected in result.stderr, result
