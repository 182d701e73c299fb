"""``restore --path``: what the command line gives, read as a path in the backup
(``actions/restore.relative_path``). A path that cannot be one is a mistake on the command
line (exit 2, USAGE), and the message gives the relative form meant, when there is one."""

from __future__ import annotations

import shlex
from types import SimpleNamespace

import pytest

from cfbackup import suggest
from cfbackup.actions.restore import relative_path
from cfbackup.errors import CfbackupError, ExitCode


def _run(source, **options):
    profile = SimpleNamespace(source=source, name="web")
    return SimpleNamespace(profile=profile, options={"target": "/tmp/r2", **options})


def _refusal(run, path) -> str:
    with pytest.raises(CfbackupError) as raised:
        relative_path(run, path)
    assert raised.value.exit_code == ExitCode.USAGE, raised.value.message
    return raised.value.message


@pytest.fixture(autouse=True)
def _config():
    suggest.use_config("/etc/cfbackup/base.toml")
    yield
    suggest.use_config(None)


def test_an_absolute_path_outside_the_source_is_a_usage_error_naming_the_relative_form():
    """Before: "/etc/nginx is not under the profile's source /srv/src: give a path inside
    it.", exit 12 (a restore TARGET problem), and no word of etc/nginx."""
    message = _refusal(_run("/srv/src", force=True), "/etc/nginx")
    assert message == (
        "--path /etc/nginx is not under the profile's source /srv/src: give it relative to the "
        "source: etc/nginx for /srv/src/etc/nginx (cfbackup -c /etc/cfbackup/base.toml restore "
        "web /tmp/r2 --path etc/nginx --force)."
    )
    command = message.split(" (", 1)[1].removesuffix(").")
    assert shlex.split(command)[-3:] == ["--path", "etc/nginx", "--force"]
    # no relative form of / itself; dt-cf-backup --restore-file gets no cfbackup command
    assert _refusal(_run("/srv/src"), "/").endswith(
        ": give a path relative to the source, /srv/src."
    )
    message = _refusal(_run("/srv/src", exact_destination=True), "/etc/hosts")
    assert message.endswith("etc/hosts for /srv/src/etc/hosts."), message
    # what is under the source is taken as it was
    assert relative_path(_run("/srv/src"), "/srv/src/etc/nginx/") == "etc/nginx"


def test_a_path_under_the_folder_a_symlinked_source_resolves_to(tmp_path):
    (tmp_path / "data" / "src").mkdir(parents=True)
    (tmp_path / "src").symlink_to(tmp_path / "data" / "src")
    message = _refusal(_run(str(tmp_path / "src")), str(tmp_path / "data" / "src" / "www" / "x"))
    assert f": give it relative to the source: www/x for {tmp_path}/src/www/x (" in message


def test_dot_dot_is_a_usage_error_with_the_path_meant_when_it_stays_inside():
    """Before: "../etc: '..' is not allowed in a path to restore.", exit 12."""
    message = _refusal(_run("/srv/src"), "../etc")
    assert message == (
        "--path ../etc holds '..', which a path to restore may not: give a path relative to "
        "the source, /srv/src."
    )
    message = _refusal(_run("/srv/src"), "etc/../var/www")
    assert ": give it relative to the source: var/www for /srv/src/var/www (" in message


def test_the_list_command_for_a_path_not_in_the_backup_names_the_moment_meant(tmp_path):
    """`list main --time 3D` was printed as typed: run later, it lists another backup than
    the restore looked in (the restore command beside it already said the moment)."""
    from datetime import datetime

    from cfbackup import chains
    from cfbackup.actions import restore_paths

    chain_profile = SimpleNamespace(archive_dir=tmp_path, backup_name="web", get=lambda *_: None)
    chain = chains.Chain(chain_profile, "")
    when = 1_800_000_000.0
    run = _run("/srv", time="3D", when=when)
    found = restore_paths.not_in_backup(run, chain, "etc/x")
    moment = datetime.fromtimestamp(when).astimezone().isoformat(timespec="seconds")
    assert "at --time 3D: check the path against " in found.message, found.message
    assert found.message.endswith(f"list web --time {moment}."), found.message
    fixed = restore_paths.not_in_backup(_run("/srv", time="2026-12-01"), chain, "x")
    assert fixed.message.endswith("list web --time 2026-12-01."), fixed.message


def test_the_same_restore_again_names_the_moment_a_relative_time_meant():
    """``same_command`` (the restore to run once include or split_chains is set back) printed
    `--time 3D` as typed: run after the edit, it counts back from then."""
    from datetime import datetime

    from cfbackup.actions.common import same_command

    when = 1_800_000_000.0
    run = _run("/srv", time="3D", when=when, path="etc/x")
    run.action = "restore"
    moment = datetime.fromtimestamp(when).astimezone().isoformat(timespec="seconds")
    assert same_command(run).endswith(f"restore web /tmp/r2 --path etc/x --time {moment}")
    run.options["time"] = "2026-12-01"
    assert same_command(run).endswith("--path etc/x --time 2026-12-01")


def test_a_damaged_local_signature_tar_leaves_the_refusal_without_a_hint(tmp_path):
    """The refusal of a path duplicity did not find reads the archive dir's signature tars
    for a hint (a near match, an earlier backup holding it): a damaged one (a disk error, a
    copy cut short) raised out of it, an internal error in place of the refusal."""
    from cfbackup import chains
    from cfbackup.actions import restore_paths

    (tmp_path / "web").mkdir()
    damaged = tmp_path / "web" / "duplicity-full-signatures.20261201T000000Z.sigtar.gz"
    damaged.write_bytes(b"\x1f\x8b\x08\x00not a gzip stream after all")
    chain_profile = SimpleNamespace(archive_dir=tmp_path, backup_name="web", get=lambda *_: None)
    chain = chains.Chain(chain_profile, "")
    found = restore_paths.not_in_backup(_run("/srv", when=None), chain, "x")
    assert found.message.endswith(
        ": check the path against cfbackup -c /etc/cfbackup/base.toml list web."
    ), found.message


def test_the_earlier_backup_named_is_never_the_one_just_said_to_lack_the_path(
    tmp_path, monkeypatch
):
    """The refusal names an earlier backup holding the path (``signatures.last_holding``)
    after the backup the restore read (the local chain's newest set) was said to lack it:
    should the two readings of the signature tars ever disagree, it named that very backup
    ("x is not in the backup ..., but the backup of <its own time> holds it"). A backup not
    strictly earlier is no hint."""
    import calendar
    import tarfile
    import time

    from cfbackup import chains, signatures
    from cfbackup.actions import restore_paths

    (tmp_path / "web").mkdir()
    sigtar = tmp_path / "web" / "duplicity-full-signatures.20261201T000000Z.sigtar.gz"
    (tmp_path / "etc").write_text("")
    with tarfile.open(sigtar, "w:gz") as archive:
        archive.add(tmp_path / "etc", arcname="signature/etc")
    read = calendar.timegm(time.strptime("20261201T000000Z", "%Y%m%dT%H%M%SZ"))
    chain_profile = SimpleNamespace(archive_dir=tmp_path, backup_name="web", get=lambda *_: None)
    chain = chains.Chain(chain_profile, "")
    for when, named in ((read, False), (read - 86400, True)):
        monkeypatch.setattr(signatures, "last_holding", lambda *_a, when=when, **_k: when)
        found = restore_paths.not_in_backup(_run("/srv", when=None), chain, "x")
        assert ("but the backup of" in found.message) is named, found.message
