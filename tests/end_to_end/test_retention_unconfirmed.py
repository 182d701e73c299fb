"""Retention's and cleanup's deletes that Swift refuses (a 403) or whose check it cannot answer
(a 503): cfbackup reads the target after duplicity (``retention.check_deletes``), asking each
object with a HEAD rather than a listing that lags deletes; what Swift does not answer for is
``stores.Unconfirmed``, no failed retention (real Swift, duplicity, gpg)."""

from __future__ import annotations

import collections
import json
import time

import pytest
from support.forward_proxy import ForwardProxy
from support.stores import admin_connection, full_backups, object_names
from support.trees import make_awkward_tree

from cfbackup.errors import ExitCode


def _backed_up_once_keeping_one_full(tmp_path, make_config, cfbackup, more=""):
    """A profile that keeps one full (and ``more`` tables), backed up once (a second ago, so
    that the next full is newer): its config. The next full backup's retention deletes the
    first one's 3 objects."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src, more="[profiles.main.retention]\nkeep_full = 1\n" + more)
    assert cfbackup("-c", config, "backup").returncode == 0
    time.sleep(1.1)
    return config


def test_a_swift_that_refuses_deletes_fails_retention_and_prune(
    tmp_path, make_config, cfbackup, local_swift, container
):
    """duplicity's Swift backend ignores a refused DELETE (swiftclient's SwiftService reports it
    in a result nobody reads): retention "ran", exit 0, and the old full stayed, billed."""
    config = _backed_up_once_keeping_one_full(tmp_path, make_config, cfbackup)
    with ForwardProxy(refuse={"DELETE": 403}) as proxy:
        result = cfbackup("-c", config, "backup", "--full", env=proxy.env)
        assert result.returncode == ExitCode.RETENTION_FAILED, result
        assert any(method == "DELETE" for method, _ in proxy.seen), proxy.seen
        assert full_backups(object_names(local_swift, container), "host1/") == 2  # still there
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

        result = cfbackup("-c", config, "prune", env=proxy.env)
        assert result.returncode == ExitCode.RETENTION_FAILED, result
        assert "retention failed: 3 object(s) that duplicity" in result.stderr, result
        assert ": it answered 403 Forbidden)" in result.stderr, result
        assert "backup completed" not in result.stderr, result
        assert full_backups(object_names(local_swift, container), "host1/") == 2

    # once Swift lets it delete, the command the message named removes the old full
    result = cfbackup("-c", config, "prune")
    assert result.returncode == 0, result
    assert full_backups(object_names(local_swift, container), "host1/") == 1


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
    config = _backed_up_once_keeping_one_full(tmp_path, make_config, cfbackup)
    with ForwardProxy(refuse_when=gone_after_the_deletes) as proxy:
        result = cfbackup("-c", config, "backup", "--full", env=proxy.env)
        assert any(method == "DELETE" for method, _ in proxy.seen), proxy.seen
    assert result.returncode == 0, result
    assert full_backups(object_names(local_swift, container), "host1/") == 1  # as acknowledged
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


def test_a_backup_with_unconfirmed_deletes_mails_with_when_warnings(
    tmp_path, make_config, cfbackup, local_swift, container
):
    """notify.email.when = "warnings": a plain success mails nothing, a success whose
    retention deletes Swift could not confirm mails, its subject saying so (a user who wants
    to hear only of problems hears of this one)."""
    from operations.smtp_server import SmtpServer

    with SmtpServer() as smtp:
        notify = (
            '[profiles.main.notify.email]\nto = ["ops@example.com"]\nhost = "127.0.0.1"\n'
            f'port = {smtp.port}\nsecurity = "none"\nwhen = "warnings"\n'
        )
        config = _backed_up_once_keeping_one_full(tmp_path, make_config, cfbackup, notify)
        assert smtp.messages == []  # a plain success
        with ForwardProxy(refuse_when=gone_after_the_deletes) as proxy:
            result = cfbackup("-c", config, "backup", "--full", env=proxy.env)
        assert result.returncode == 0, result
        assert "could not be confirmed" in result.stderr, result
        assert "notify" not in result.stderr, result  # no delivery warning
        [mail] = smtp.wait(1)
        text = SmtpServer.text(mail)
        assert "Subject: [cfbackup] backup of main on " in text, text
        assert text.splitlines()[0].endswith(": OK, 1 warning"), text
        assert "WARNING: retention ran, but the deletes of 3 object(s)" in text, text


def _backup_and_a_leftover(tmp_path, make_config, cfbackup, local_swift, container):
    """A profile backed up once, and an incremental's volume no chain leads to beside it (a
    leftover cleanup removes): the config and the leftover's name."""
    config = make_config(source=make_awkward_tree(tmp_path / "src", big_mb=0))
    assert cfbackup("-c", config, "backup").returncode == 0
    orphan = "host1/duplicity-inc.20200101T000000Z.to.20200102T000000Z.vol1.difftar.gpg"
    admin_connection(local_swift).put_object(container, orphan, b"leftover")
    return config, orphan


