"""Retention never removes what the newest backup does not hold: a partial backup, a missing
include root, a failed retention after a good upload (real Swift, duplicity, gpg)."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import time

import pytest
from support.cli import BIN, CliResult
from support.forward_proxy import ForwardProxy
from support.trees import assert_same_tree, make_awkward_tree

from cfbackup import chains
from cfbackup.errors import ExitCode

# root without the capabilities that read any file: permission denied for real (as in
# tests/faults/test_keys_and_permissions.py)
NO_DAC = ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")


def _without_dac(cli_env, *args) -> CliResult:
    completed = subprocess.run(
        [*NO_DAC, str(BIN / "cfbackup"), *map(str, args)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    return CliResult(completed)


def _objects(local_swift, container) -> list[str]:
    from swiftclient import client

    user, key = local_swift.users["admin"]
    conn = client.Connection(authurl=local_swift.auth_url, user=user, key=key, auth_version="1")
    return [o["name"] for o in conn.get_container(container, full_listing=True)[1]]


def _fulls(names: list[str], prefix: str) -> int:
    return sum(1 for n in names if n.startswith(prefix + "duplicity-full.") and ".manifest" in n)


def test_a_partial_full_backup_removes_no_older_backup(
    tmp_path, make_config, cfbackup, cli_env, local_swift, container
):
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src, more="[profiles.main.retention]\nkeep_full = 1\n")
    closed = src / "closed dir"
    closed.mkdir()
    (closed / "inside").write_text("only in the first full\n")
    assert cfbackup("-c", config, "backup").returncode == 0
    time.sleep(1.1)
    os.chown(closed, 65534, 65534)
    closed.chmod(0o700)

    result = _without_dac(cli_env, "-c", config, "backup", "--full")
    assert result.returncode == ExitCode.PARTIAL, result
    assert "1 file(s) could not be read" in result.stderr
    assert "retention was skipped: it runs after the next complete backup" in result.stderr
    assert _fulls(_objects(local_swift, container), "host1/") == 2  # the older full is kept

    # a dry run names the older chain, and that prune itself would be refused
    result = cfbackup("-c", config, "prune", "--dry-run")
    assert result.returncode == 0, result
    assert "dry run: prune would remove 1 backup set(s)" in result.stdout, result
    assert "prune itself would be refused now: the newest full backup of main is partial" in (
        result.stdout
    )
    assert _fulls(_objects(local_swift, container), "host1/") == 2

    # an explicit prune refuses too while the newest full is the partial one
    result = cfbackup("-c", config, "prune")
    assert result.returncode == ExitCode.REFUSED, result
    assert "partial" in result.stderr and f"-c {config} backup main" in result.stderr
    assert _fulls(_objects(local_swift, container), "host1/") == 2

    # a complete backup (an incremental that now holds the files) lets retention run again
    result = cfbackup("-c", config, "backup")
    assert result.returncode == 0, result
    assert _fulls(_objects(local_swift, container), "host1/") == 1
    out = tmp_path / "out"
    assert cfbackup("-c", config, "restore", "main", out).returncode == 0
    assert (out / "closed dir" / "inside").read_text() == "only in the first full\n"


def _split_tree(root):
    make_awkward_tree(root / "etc", big_mb=0)
    make_awkward_tree(root / "srv" / "www", big_mb=0, seed=11)
    return root


def test_a_missing_include_root_fails_its_chain_and_keeps_its_backups(
    tmp_path, make_config, cfbackup, local_swift, container
):
    src = _split_tree(tmp_path / "src")
    extra = f'include = ["{src}/etc", "{src}/srv/www"]\nsplit_chains = true\n'
    config = make_config(source=src, extra=extra, more="[profiles.main.retention]\nkeep_full = 1\n")
    assert cfbackup("-c", config, "backup").returncode == 0
    time.sleep(1.1)
    www = src / "srv" / "www"
    www.rename(src / "srv" / "www.unmounted")

    result = cfbackup("-c", config, "backup", "--full")
    assert result.returncode == ExitCode.PARTIAL, result
    assert f"{www} is missing or not mounted: mount it, or remove it from include" in result.stderr
    names = _objects(local_swift, container)
    assert _fulls(names, f"host1/{chains.slug_of('srv/www')}/") == 1  # its backup is kept
    assert _fulls(names, f"host1/{chains.slug_of('etc')}/") == 1  # the other chain: retention ran

    (src / "srv" / "www.unmounted").rename(www)
    out = tmp_path / "out"
    assert cfbackup("-c", config, "restore", "main", out).returncode == 0
    assert_same_tree(www, out / "srv" / "www")


def _with_disk(cli_env, mount_point, files, *args) -> CliResult:
    """``cfbackup ARGS`` in a mount namespace of its own where a tmpfs holding ``files`` (a
    folder copied in) is mounted on ``mount_point``: out of it, the folder is empty again, as a
    disk that did not mount leaves its mount point."""
    script = 'mount -t tmpfs cfbackup-test "$1" && cp -a "$2"/. "$1"/ && shift 2 && exec "$@"'
    completed = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
         str(mount_point), str(files), str(BIN / "cfbackup"), *map(str, args)],
        env=cli_env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return CliResult(completed)


def test_an_include_root_whose_disk_is_not_mounted_keeps_its_backups(
    tmp_path, make_config, cfbackup, cli_env, local_swift, container
):
    """An unmounted disk leaves its mount point as an empty folder: it exists, so it was backed
    up empty (exit 0) and retention removed the root's real backups. A folder that was a mount
    point at the last backup and is empty now is left out, until it is mounted again."""
    src = _split_tree(tmp_path / "src")
    www = src / "srv" / "www"
    disk = tmp_path / "www-disk"
    www.rename(disk)
    www.mkdir()
    extra = f'include = ["{src}/etc", "{www}"]\nsplit_chains = true\n'
    config = make_config(source=src, extra=extra, more="[profiles.main.retention]\nkeep_full = 1\n")
    mounted = _with_disk(cli_env, www, disk, "-c", config, "backup")
    assert mounted.returncode == 0, mounted
    time.sleep(1.1)

    for _ in range(2):  # remembered: the next backup says it again
        result = cfbackup("-c", config, "backup", "--full")
        assert result.returncode == ExitCode.PARTIAL, result
        assert (
            f"{www} was a mount point at the last backup and is now an empty folder (its disk "
            "is not mounted): mount it and run the backup again"
        ) in result.stderr, result
        names = _objects(local_swift, container)
        assert _fulls(names, f"host1/{chains.slug_of('srv/www')}/") == 1  # its backup is kept

    again = _with_disk(cli_env, www, disk, "-c", config, "backup")
    assert again.returncode == 0, again
    out = tmp_path / "out"
    assert cfbackup("-c", config, "restore", "main", out).returncode == 0
    assert_same_tree(disk, out / "srv" / "www")


def test_a_source_whose_disk_is_not_mounted_is_not_backed_up(
    tmp_path, make_config, cfbackup, cli_env
):
    src = tmp_path / "src"
    disk = make_awkward_tree(tmp_path / "disk", big_mb=0)
    src.mkdir()
    config = make_config(source=src)
    assert _with_disk(cli_env, src, disk, "-c", config, "backup").returncode == 0
    result = cfbackup("-c", config, "backup")
    assert result.returncode == ExitCode.REFUSED, result
    assert f"nothing was backed up: {src} was a mount point at the last backup" in result.stderr


def test_a_missing_plain_include_is_named_on_every_backup(tmp_path, make_config, cfbackup):
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    extra = f'include = ["{src}/dir one", "{src}/gone"]\n'
    config = make_config(source=src, extra=extra)
    for _ in range(2):
        result = cfbackup("-c", config, "backup")
        assert result.returncode == 0, result
        assert f"include {src}/gone does not exist" in result.stderr, result


def test_a_failed_retention_keeps_the_backup_and_its_post_hooks(tmp_path, make_config, cfbackup):
    """duplicity's retention command fails (here a sitecustomize stops every duplicity
    remove-older-than; a time duplicity cannot read did it once, and is now refused when the
    config is loaded): the backup is at the target, retention fails after it."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    log = tmp_path / "hooks.log"
    more = (
        '[profiles.main.retention]\nremove_older_than = "1s"\n'
        f'[profiles.main.command_hooks]\nafter_backup = ["echo after_backup >> {log}"]\n'
    )
    config = make_config(source=src, more=more)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\n"
        "if 'remove-older-than' in sys.argv:\n"
        "    sys.stderr.write('remove-older-than refused by the test\\n')\n"
        "    sys.exit(23)\n"
    )
    env = {"PYTHONPATH": str(site)}
    assert cfbackup("-c", config, "backup", env=env).returncode == 0  # one full: nothing to remove
    time.sleep(1.1)
    result = cfbackup("-c", config, "backup", "--full", env=env)
    assert result.returncode == ExitCode.RETENTION_FAILED, result
    assert "backup completed; retention failed:" in result.stderr
    assert f"cfbackup -c {config} prune main" in result.stderr
    assert log.read_text().splitlines() == ["after_backup", "after_backup"]
    status = json.loads(cfbackup("-c", config, "status", "--json").stdout)
    assert len(status["chains"]) == 2
    assert status["last_success"]["exit_code"] == ExitCode.RETENTION_FAILED


