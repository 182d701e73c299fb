"""A backup killed after its first volume leaves a set duplicity cannot resume: the next
backup deletes it first. When Swift refuses those deletes, duplicity 3.2.1 deleted it again
for ever (``Restart.checkManifest``, then ``dup_main.main``'s loop), a cron backup that never
ended; it now ends at once with Swift's answer and the fix (patches/interrupted_set.py)."""

from __future__ import annotations

import pytest
from faultkit import write_tree
from support.forward_proxy import ForwardProxy

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.faults, pytest.mark.swift]


def test_an_interrupted_set_swift_refuses_to_delete_ends_the_backup_with_the_fix(make_setup):
    setup = make_setup(extra="upload_workers = 0\n")
    write_tree(setup.source, mb=4)
    setup.spawn_until_uploading("full", volumes=1).kill_group()
    # killed right after the first volume (the poll may have seen a second one land): the set
    # then starts again, deleted first; resumed, it deletes nothing
    for name in setup.volumes("full"):
        if ".vol1." not in name:
            setup.connection().delete_object(setup.container, name)
    left = setup.remote_objects()
    assert [n for n in left if ".vol" in n] == [n for n in left if ".vol1." in n] != [], left

    no_proxy = {"no_proxy": "", "NO_PROXY": ""}
    with ForwardProxy(refuse={"DELETE": 403}) as proxy:
        via = {**no_proxy, "http_proxy": proxy.url}
        result = setup.run("backup", env=via, timeout=120)  # looped for ever before
        assert result.returncode == ExitCode.BACKEND, result
        deletes = [path for method, path in proxy.seen if method == "DELETE"]
        assert deletes and len(deletes) <= 3, deletes  # asked once, not again and again
    error = result.stderr
    assert "an incomplete backup set at the target (an interrupted backup's) could not be " in (
        error
    ), result
    assert ".vol1.difftar.gpg: it answered 403 Forbidden)" in error, result
    assert "nothing was backed up this time and no backup was lost" in error, result
    assert f"let the backup's user delete objects in container {setup.container}" in error, result
    assert f"run cfbackup -c {setup.config} cleanup main or the backup again" in error, result
    assert setup.remote_objects() == left  # the target as it was

    # once Swift lets it delete, the backup removes the set and backs up
    result = setup.run("backup")
    assert result.returncode == 0, result
    assert not any(n in setup.remote_objects() for n in left if ".vol1." in n)
    assert setup.status()["incomplete_sets"] == 0
