"""An existing ~/.dt-cf-backup.conf keeps working: read by bash itself, driven through both the
dt-cf-backup compatibility script and cfbackup -c, and migrated to an equivalent native config."""

from __future__ import annotations

import subprocess
import textwrap

import pytest
from support.cli import BIN, PASSPHRASE
from support.forward_proxy import ForwardProxy
from support.trees import make_awkward_tree

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift


def _legacy_conf(path, src, local_swift, container, mode=0o600):
    user, key = local_swift.users["admin"]
    path.write_text(
        textwrap.dedent(f"""\
        # dt-cf-backup configuration, as the old script's users wrote it
        ROOT="{src}"
        DEST="cf+http://{container}"   # Cloud Files container

        INCLIST=( "{src}/dir one" \\
                  '{src}/with space.txt'   # a comment inside the array
                  "{src}/naïve ünïcode — ✓.txt"
                  "$(printf '%s' "{src}")/plain.txt" )
        EXCLIST=( "{src}/dir one/nested/deeper" )

        GPG_KEY=""
        PASSPHRASE='{PASSPHRASE}'
        CLOUDFILES_USERNAME="{user}"
        CLOUDFILES_APIKEY="{key}"
        CLOUDFILES_AUTHURL="{local_swift.auth_url}"
        STATIC_OPTIONS="--full-if-older-than 7D --s3-use-new-style"
        # CLEAN_UP_TYPE and CLEAN_UP_VARIABLE omitted: the old defaults apply
        LOGDIR="{path.parent}/logs"
        VERBOSITY="-v3"
        """)
    )
    path.chmod(mode)
    return path


EXPECTED = [
    ".",
    "dir one",
    "dir one/nested",
    "naïve ünïcode — ✓.txt",
    "plain.txt",
    "with space.txt",
]


def test_dt_cf_backup_flags_drive_backup_restore_and_list(
    tmp_path, cfbackup, local_swift, container, cli_env
):
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    conf = _legacy_conf(tmp_path / "home" / ".dt-cf-backup.conf", src, local_swift, container)
    result = cfbackup("--backup", program="dt-cf-backup")
    assert result.returncode == 0, result
    assert "--s3-use-new-style" in result.stderr  # reported as not carried over
    # (listing and one-file restores of legacy configs: test_legacy_corpus.py)
    out = tmp_path / "restored"
    result = cfbackup("--restore", out, program="dt-cf-backup")
    assert result.returncode == 0, result
    assert (out / "dir one" / "nested").is_dir()
    assert not (out / "dir one" / "nested" / "deeper").exists()
    assert (out / "plain.txt").read_text() == "plain file\n"
    restored = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert restored == [p for p in EXPECTED if p != "."], restored

    assert (tmp_path / "home" / "logs").is_dir()  # LOGDIR is honoured

    # duplicity-backup.sh's command line on the same backup (short flags are the long ones')
    zertrin = ("-c", conf)
    status = cfbackup(*zertrin, "-s", program="dt-cf-backup")
    assert status.returncode == 0, status  # duplicity's collection-status text
    assert "Found primary backup chain with matching signature chain:" in status.stdout, status
    dry = cfbackup(*zertrin, "-e", "-n", program="dt-cf-backup")
    assert dry.returncode == 0 and "dry run: cleanup" in dry.stdout, dry
    into = tmp_path / "dir-restored"
    result = cfbackup(
        *zertrin, "-t", "now", "--restore-dir", "dir one/nested", into, program="dt-cf-backup"
    )
    assert result.returncode == 0, result
    assert into.is_dir() and not (into / "deeper").exists()  # EXCLIST kept it out

    # --backup-script still writes the recovery kit (into the current directory), and the
    # kit brings the legacy file to a new HOME, where the old flags work again
    kit_dir = tmp_path / "kit"
    kit_dir.mkdir()
    made = subprocess.run([str(BIN / "dt-cf-backup"), "--backup-script"], cwd=kit_dir,
                          env=cli_env, capture_output=True, text=True)  # fmt: skip
    assert made.returncode == 0, made.stderr
    (kit,) = kit_dir.glob("*.tar.gpg")
    new_home = tmp_path / "new-home"
    new_home.mkdir()
    secret = tmp_path / "kit-passphrase"
    secret.write_text(PASSPHRASE + "\n")
    on_new = {"HOME": str(new_home)}
    imported = cfbackup("recovery-kit", "import", kit, "--passphrase-file", secret, env=on_new)
    assert imported.returncode == 0, imported
    installed = new_home / ".dt-cf-backup.conf"
    assert installed.read_bytes() == conf.read_bytes()
    assert oct(installed.stat().st_mode & 0o777) == "0o600"
    again = cfbackup("--list-current-files", program="dt-cf-backup", env=on_new)
    assert again.returncode == 0 and "with space.txt" in again.stdout, again
    readme = kit.with_name(kit.name + ".README.txt").read_text()
    assert "installs the config at ~/.dt-cf-backup.conf" in readme and "config.toml" not in readme
    # the quickstart's migrate on the new machine, where ~/.config/cfbackup does not exist yet
    native = new_home / ".config" / "cfbackup" / "config.toml"
    migrated = cfbackup("config", "migrate", installed, "-o", native, env=on_new)
    assert migrated.returncode == 0, migrated
    assert oct(native.parent.stat().st_mode & 0o777) == "0o700"


