"""A swift:// target whose prefix is percent-encoded (a space, a non-ASCII letter, a literal %
written as %25): duplicity decodes it and stores the objects under the decoded prefix, and
cfbackup now reads there too. It read the encoded prefix: status showed no chain, verify
--read-data said there was no backup, and retention's check of duplicity's deletes listed an
empty prefix, so deletes Swift refused passed as done."""

from __future__ import annotations

import time

import pytest
from faultkit import write_tree
from support.forward_proxy import ForwardProxy

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.faults, pytest.mark.swift]


def _fulls(setup, prefix: str) -> set[str]:
    return {
        n.split(".")[1] for n in setup.remote_objects() if n.startswith(f"{prefix}duplicity-full.")
    }


def test_a_percent_encoded_prefix_is_read_where_duplicity_writes(make_setup):
    setup = make_setup()
    text = setup.config.read_text()
    text = text.replace(f'"swift://{setup.container}"', f'"swift://{setup.container}/web%2001"')
    text = text.replace("after_backup = false\n", "after_backup = false\nkeep_full = 1\n")
    setup.config.write_text(text)
    write_tree(setup.source, mb=1)

    assert setup.run("backup").returncode == 0
    names = setup.remote_objects()
    assert names and all(n.startswith("web 01/duplicity-") for n in names), names

    status = setup.status()
    assert len(status["chains"]) == 1, status
    assert status["last_full"], status
    result = setup.run("verify", "--read-data")
    assert result.returncode == 0, result

    # a second full; the prune that follows must delete the first, and Swift refuses
    time.sleep(1.1)
    assert setup.run("full").returncode == 0
    assert len(_fulls(setup, "web 01/")) == 2
    with ForwardProxy(refuse={"DELETE": 403}) as proxy:
        result = setup.run("cli", "prune", setup.profile, env=proxy.env)
    assert result.returncode == ExitCode.RETENTION_FAILED, result  # passed as done: exit 0
    assert "retention failed: " in result.stderr and "403 Forbidden" in result.stderr, result
    assert len(_fulls(setup, "web 01/")) == 2

    result = setup.run("cli", "prune", setup.profile)
    assert result.returncode == 0, result
    assert len(_fulls(setup, "web 01/")) == 1
    assert len(setup.status()["chains"]) == 1
