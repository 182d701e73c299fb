"""Real users' legacy configs, end to end against the local Swift.

The corpus (``legacy_corpus/``) holds configs in the shapes the published samples of
dt-cf-backup.sh, dt-s3-backup.sh and duplicity-backup.sh take once a Swift user has edited them:
empty arrays, arrays over several lines, comments with quotes, ``$(date ...)`` and backquotes,
``export`` mixed with plain assignments, CRLF line ends, no final newline, a loose mode. Each one
goes through a full backup, two incrementals, a listing, a one-file restore and a whole restore
(compared byte for byte with what its selection should hold), with the front end of its row
doing everything and the two others a backup and a restore each: ``dt-cf-backup`` with
dt-cf-backup.sh's flags, ``dt-cf-backup`` with duplicity-backup.sh's, and ``cfbackup -c FILE``.
Then ``config migrate`` must give a native config that drives duplicity the same way and
continues the same chain (its backup is an incremental).

Every command runs where /etc/hosts says ``swift.cfbackup.test`` is the proxy and
``snet-swift.cfbackup.test`` a relay in front of it: the dt-cf-backup.sh config asks for
Rackspace ServiceNet, and the relay shows which host its uploads really went to. The
duplicity-backup.sh config mails every run through ``sendmail`` (msmtp, relaying to aiosmtpd).
"""

from __future__ import annotations

import dataclasses
import email
import json
import os
import re
import shutil
import subprocess
import textwrap
import time
from email import policy
from pathlib import Path

import pytest
from support.cli import BIN, KEY_PASSPHRASE, PASSPHRASE, CliResult, assert_no_secret
from support.relay import Relay, with_private_hosts
from support.trees import snapshot

from cfbackup.errors import ExitCode

pytestmark = pytest.mark.swift

CORPUS = Path(__file__).parent / "legacy_corpus"
PUBLIC_HOST = "swift.cfbackup.test"
SERVICENET_HOST = "snet-swift.cfbackup.test"