def test_a_proxy_the_legacy_file_exports_carries_cfbackups_requests_and_duplicitys(
    tmp_path, cfbackup, local_swift, container
):
    """dt-cf-backup.sh sourced the file, so its duplicity went through the proxy the file
    exported: cfbackup's own requests (authentication, the checks) and duplicity's uploads do
    too, on a cron line's environment that names no proxy."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    conf = _legacy_conf(tmp_path / "home" / ".dt-cf-backup.conf", src, local_swift, container)
    no_proxy = {name: "" for name in ("http_proxy", "https_proxy", "no_proxy", "NO_PROXY")}
    with ForwardProxy() as proxy:
        with conf.open("a") as file:
            file.write(f"export http_proxy={proxy.url}\n")
        result = cfbackup("--backup", program="dt-cf-backup", env=no_proxy)
        assert result.returncode == 0, result
        assert "exports" not in result.stderr, result.stderr  # carried, not named
        seen = list(proxy.seen)
    assert any(path.startswith("/auth") for _, path in seen), seen  # cfbackup's own
    assert any(method == "PUT" and ".vol1.difftar." in path for method, path in seen), seen
    out = tmp_path / "restored"
    result = cfbackup("--restore", out, program="dt-cf-backup", env=no_proxy)
    # the proxy is gone and the file still names it: the message says so, not "Swift is down"
    assert result.returncode == ExitCode.BACKEND, result
    assert f"cannot reach the HTTP proxy {proxy.url} on the way to Swift at" in result.stderr
    assert "check that the proxy is up, or http_proxy, which names it" in result.stderr


def test_migrate_prints_no_secret_and_names_what_it_drops(
    tmp_path, cfbackup, local_swift, container
):
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    conf = _legacy_conf(tmp_path / "legacy.conf", src, local_swift, container)
    printed = cfbackup("config", "migrate", conf)
    assert printed.returncode == 0, printed
    assert "CFBACKUP_ENCRYPTION_PASSPHRASE" in printed.stdout  # secrets are not printed
    assert "--s3-use-new-style" in printed.stdout  # listed as not carried over
    assert "line(s) 8 compute values" in printed.stdout  # $(printf ...) in INCLIST


def test_dt_cf_backup_short_and_long_flags_and_versions(tmp_path, cfbackup):
    usage = cfbackup("-h", program="dt-cf-backup")
    assert usage.returncode == 0
    for flag in (
        "-c FILE, --config",
        "-b, --backup",
        "-f, --full",
        "-v, --verify",
        "-e, --cleanup",
        "-l, --list-current-files",
        "-s, --collection-status",
        "-n, --dry-run",
        "-t TIME, --time",
        "--restore [PATH]",
        "--restore-file FILE",
        "--restore-dir DIR",
        "--backup-script",
        "-d, --debug",
        "-h, --help",
        "-V, --version",
    ):
        assert flag in usage.stdout, flag
    version = cfbackup("-V", program="dt-cf-backup")
    assert version.returncode == 0 and "cfbackup" in version.stdout
    assert "duplicity 3." in version.stdout
    bad = cfbackup("-d", "-c", tmp_path / "missing.conf", "-b", program="dt-cf-backup")
    assert bad.returncode == ExitCode.CONFIG and "missing.conf" in bad.stderr


def test_dt_cf_backup_without_config_says_where_it_looked(tmp_path, cfbackup):
    result = cfbackup("--backup", program="dt-cf-backup")
    assert result.returncode == ExitCode.CONFIG, result
    # the fix for a command line without -c, not "check the path given with -c"
    assert (
        "no ~/.dt-cf-backup.conf: give your old config with -c FILE (or set CONFIG=FILE)"
        in result.stderr
    ), result


def test_servicenet_unreachable_on_a_new_machine_names_the_legacy_line(
    tmp_path, cfbackup, local_swift, container
):
    """An old file with ``export RACKSPACE_SERVICENET=True`` (the published sample's) copied
    back to a new machine outside the provider's network: the storage URL's snet- host is not
    reachable from there. Before: the fix named ``swift.interface = "internal"`` and to set
    "public", a setting the old file does not have; it names the file's own line now."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    conf = _legacy_conf(tmp_path / "dt-cf-backup.conf", src, local_swift, container)
    conf.write_text(conf.read_text() + "export RACKSPACE_SERVICENET=True\n")
    result = cfbackup("-c", conf, "-l", program="dt-cf-backup")  # snet-127.0.0.1: no such host
    assert result.returncode == ExitCode.BACKEND, result
    assert "snet-127.0.0.1" in result.stderr, result.stderr
    assert (
        f"(RACKSPACE_SERVICENET=True in {conf} asks for the provider's internal host (ServiceNet), "
        "reachable only from inside its network: remove that line elsewhere)" in result.stderr
    ), result.stderr
    assert "swift.interface" not in result.stderr, result.stderr