def test_keep_all_prunes_nothing_and_says_why(tmp_path, make_config, cfbackup):
    config = make_config(more="[profiles.main.retention]\nkeep_all = true\n")
    result = cfbackup("-c", config, "prune")
    assert result.returncode == 0, result
    assert "nothing removed: profile main keeps every backup (retention.keep_all = true)" in (
        result.output
    )
    result = cfbackup("-c", config, "prune", "--dry-run", "--json")
    assert result.returncode == 0, result
    assert json.loads(result.stdout)["chains"] == []


def test_a_swift_that_refuses_deletes_fails_retention_and_prune(
    tmp_path, make_config, cfbackup, local_swift, container
):
    """duplicity's Swift backend ignores a refused DELETE (swiftclient's SwiftService reports it
    in a result nobody reads): retention "ran", exit 0, and the old full stayed, billed."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src, more="[profiles.main.retention]\nkeep_full = 1\n")
    assert cfbackup("-c", config, "backup").returncode == 0
    time.sleep(1.1)
    no_proxy = {"no_proxy": "", "NO_PROXY": ""}
    with ForwardProxy(refuse={"DELETE": 403}) as proxy:
        via = {**no_proxy, "http_proxy": proxy.url}
        result = cfbackup("-c", config, "backup", "--full", env=via)
        assert result.returncode == ExitCode.RETENTION_FAILED, result
        assert any(method == "DELETE" for method, _ in proxy.seen), proxy.seen
        assert _fulls(_objects(local_swift, container), "host1/") == 2  # refused: still there
        assert (
            "backup completed; retention failed: 3 object(s) that duplicity "
            "remove-all-but-n-full 1 set out to delete (duplicity-full-signatures."
        ) in result.stderr, result
        assert f"container {container}" in result.stderr, result
        # Swift's answer, not "duplicity does not say why" (the swift-deletes patch)
        assert "the target refused to delete them (" in result.stderr, result
        assert "(Swift refused to delete host1/" in result.stderr, result
        assert ": it answered 403 Forbidden)" in result.stderr, result
        assert "does not say why" not in result.stderr, result
        # no retries of duplicity's on top of swiftclient's (three tries, 10 s apart): each
        # delete duplicity makes is asked once (the signatures are deleted with their set and
        # again with their signature chain: twice)
        deletes = collections.Counter(path for method, path in proxy.seen if method == "DELETE")
        assert len(deletes) == 3 and max(deletes.values()) <= 2, deletes
        assert f"cfbackup -c {config} prune main" in result.stderr, result
        status = json.loads(cfbackup("-c", config, "status", "--json").stdout)
        assert status["last_success"]["exit_code"] == ExitCode.RETENTION_FAILED  # backup counts

        result = cfbackup("-c", config, "prune", env=via)
        assert result.returncode == ExitCode.RETENTION_FAILED, result
        assert "retention failed: 3 object(s) that duplicity" in result.stderr, result
        assert ": it answered 403 Forbidden)" in result.stderr, result
        assert "backup completed" not in result.stderr, result
        assert _fulls(_objects(local_swift, container), "host1/") == 2

    # once Swift lets it delete, the command the message named removes the old full
    result = cfbackup("-c", config, "prune")
    assert result.returncode == 0, result
    assert _fulls(_objects(local_swift, container), "host1/") == 1


def gone_after_the_deletes(method, path, headers, seen):
    """Swift answers 503 from the first login after duplicity's deletes (cfbackup's check
    logs in on a connection of its own; duplicity went on with its own token)."""
    deleted = [i for i, (m, _) in enumerate(seen) if m == "DELETE"]
    logins = [i for i, (m, p) in enumerate(seen) if p.startswith("/auth")]
    if deleted and (path.startswith("/auth") or (logins and logins[-1] > deleted[0])):
        return 503
    return None


def test_a_check_swift_cannot_answer_warns_and_the_backup_succeeds(
    tmp_path, make_config, cfbackup, local_swift, container
):
    """Swift deleted the old full, then fails (503, after swiftclient's retries) the login of
    the check that follows: a check that could not be made is no failed retention. The backup
    exits 0 with one warning naming Swift's answer and the command that confirms it later;
    only an object seen still there (a 200) fails the run (exit 13, above)."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src, more="[profiles.main.retention]\nkeep_full = 1\n")
    assert cfbackup("-c", config, "backup").returncode == 0
    time.sleep(1.1)
    no_proxy = {"no_proxy": "", "NO_PROXY": ""}

    with ForwardProxy(refuse_when=gone_after_the_deletes) as proxy:
        result = cfbackup(
            "-c", config, "backup", "--full", env={**no_proxy, "http_proxy": proxy.url}
        )
        assert any(method == "DELETE" for method, _ in proxy.seen), proxy.seen
    assert result.returncode == 0, result
    assert _fulls(_objects(local_swift, container), "host1/") == 1  # deleted, as acknowledged
    assert (
        "warning: retention ran, but the deletes of 3 object(s) that duplicity "
        "remove-all-but-n-full 1 set out to delete could not be confirmed (Swift answered 503 "
        "Service Unavailable"
    ) in result.stderr, result
    assert f"run `cfbackup -c {config} prune main --dry-run` once Swift answers" in (
        result.stderr
    ), result
    assert "retention failed" not in result.stderr, result
    status = json.loads(cfbackup("-c", config, "status", "--json").stdout)
    assert status["last_success"]["exit_code"] == 0
    assert "could not be confirmed" in status["last_success"]["message"], status

    # the command it names confirms it: nothing left to remove
    result = cfbackup("-c", config, "prune", "--dry-run")
    assert result.returncode == 0, result
    assert "would remove nothing" in result.stdout, result


def _backup_and_a_leftover(tmp_path, make_config, cfbackup, local_swift, container):
    """A profile backed up once, and an incremental's volume no chain leads to beside it (a
    leftover cleanup removes): the config and the leftover's name."""
    from swiftclient import client

    config = make_config(source=make_awkward_tree(tmp_path / "src", big_mb=0))
    assert cfbackup("-c", config, "backup").returncode == 0
    user, key = local_swift.users["admin"]
    conn = client.Connection(authurl=local_swift.auth_url, user=user, key=key, auth_version="1")
    orphan = "host1/duplicity-inc.20200101T000000Z.to.20200102T000000Z.vol1.difftar.gpg"
    conn.put_object(container, orphan, b"leftover")
    return config, orphan


def test_a_swift_that_refuses_deletes_fails_cleanup(
    tmp_path, make_config, cfbackup, local_swift, container
):
    config, orphan = _backup_and_a_leftover(tmp_path, make_config, cfbackup, local_swift, container)
    no_proxy = {"no_proxy": "", "NO_PROXY": ""}
    with ForwardProxy(refuse={"DELETE": 403}) as proxy:
        result = cfbackup("-c", config, "cleanup", env={**no_proxy, "http_proxy": proxy.url})
        assert result.returncode == ExitCode.RETENTION_FAILED, result
        assert (
            f"cleanup failed: 1 object(s) that duplicity cleanup set out to delete "
            f"({orphan.removeprefix('host1/')}) are still in container {container}: the target "
            "refused to delete them"
        ) in result.stderr, result
        assert f"run `cfbackup -c {config} cleanup main` once fixed" in result.stderr, result
        assert orphan in _objects(local_swift, container)

    result = cfbackup("-c", config, "cleanup")
    assert result.returncode == 0, result
    assert orphan not in _objects(local_swift, container)


def test_a_check_swift_cannot_answer_warns_and_the_cleanup_succeeds(
    tmp_path, make_config, cfbackup, local_swift, container
):
    config, orphan = _backup_and_a_leftover(tmp_path, make_config, cfbackup, local_swift, container)
    no_proxy = {"no_proxy": "", "NO_PROXY": ""}
    with ForwardProxy(refuse_when=gone_after_the_deletes) as proxy:
        result = cfbackup("-c", config, "cleanup", env={**no_proxy, "http_proxy": proxy.url})
    assert result.returncode == 0, result
    assert orphan not in _objects(local_swift, container)
    assert (
        "warning: cleanup ran, but the deletes of 1 object(s) that duplicity cleanup set out to "
        "delete could not be confirmed (Swift answered 503 Service Unavailable"
    ) in result.stderr, result
    assert f"run `cfbackup -c {config} cleanup main --dry-run` once Swift answers" in (
        result.stderr
    ), result


# duplicity's own dry run of each retention rule (no --force): the chains it lists, by end time
DUPLICITY_DRY_RUN = r"""
import json, sys
from cfbackup.cli.context import CliContext
from cfbackup.config import load_config
from cfbackup.duplicity import commands
from cfbackup.duplicity.environment import duplicity_environment
from cfbackup.duplicity.run import run_duplicity
profile = load_config(sys.argv[1], CliContext().plugin_sections()).profile(None)
listed = {}
for rule in commands.retention_rules(profile):
    result = run_duplicity(
        lambda fd: commands.retention_argv(profile, rule, dry_run=True, log_fd=fd),
        duplicity_environment(profile),
    )
    head = "Found old backup chain(s) at the following time:"
    notices = [r.message for r in result.records_with("NOTICE") if r.message.startswith(head)]
    lines = notices[0].splitlines()[1:-1] if notices else []
    listed[" ".join(rule)] = [line.strip() for line in lines if line.strip()]
print(json.dumps(listed))
"""


def test_prune_dry_run_lists_what_prune_removes_and_removes_nothing(
    tmp_path, make_config, cfbackup, cli_env, local_swift, container
):
    """Three chains of a full and an incremental each; keep 2 fulls, the incrementals of 1:
    the dry run names the oldest chain (rule 1) and the middle chain's incremental (rule 2),
    as duplicity's own dry run lists them, removes nothing, and is what prune then removes."""
    from duplicity import dup_time

    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    more = (
        "[profiles.main.retention]\nafter_backup = false\nkeep_full = 2\n"
        "keep_incrementals_of_full = 1\n"
    )
    config = make_config(source=src, more=more)
    for n in range(3):
        assert cfbackup("-c", config, "backup", "--full").returncode == 0
        time.sleep(1.1)
        (src / f"new {n}").write_text(f"changed {n}\n")
        assert cfbackup("-c", config, "backup").returncode == 0
        time.sleep(1.1)
    before = _objects(local_swift, container)

    result = cfbackup("-c", config, "prune", "--dry-run")
    assert result.returncode == 0, result
    assert "dry run: prune would remove 3 backup set(s)" in result.stdout, result
    assert "nothing was removed" in result.stdout, result
    assert "duplicity remove-all-but-n-full 2: would remove 2 backup set(s):" in result.stdout
    assert "duplicity remove-all-inc-of-but-n-full 1: would remove 1 backup set(s):" in (
        result.stdout
    )
    assert _objects(local_swift, container) == before

    result = cfbackup("-c", config, "prune", "--dry-run", "--json")
    assert result.returncode == 0, result
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True and plan["sets"] == 3, plan
    (chain,) = plan["chains"]
    first, second = chain["rules"]
    assert [s["type"] for s in first["sets"]] == ["full", "inc"], first
    assert [s["type"] for s in second["sets"]] == ["inc"], second
    sizes = {}
    from swiftclient import client

    user, key = local_swift.users["admin"]
    conn = client.Connection(authurl=local_swift.auth_url, user=user, key=key, auth_version="1")
    for o in conn.get_container(container, full_listing=True)[1]:
        sizes[o["name"]] = o["bytes"]
    named = [n for s in first["sets"] + second["sets"] for n in s["names"]]
    assert len(named) == len(set(named)) == plan["objects"]
    assert plan["bytes"] == sum(sizes[f"host1/{n}"] for n in named) > 0

    # duplicity's own dry run of each rule (on the target as it is) lists the same chains;
    # its second rule also lists the chain the first one removes
    completed = subprocess.run(
        [str(BIN / "python"), "-c", DUPLICITY_DRY_RUN, str(config)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    listed = json.loads(completed.stdout)

    def chain_ends(rule):
        return {dup_time.timetopretty(dup_time.stringtotime(s["chain_end"])) for s in rule["sets"]}

    assert set(listed[first["rule"]]) == chain_ends(first) and len(chain_ends(first)) == 1
    assert set(listed[second["rule"]]) - chain_ends(first) == chain_ends(second)
    assert len(listed[second["rule"]]) == 2

    history = json.loads(cfbackup("-c", config, "history", "--json").stdout)
    newest = history[0]
    assert newest["action"] == "prune" and newest["message"].startswith("dry run: "), newest
    assert newest["stats"]["dry_run"] is True, newest

    # prune removes exactly what the dry run named
    assert cfbackup("-c", config, "prune").returncode == 0
    after = _objects(local_swift, container)
    assert set(before) - set(after) == {f"host1/{n}" for n in named}


def test_an_object_a_lagging_listing_still_shows_is_not_taken_for_a_refused_delete(
    make_config, local_swift, container, monkeypatch
):
    """Swift acknowledges a DELETE before the container listing drops the object (container
    updates are asynchronous): a check that trusted the listing failed a retention that
    worked. Only a HEAD that asks every replica (X-Newest) answering 200 is still there."""
    from swiftclient import client

    from cfbackup import stores
    from cfbackup.config.load import load_config

    user, key = local_swift.users["admin"]
    monkeypatch.setenv("T_SWIFT_KEY", key)
    conn = client.Connection(authurl=local_swift.auth_url, user=user, key=key, auth_version="1")
    conn.put_container(container)
    kept, deleted = "duplicity-full.20200101T000000Z.manifest.gpg", "duplicity-inc.x.gpg"
    for name in (kept, deleted):
        conn.put_object(container, f"host1/{name}", b"x")
    store = stores.open_store(load_config(make_config()).profile("main"))
    stale = store.list()  # the listing as it is before the delete reaches the container
    conn.delete_object(container, f"host1/{deleted}")
    monkeypatch.setattr(store, "list", lambda: stale)
    assert store.remaining([deleted, kept, "never-listed"]) == [kept]


def test_a_head_swift_cannot_answer_is_no_answer(make_config, local_swift, container, monkeypatch):
    """The check's HEAD (X-Newest) of an object a lagging listing still shows fails with a 503
    after swiftclient's retries: neither still there nor gone; an object whose HEAD answered
    200 is still there all the same."""
    from swiftclient import client

    from cfbackup import stores
    from cfbackup.config.load import load_config

    user, key = local_swift.users["admin"]
    monkeypatch.setenv("T_SWIFT_KEY", key)
    conn = client.Connection(authurl=local_swift.auth_url, user=user, key=key, auth_version="1")
    conn.put_container(container)
    kept, unknown = "duplicity-full.20200101T000000Z.manifest.gpg", "duplicity-inc.x.gpg"
    for name in (kept, unknown):
        conn.put_object(container, f"host1/{name}", b"x")

    def refuse_its_head(method, path, headers, seen):
        asked = method == "HEAD" and headers.get("X-Newest") and path.endswith(unknown)
        return 503 if asked else None

    with ForwardProxy(refuse_when=refuse_its_head) as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.setenv("no_proxy", "")
        monkeypatch.setenv("NO_PROXY", "")
        store = stores.open_store(load_config(make_config()).profile("main"))
        with pytest.raises(stores.Unconfirmed) as no_answer:
            store.remaining([unknown, kept])
    assert no_answer.value.kept == [kept] and no_answer.value.unknown == [unknown]
    assert no_answer.value.reason.startswith("Swift answered 503 Service Unavailable")