def make_source(root: Path) -> Path:
    files = {
        "etc/app.conf": "setting = 1\n",
        "etc/app.d/extra.conf": "extra = yes\n",
        "etc/app.d/.nobackup": "",
        "home/alice/Documents/report.txt": "quarterly report\n",
        "home/alice/Documents/draft.tmp": "scratch\n",
        "home/alice/.cache/junk.bin": "x" * 1000,
        "home/alice/naïve ✓.txt": "non-ASCII name\n",
        "home/bob/notes with space.txt": "notes\n",
        "home/bob/Trash/old.txt": "thrown away\n",
        "var/www/index.html": "<h1>hello</h1>\n",
        "var/log/app.log": "log line\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    (root / "etc" / "app.conf").chmod(0o640)
    return root


def _top(rel: str) -> str:
    return rel.split("/", 1)[0]


@dataclasses.dataclass
class Case:
    name: str
    file: str
    mode: int
    selected: object  # rel -> bool: what the old script's selection gave duplicity
    one_file: str
    full_front_end: str
    servicenet: bool = False
    mails: bool = False


CASES = [
    Case(
        "dt-cf-backup.sh sample, ServiceNet, GPG key, EXCLIST=()",
        "dt-cf-backup.conf",
        0o600,
        lambda rel: _top(rel) in ("etc", "home"),
        "home/alice/Documents/report.txt",
        "old",
        servicenet=True,
    ),
    Case(
        "dt-s3-backup.sh sample moved to Swift, CRLF, symmetric, a ** include",
        "dt-s3-backup.conf",
        0o600,
        lambda rel: (
            rel in ("home", "home/alice", "var")
            or (rel.startswith("home/alice/Documents") and not rel.endswith(".tmp"))
            or rel.startswith("var/www")
        ),
        "home/alice/Documents/report.txt",
        "zertrin",
    ),
    Case(
        "duplicity-backup.conf.example edited, mode 0644, INCLIST=( ), mail",
        "duplicity-backup.conf",
        0o644,
        lambda rel: not (rel == "var/log" or rel.startswith("var/log/") or ".cache" in rel),
        "home/bob/notes with space.txt",
        "cfbackup",
        mails=True,
    ),
    Case(
        "duplicity-backup.sh, ENCRYPTION='no', no final newline",
        "duplicity-backup-plain.conf",
        0o600,
        lambda rel: _top(rel) == "etc" and not rel.startswith("etc/app.d"),
        "etc/app.conf",
        "old",
    ),
]
FRONT_ENDS = ("old", "zertrin", "cfbackup")


class Harness:
    """Runs one corpus config through the three front ends, in the private /etc/hosts."""

    def __init__(self, tmp_path, env, local_swift, conf, case, prefix):
        self.tmp, self.env, self.swift = tmp_path, env, local_swift
        self.conf, self.case, self.prefix = conf, case, prefix

    def argv(self, front_end: str, action: str, *args: str) -> list[str]:
        conf = str(self.conf)
        if front_end == "cfbackup":
            cli = [str(BIN / "cfbackup"), "-c", conf]
            if action == "restore-file":
                return [*cli, "restore", "dt-cf-backup", args[1], "--path", args[0]]
            return {
                "full": [*cli, "backup", "--full"],
                "backup": [*cli, "backup"],
                "list": [*cli, "list", "--json"],
                "restore": [*cli, "restore", "dt-cf-backup", *args],
            }[action]
        old = front_end == "old"
        dt = [str(BIN / "dt-cf-backup")] + ([] if old else ["-c", conf])
        flags = {
            "full": "--full" if old else "-f",
            "backup": "--backup" if old else "-b",
            "list": "--list-current-files" if old else "-l",
            "restore": "--restore",
            "restore-file": "--restore-file",
        }
        return [*dt, flags[action], *args]

    def run(self, front_end: str, action: str, *args: str, expect: int = 0) -> CliResult:
        completed = subprocess.run(
            [*self.prefix, *self.argv(front_end, action, *map(str, args))],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            cwd=self.tmp,
        )
        result = CliResult(completed)
        assert "Traceback" not in result.output, result
        assert_no_secret(result.output, self.swift)
        assert result.returncode == expect, (front_end, action, result)
        if self.case.mode & 0o077:  # the loose legacy file: said on every run, with the fix
            assert f"chmod 600 {self.conf}" in result.stderr, result
        return result

    def expected(self, source: Path) -> dict:
        return {rel: v for rel, v in snapshot(source).items() if self.case.selected(rel)}


def _objects(local_swift, container: str) -> list[str]:
    from swiftclient import client

    user, key = local_swift.users["admin"]
    conn = client.Connection(local_swift.auth_url, user, key, auth_version="1")
    return [o["name"] for o in conn.get_container(container, full_listing=True)[1]]


@pytest.fixture(scope="module")
def private_hosts(tmp_path_factory, local_swift):
    """/etc/hosts for the corpus commands, and the relay standing for ServiceNet."""
    port = int(local_swift.proxy_url.rsplit(":", 1)[1])
    hosts = tmp_path_factory.mktemp("hosts") / "hosts"
    hosts.write_text(  # the machine's own lines too (duplicity looks up this host's name)
        Path("/etc/hosts").read_text() + f"\n127.0.0.1 {PUBLIC_HOST}\n127.0.0.2 {SERVICENET_HOST}\n"
    )
    with Relay(("127.0.0.2", port), ("127.0.0.1", port)) as relay:
        yield with_private_hosts(hosts), relay, port


@pytest.fixture
def mail_setup(tmp_path, cli_env):
    """``sendmail`` on PATH is Debian's msmtp, configured (~/.msmtprc) to relay to aiosmtpd."""
    from operations.smtp_server import SmtpServer

    msmtp = shutil.which("msmtp")
    assert msmtp, "msmtp is missing: run scripts/setup.sh --dev"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sendmail").symlink_to(msmtp)
    with SmtpServer() as server:
        rc = Path(cli_env["HOME"]) / ".msmtprc"
        rc.write_text(
            "defaults\nauth off\ntls off\n"
            f"account default\nhost 127.0.0.1\nport {server.port}\n"
            "from backup@cfbackup.invalid\n"
        )
        rc.chmod(0o600)
        yield server, f"{bin_dir}:{cli_env['PATH']}"


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_corpus_config_through_every_front_end(
    case, tmp_path, cli_env, gpg_keys, local_swift, container, private_hosts, mail_setup
):
    prefix, relay, port = private_hosts
    smtp, path = mail_setup
    env = {**cli_env, "PATH": path}
    source = make_source(tmp_path / "src")
    conf = Path(env["HOME"]) / ".dt-cf-backup.conf"
    text = (CORPUS / case.file).read_bytes().decode()
    for key, value in {
        "@SRC@": str(source),
        "@CONTAINER@": container,
        "@AUTHURL@": f"http://{PUBLIC_HOST}:{port}/auth/v1.0",
        "@USER@": local_swift.users["admin"][0],
        "@KEY@": local_swift.users["admin"][1],
        "@PASSPHRASE@": PASSPHRASE,
        "@KEY_PASSPHRASE@": KEY_PASSPHRASE,
        "@GPG_KEY@": gpg_keys["fingerprint"],
        "@LOGDIR@": str(tmp_path / "logs"),
    }.items():
        text = text.replace(key, value)
    conf.write_bytes(text.encode())
    conf.chmod(case.mode)
    h = Harness(tmp_path, env, local_swift, conf, case, prefix)
    f = case.full_front_end
    g, k = [x for x in FRONT_ENDS if x != f]

    h.run(f, "full")
    time.sleep(1.1)  # duplicity's times have one-second resolution
    (source / "etc" / "app.conf").write_text("setting = 2\n")
    (source / "home" / "alice" / "Documents" / "step-2.txt").write_text("second\n")
    h.run(g, "backup")
    time.sleep(1.1)
    (source / "etc" / "step-3.conf").write_text("third\n")
    (source / "home" / "alice" / "Documents" / "report.txt").write_text("report, v3\n")
    h.run(k, "backup")
    expected = h.expected(source)

    listing = h.run(f, "list").stdout
    if f == "cfbackup":
        listed = {e["path"] for e in json.loads(listing)}
    else:
        # duplicity's list-current-files text: "Sun Dec  6 07:19:53 2026 PATH" per file
        listed = set(re.findall(r"(?m)^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} (.+)$", listing))
    assert listed - {"."} == set(expected), sorted(listed ^ set(expected))

    one = tmp_path / "one-file"
    h.run(f, "restore-file", case.one_file, one)
    got = one / case.one_file if f == "cfbackup" else one  # restore --path keeps the path
    assert got.read_bytes() == (source / case.one_file).read_bytes()
    for front_end in (f, g, k):  # each front end restores the whole tree once
        restored = tmp_path / f"restored-{front_end}"
        h.run(front_end, "restore", restored)
        assert snapshot(restored) == expected, front_end

    # ServiceNet: every upload went to the snet- host, and only those of this config
    sent = [r for r in relay.requests() if f"/{container}" in r[1]]
    if case.servicenet:
        puts = [r for r in sent if r[0] == "PUT" and "duplicity-full" in r[1]]
        assert puts and all(r[2] == f"{SERVICENET_HOST}:{port}" for r in sent), sent
        assert not any("/auth/" in r[1] for r in relay.requests())  # auth went to the public host
    else:
        assert not sent, sent
    if case.mails:  # EMAIL_TO, EMAIL_FAILURE_ONLY="no": a report after every run, by sendmail
        mails = [email.message_from_bytes(m.content, policy=policy.default) for m in smtp.messages]
        assert len(mails) >= 6, len(mails)
        for mail in mails:
            assert mail["Subject"].startswith("duplicity-backup report "), mail["Subject"]
            assert mail["From"] == "backup@cfbackup.invalid"
            body = mail.get_content()
            assert f"WARNING: {conf} holds secrets" in body and f"chmod 600 {conf}" in body
            assert_no_secret(body, local_swift)
    else:
        assert not smtp.messages
    if case.mode & 0o077:
        _loose_mode_everywhere(h, conf)
    _migrate_round_trip(h, conf, container, env, local_swift)


def _loose_mode_everywhere(h: Harness, conf: Path) -> None:
    """The run history and ``check`` carry the warning too."""
    completed = subprocess.run(
        [*h.prefix, str(BIN / "cfbackup"), "-c", str(conf), "history", "--json"],
        env=h.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows = json.loads(completed.stdout)
    assert rows and all(f"chmod 600 {conf}" in (r["message"] or "") for r in rows), rows
    check = subprocess.run(
        [*h.prefix, str(BIN / "cfbackup"), "-c", str(conf), "check"],
        env=h.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == ExitCode.REFUSED, check.stdout + check.stderr
    row = next(line for line in check.stdout.splitlines() if "config mode" in line)
    assert row.strip().startswith("[FAIL]") and f"chmod 600 {conf}" in row


def _migrate_round_trip(h, conf, container, env, local_swift) -> None:
    """The migrated TOML: same duplicity argv and environment, and the same chain."""
    native = h.tmp / "native.toml"
    migrated = subprocess.run(
        [*h.prefix, str(BIN / "cfbackup"), "config", "migrate", str(conf), "-o", str(native)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert oct(native.stat().st_mode & 0o777) == "0o600"
    assert _drives(conf, env) == _drives(native, env)
    before = _objects(local_swift, container)
    h.conf = native
    h.case = dataclasses.replace(h.case, mode=0o600)
    time.sleep(1.1)
    (h.tmp / "src" / "etc" / "app.conf").write_text("setting = 4\n")
    h.run("cfbackup", "backup")
    after = _objects(local_swift, container)
    fulls = {n for n in after if "duplicity-full." in n and "manifest" in n}
    incs = {n for n in set(after) - set(before) if "duplicity-inc." in n and "manifest" in n}
    assert len(fulls) == 1 and len(incs) == 1, sorted(set(after) - set(before))


DRIVES = r"""
import hashlib, json, sys
from cfbackup.cli.context import CliContext
from cfbackup.config import load_config
from cfbackup.duplicity import commands
from cfbackup.duplicity.environment import duplicity_environment
config = load_config(sys.argv[1], CliContext().plugin_sections())
profile = config.profile(None)
print(json.dumps({
    "profile": profile.name,
    "backup": commands.backup_argv(profile, log_fd=3),
    "restore": commands.restore_argv(profile, "/r", path="p", log_fd=3),
    "list": commands.list_argv(profile, log_fd=3),
    "retention": commands.retention_rules(profile),
    "after_backup": profile["retention"]["after_backup"],
    "env": {k: hashlib.sha256(v.encode()).hexdigest()  # equal or not, never shown
            for k, v in duplicity_environment(profile).items()},
    "notify": profile.plugin_config("notify"),
    "state": [str(config.state_dir), str(config.log_dir)],
}))
"""


def _drives(config: Path, env: dict) -> dict:
    """How a config drives duplicity, read in a process of its own with the run's environment."""
    completed = subprocess.run(
        [str(BIN / "python"), "-c", DRIVES, str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_servicenet_uploads_from_duplicitys_upload_pool(
    tmp_path, cli_env, local_swift, container, private_hosts
):
    """duplicity's upload pool (--concurrency) uploads from processes of its own ("spawn"):
    they run the launcher again, so every volume still goes to the snet- host."""
    prefix, relay, port = private_hosts
    source = tmp_path / "src"
    source.mkdir()
    (source / "big.bin").write_bytes(os.urandom(3 << 20))  # 1 MB volumes: several uploads
    config = tmp_path / "config.toml"
    config.write_text(
        textwrap.dedent(f"""\
        state_dir = "{tmp_path}/state"
        [profiles.main]
        source = "{source}"
        target = "swift://{container}"
        archive_dir = "{tmp_path}/archive"
        volsize = 1
        extra_options = ["--concurrency=1"]
        [profiles.main.swift]
        auth_url = "http://{PUBLIC_HOST}:{port}/auth/v1.0"
        auth_version = "1"
        interface = "internal"
        username = "{local_swift.users["admin"][0]}"
        password_env = "T_SWIFT_KEY"
        [profiles.main.encryption]
        passphrase_env = "T_PASSPHRASE"
        """)
    )
    config.chmod(0o600)
    done = subprocess.run(
        [*prefix, str(BIN / "cfbackup"), "-c", str(config), "backup"],
        env=cli_env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    volumes = [n for n in _objects(local_swift, container) if ".vol" in n]
    sent = {path.rsplit("/", 1)[-1] for method, path, host in relay.requests()
            if method == "PUT" and host == f"{SERVICENET_HOST}:{port}"}
    assert len(volumes) >= 3 and set(volumes) <= sent, (volumes, sorted(sent))
