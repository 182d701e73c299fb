"""After duplicity's retention and cleanup, cfbackup checks that the target deleted what
duplicity set out to delete: duplicity names each file as it deletes it (the named-deletes
patch), whatever its verbosity; each named file still at the target is a refused delete."""

from __future__ import annotations

import calendar
import os
import time

from cfbackup import retention
from cfbackup.config.load import load_config
from cfbackup.duplicity.patches import Patch
from cfbackup.duplicity.run import run_duplicity

T = "20261201T0{}0000Z".format  # T(1) = 01:00 UTC on 2026-12-01, ...


def _full(n: int) -> list[str]:
    return [
        f"duplicity-full.{T(n)}.vol1.difftar.gz",
        f"duplicity-full.{T(n)}.manifest",
        f"duplicity-full-signatures.{T(n)}.sigtar.gz",
    ]


def _inc(a: int, b: int) -> list[str]:
    return [
        f"duplicity-inc.{T(a)}.to.{T(b)}.vol1.difftar.gz",
        f"duplicity-inc.{T(a)}.to.{T(b)}.manifest",
        f"duplicity-new-signatures.{T(a)}.to.{T(b)}.sigtar.gz",
    ]


# 02:30 UTC
CUTOFF = str(calendar.timegm(time.strptime("20261201T023000Z", "%Y%m%dT%H%M%SZ")))

# a module duplicity's interpreter imports (the test's tmp_path on its PYTHONPATH): the file
# target refuses to delete the files named in REFUSED_ENV, as an ACL or an object lock would
REFUSING = """
REFUSED_ENV = "TEST_REFUSED"


def applies(env):
    return REFUSED_ENV in env


def apply(env):
    import os

    from duplicity.backends import localbackend

    refused = set(env[REFUSED_ENV].split(","))
    delete_list = localbackend.LocalBackend._delete_list

    def refusing(self, filenames):
        delete_list(self, [f for f in filenames if os.fsdecode(f) not in refused])
        if any(os.fsdecode(f) in refused for f in filenames):
            raise PermissionError("the test target refuses this delete")

    localbackend.LocalBackend._delete_list = refusing
"""


def _target(tmp_path, names):
    target, archive = tmp_path / "target", tmp_path / "archive" / "main"
    target.mkdir()
    archive.mkdir(parents=True)
    for name in names:
        (target / name).write_bytes(b"")
    return target, archive


def _apply(tmp_path, rule, *flags, refused=()):
    target, archive = tmp_path / "target", tmp_path / "archive" / "main"
    (tmp_path / "refusing_target.py").write_text(REFUSING)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(tmp_path)}
    if refused:
        env["TEST_REFUSED"] = ",".join(refused)
    patch = Patch("refusing", "refusing_target", "3.2.1", (), "test")
    result = run_duplicity(
        lambda fd: (
            "duplicity",
            *rule,
            "--force",
            "--num-retries=1",
            *flags,
            "--archive-dir",
            str(archive.parent),
            "--name",
            archive.name,
            "--no-encryption",
            f"--log-fd={fd}",
            f"file://{target}",
        ),
        env,
        patches=(patch,),
        check=False,
    )
    assert result.returncode == 0, result.output_tail
    return " ".join(rule), result


def _profile(config):
    return load_config(config).profile("main")


def test_a_rule_is_not_judged_on_what_a_later_rule_left(tmp_path, config, monkeypatch):
    """remove-older-than 02:30 rightly keeps chain A (its last incremental is at 04:00);
    remove-all-inc-of-but-n-full 1 then removes A's incrementals. Judged on what is left, A's
    full looked like one remove-older-than should have removed: a false exit 13."""
    monkeypatch.syspath_prepend(str(tmp_path))
    target, _ = _target(tmp_path, [*_full(1), *_inc(1, 2), *_inc(2, 3), *_inc(3, 4), *_full(5)])
    done = [
        _apply(tmp_path, ("remove-older-than", CUTOFF)),
        _apply(tmp_path, ("remove-all-inc-of-but-n-full", "1")),
    ]
    assert retention.deleted(done[0][1]) == []
    assert sorted(retention.deleted(done[1][1])) == sorted([*_inc(1, 2), *_inc(2, 3), *_inc(3, 4)])
    assert sorted(os.listdir(target)) == sorted([*_full(1), *_full(5)])
    assert retention.check_deletes(_profile(config), done) == retention.DeleteCheck()