def test_a_swift_that_refuses_deletes_fails_cleanup(
    tmp_path, make_config, cfbackup, local_swift, container
):
    config, orphan = _backup_and_a_leftover(tmp_path, make_config, cfbackup, local_swift, container)
    with ForwardProxy(refuse={"DELETE": 403}) as proxy:
        result = cfbackup("-c", config, "cleanup", env=proxy.env)
        assert result.returncode == ExitCode.RETENTION_FAILED, result
        assert (
            f"cleanup failed: 1 object(s) that duplicity cleanup set out to delete "
            f"({orphan.removeprefix('host1/')}) are still in container {container}: the target "
            "refused to delete them"
        ) in result.stderr, result
        assert f"run `cfbackup -c {config} cleanup main` once fixed" in result.stderr, result
        assert orphan in object_names(local_swift, container)

    result = cfbackup("-c", config, "cleanup")
    assert result.returncode == 0, result
    assert orphan not in object_names(local_swift, container)


def test_a_check_swift_cannot_answer_warns_and_the_cleanup_succeeds(
    tmp_path, make_config, cfbackup, local_swift, container
):
    config, orphan = _backup_and_a_leftover(tmp_path, make_config, cfbackup, local_swift, container)
    with ForwardProxy(refuse_when=gone_after_the_deletes) as proxy:
        result = cfbackup("-c", config, "cleanup", env=proxy.env)
    assert result.returncode == 0, result
    assert orphan not in object_names(local_swift, container)
    assert (
        "warning: cleanup ran, but the deletes of 1 object(s) that duplicity cleanup set out to "
        "delete could not be confirmed (Swift answered 503 Service Unavailable"
    ) in result.stderr, result
    assert f"run `cfbackup -c {config} cleanup main --dry-run` once Swift answers" in (
        result.stderr
    ), result


KEPT, OTHER = "duplicity-full.20200101T000000Z.manifest.gpg", "duplicity-inc.x.gpg"


def _a_full_and_an_incremental(local_swift, container, monkeypatch):
    """The container holding a full's manifest (``KEPT``) and an incremental's volume
    (``OTHER``) in host1/, and the Swift key where ``make_config``'s profile reads it: an admin
    connection to the container."""
    monkeypatch.setenv("T_SWIFT_KEY", local_swift.users["admin"][1])
    conn = admin_connection(local_swift)
    conn.put_container(container)
    for name in (KEPT, OTHER):
        conn.put_object(container, f"host1/{name}", b"x")
    return conn


def _store(make_config):
    from cfbackup import stores
    from cfbackup.config.load import load_config

    return stores.open_store(load_config(make_config()).profile("main"))


def test_an_object_a_lagging_listing_still_shows_is_not_taken_for_a_refused_delete(
    make_config, local_swift, container, monkeypatch
):
    """Swift acknowledges a DELETE before the container listing drops the object (container
    updates are asynchronous): a check that trusted the listing failed a retention that
    worked. Only a HEAD that asks every replica (X-Newest) answering 200 is still there."""
    conn = _a_full_and_an_incremental(local_swift, container, monkeypatch)
    store = _store(make_config)
    stale = store.list()  # the listing as it is before the delete reaches the container
    conn.delete_object(container, f"host1/{OTHER}")
    monkeypatch.setattr(store, "list", lambda: stale)
    assert store.remaining([OTHER, KEPT, "never-listed"]) == [KEPT]


def test_a_head_swift_cannot_answer_is_no_answer(make_config, local_swift, container, monkeypatch):
    """The check's HEAD (X-Newest) of an object a lagging listing still shows fails with a 503
    after swiftclient's retries: neither still there nor gone; an object whose HEAD answered
    200 is still there all the same."""
    from cfbackup import stores

    _a_full_and_an_incremental(local_swift, container, monkeypatch)

    def refuse_its_head(method, path, headers, seen):
        asked = method == "HEAD" and headers.get("X-Newest") and path.endswith(OTHER)
        return 503 if asked else None

    with ForwardProxy(refuse_when=refuse_its_head) as proxy:
        for name, value in proxy.env.items():
            monkeypatch.setenv(name, value)
        store = _store(make_config)
        with pytest.raises(stores.Unconfirmed) as no_answer:
            store.remaining([OTHER, KEPT])
    assert no_answer.value.kept == [KEPT] and no_answer.value.unknown == [OTHER]
    assert no_answer.value.reason.startswith("Swift answered 503 Service Unavailable")
