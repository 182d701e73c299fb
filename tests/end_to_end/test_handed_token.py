"""A backup's duplicity starts with the token cfbackup's checks obtained
(``patches/handed_token.py``): the local Swift's proxy log shows one authentication per backup
instead of four, and a token revoked between the checks and duplicity is refused once and
replaced, with the backup complete and restored byte for byte."""

from __future__ import annotations

import shutil
import time

import pytest
from support import proxylog
from support.trees import assert_same_tree, make_awkward_tree

pytestmark = pytest.mark.swift


def _backup(cfbackup, config, local_swift, **env) -> list[tuple[str, str, int]]:
    skip = proxylog.length(local_swift)
    result = cfbackup("-c", config, "backup", env=env)
    assert result.returncode == 0, result
    return proxylog.requests_since(local_swift, skip)


def _auths(requests) -> int:
    return sum(1 for _method, path, _status in requests if path.startswith("/auth/"))


def test_duplicity_starts_with_the_checks_token(tmp_path, make_config, cfbackup, local_swift):
    src = make_awkward_tree(tmp_path / "src", big_mb=1)
    config = make_config(source=src)
    # without the hand-over (the switch a user has for one run): duplicity's backend and its
    # SwiftService (the container's stat) authenticate after the checks did (its second pool,
    # for the size query after each volume, went with that query: the sized-uploads patch)
    full = _backup(cfbackup, config, local_swift, CFBACKUP_NO_HANDED_TOKEN="1")
    assert _auths(full) == 3, full
    time.sleep(1.1)  # duplicity's times have one-second resolution
    (src / "plain.txt").write_text("changed after the full\n")
    incremental = _backup(cfbackup, config, local_swift)
    assert _auths(incremental) == 1, incremental  # the checks' own, before any other request
    assert incremental[0][1].startswith("/auth/"), incremental
    assert not [r for r in incremental if r[2] == 401], incremental
    assert any(m == "PUT" and ".vol1.difftar" in p for m, p, _s in incremental), incremental
    logs = "\n".join(p.read_text() for p in (tmp_path / "state" / "logs").glob("*.log"))
    assert "handed-token" in logs  # the run log names the patches duplicity ran with

    restored = cfbackup("-c", config, "restore", "main", tmp_path / "restored")
    assert restored.returncode == 0, restored
    assert_same_tree(src, tmp_path / "restored")


REVOKE = """#!{python}
# tempauth keeps its tokens in memcached only: flushing it revokes every token issued so far
import socket
with socket.create_connection(("127.0.0.1", {port}), timeout=5) as mc:
    mc.sendall(b"flush_all\\r\\n")
    assert mc.recv(64).startswith(b"OK")
"""


def test_a_revoked_handed_token_is_replaced(tmp_path, make_config, cfbackup, local_swift):
    """A before_backup hook runs after the checks authenticated, before duplicity starts: it
    revokes their token. duplicity's connections are refused once each (401), authenticate
    with the profile's credentials and the backup completes."""
    import sys

    revoke = tmp_path / "revoke-tokens"
    revoke.write_text(REVOKE.format(python=sys.executable, port=local_swift.memcache_port))
    revoke.chmod(0o700)
    src = make_awkward_tree(tmp_path / "src", big_mb=1)
    config = make_config(
        source=src, more=f'[profiles.main.command_hooks]\nbefore_backup = ["{revoke}"]\n'
    )
    requests = _backup(cfbackup, config, local_swift)
    refused = [i for i, r in enumerate(requests) if r[2] == 401]
    assert refused, f"no 401: the revoked token was not used: {requests}"
    # each refusal is followed by an authentication and the same request, accepted
    for i in refused:
        method, path, _status = requests[i]
        after = requests[i + 1 :]
        assert any(p.startswith("/auth/") and s == 200 for _m, p, s in after), requests
        assert (method, path) in [(m, p) for m, p, s in after if s < 300], requests
    assert _auths(requests) == 1 + len(refused), requests
    assert any(m == "PUT" and ".manifest" in p and s == 201 for m, p, s in requests), requests

    shutil.rmtree(tmp_path / "archive")  # the restore reads everything back from Swift
    restored = cfbackup("-c", config, "restore", "main", tmp_path / "restored")
    assert restored.returncode == 0, restored
    assert_same_tree(src, tmp_path / "restored")