def test_a_refused_incremental_delete_is_reported_whatever_the_verbosity(
    tmp_path, config, monkeypatch
):
    """duplicity deletes a chain's newest incremental first and its full last: a refused
    volume of an incremental is left without its manifest, an orphan no chain holds, which a
    model of duplicity's choice does not see. duplicity named it: it is reported."""
    monkeypatch.syspath_prepend(str(tmp_path))
    kept = _inc(1, 2)[0]
    target, _ = _target(tmp_path, [*_full(1), *_inc(1, 2), *_full(3)])
    done = [_apply(tmp_path, ("remove-all-but-n-full", "1"), "--verbosity=error", refused=(kept,))]
    assert kept in retention.deleted(done[0][1])
    assert sorted(os.listdir(target)) == sorted([kept, *_full(3)])

    problem = retention.check_deletes(_profile(config), done).refused
    assert problem.startswith(
        f"1 object(s) that duplicity remove-all-but-n-full 1 set out to delete ({kept}) are "
        f"still in {_profile(config).target}: the target refused to delete them ("
    ), problem

    (target / kept).unlink()  # the target lets it go: nothing is left
    assert retention.check_deletes(_profile(config), done) == retention.DeleteCheck()


def test_a_dry_run_in_extra_options_names_nothing(tmp_path, config, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    target, _ = _target(tmp_path, [*_full(1), *_inc(1, 2), *_full(3)])
    done = [_apply(tmp_path, ("remove-all-but-n-full", "1"), "--dry-run")]
    assert retention.deleted(done[0][1]) == []
    assert len(os.listdir(target)) == 9
    assert retention.check_deletes(_profile(config), done) == retention.DeleteCheck()


def test_cleanup_names_what_it_deletes(tmp_path, config, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    orphans = _inc(1, 2)
    target, _ = _target(tmp_path, [*orphans, *_full(3)])
    done = [_apply(tmp_path, ("cleanup",), "--verbosity=warning", refused=(orphans[1],))]
    assert sorted(retention.deleted(done[0][1])) == sorted(orphans)
    problem = retention.check_deletes(_profile(config), done).refused
    assert problem.startswith(
        f"1 object(s) that duplicity cleanup set out to delete ({orphans[1]}) are still"
    ), problem
    assert "(PermissionError: the test target refuses this delete)" in problem, problem


# --- a check that could not be made (Swift unreachable, a 5xx after retries) ---------------


def _swift_profile():
    from cfbackup.config import build_config

    profile = {
        "source": "/srv",
        "target": "swift://box/host",
        "archive_dir": "/a",
        "encryption": {"mode": "none"},
        "swift": {"auth_url": "http://k/auth/v1.0", "username": "u", "password_env": "T_KEY"},
    }
    return build_config({"profiles": {"p": profile}}, path=None).profiles["p"]


def _named(*names):
    """A retention rule's result whose duplicity named ``names`` as it deleted them."""
    from cfbackup.duplicity.machinelog import Record
    from cfbackup.duplicity.patches.named_deletes import DELETE
    from cfbackup.duplicity.result import DuplicityResult

    records = [Record("INFO", 1, f"{DELETE} '{name}'", "") for name in names]
    return ("remove-all-but-n-full 1", DuplicityResult(("duplicity",), 0, records, ()))


class _Swift:
    """A swiftclient Connection whose HEAD of each object answers as ``answers`` says: 200,
    404, another status (swiftclient's ClientException) or an exception to raise (a
    connection error after its retries)."""

    url, token, session = "http://swift/v1/AUTH_t", "tok", None  # v1: no keystone session

    def __init__(self, answers, listing=None):
        self.answers = answers
        self.listing = listing

    def get_container(self, container, prefix="", full_listing=False):
        if isinstance(self.listing, Exception):
            raise self.listing
        return {}, [{"name": prefix + name, "bytes": 1} for name in self.answers]

    def head_object(self, container, name, headers=None):
        from swiftclient.exceptions import ClientException

        answer = self.answers[name.rpartition("/")[2]]
        if isinstance(answer, Exception):
            raise answer
        if answer != 200:
            reason = {404: "Not Found", 503: "Service Unavailable"}.get(answer, "")
            raise ClientException("HEAD failed", http_status=answer, http_reason=reason)
        return {}


def _answering(monkeypatch, answers, listing=None):
    from cfbackup import swift

    fake = _Swift(answers, listing)
    monkeypatch.setattr(swift, "connect", lambda profile, **kw: fake)
    monkeypatch.setattr(swift, "sibling", lambda conn: conn)


def test_a_check_swift_cannot_answer_is_no_refused_delete(monkeypatch):
    """Every HEAD fails (a 503 after swiftclient's retries): nothing was seen still there, so
    no delete is known refused; the check says it could not confirm them, and why."""
    names = _full(1)
    _answering(monkeypatch, dict.fromkeys(names, 503))
    check = retention.check_deletes(_swift_profile(), [_named(*names)])
    assert check.refused == ""
    assert check.unconfirmed.startswith(
        "the deletes of 3 object(s) that duplicity remove-all-but-n-full 1 set out to delete "
        "could not be confirmed (Swift answered 503 Service Unavailable"
    ), check.unconfirmed


def test_an_unreachable_swift_leaves_the_deletes_unconfirmed(monkeypatch):
    names = _full(1)
    _answering(monkeypatch, dict.fromkeys(names, 200), listing=ConnectionRefusedError(111, "no"))
    check = retention.check_deletes(_swift_profile(), [_named(*names)])
    assert check.refused == ""
    assert (
        "3 object(s)" in check.unconfirmed
        and "(cannot reach Swift at http://k/auth/v1.0" in check.unconfirmed
    )


def test_objects_seen_still_there_are_refused_and_the_unanswered_are_counted(monkeypatch):
    """One HEAD answers 200 (still there: a refused delete), one 404 (gone), one fails: the
    refusal names the one seen and counts the one that could not be confirmed."""
    kept, gone, unknown = _full(1)
    _answering(monkeypatch, {kept: 200, gone: 404, unknown: ConnectionResetError(104, "reset")})
    check = retention.check_deletes(_swift_profile(), [_named(kept, gone, unknown)])
    assert check.refused.startswith(
        f"1 object(s) that duplicity remove-all-but-n-full 1 set out to delete ({kept}) are "
        "still in container box"
    ), check.refused
    assert "1 more could not be confirmed" in check.refused, check.refused
    assert check.unconfirmed == ""


def test_every_object_answered_gone_is_a_clean_check(monkeypatch):
    names = _full(1)
    _answering(monkeypatch, dict.fromkeys(names, 404))
    assert retention.check_deletes(_swift_profile(), [_named(*names)]) == retention.DeleteCheck()


def test_a_delete_swift_refused_stays_a_failure_when_the_check_cannot_be_made(monkeypatch):
    """duplicity reported Swift's refusal of a delete (the swift-deletes patch), then the check
    could not be made: Swift's own answer to the DELETE is no unanswered check, exit 13."""
    from cfbackup.duplicity.machinelog import Record
    from cfbackup.duplicity.patches.swift_deletes import REFUSED

    names = _full(1)
    _answering(monkeypatch, dict.fromkeys(names, 503))
    what, result = _named(*names)
    said = f"{REFUSED}host/{names[0]}: it answered 403 Forbidden"
    result.records.append(Record("WARNING", 0, "", said))
    check = retention.check_deletes(_swift_profile(), [(what, result)])
    assert check.unconfirmed == ""
    assert check.refused.startswith(
        "duplicity remove-all-but-n-full 1 reported that the target refused a delete "
        f"({said}), and whether the 3 object(s) it set out to delete ({names[0]}, "
    ), check.refused
    assert "could not be checked (Swift answered 503 Service Unavailable" in check.refused


def test_an_object_name_with_a_newline_stays_on_the_message_s_line():
    """Object names are names: a newline, a tab or an ESC in one is spelled out in the
    message that names it, which then cannot show a line that passes for another message."""
    profile = _swift_profile()
    names = ["host/evil\ncfbackup: error: fake", "host/tab\there", "host/esc\x1b[2J"]
    for problem in (
        retention.refused_unchecked(profile, ["cleanup"], names, "403", "503"),
        retention.deletes_refused(profile, [_named(*names)], names),
    ):
        assert "\n" not in problem and "\t" not in problem and "\x1b" not in problem, problem
        assert "(host/evil\\x0acfbackup: error: fake, host/tab\\x09here, host/esc\\x1b[2J" in (
            problem
        )
