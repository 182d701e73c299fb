"""Fixtures for the quota guard tests: a profile on the real local Swift, run through the CLI.

Each test gets its own container (a uuid) so tests never see each other's objects; account
quotas are set only on the second tempauth account ("other", AUTH_test2) and removed again.
"""

from __future__ import annotations

import pytest
from quota_helpers import QuotaProfile


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "quota: quota guard tests (real Swift with quota middlewares)"
    )


@pytest.fixture(scope="session")
def gpg_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    return home


@pytest.fixture
def quota_profile(local_swift, tmp_path, gpg_home):
    """A factory: ``quota_profile(**options)`` -> QuotaProfile in a fresh directory."""
    made = []

    def make(**options):
        profile = QuotaProfile(local_swift, tmp_path / f"p{len(made)}", gpg_home, **options)
        made.append(profile)
        return profile

    return make
