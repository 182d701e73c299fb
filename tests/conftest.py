"""Shared pytest fixtures.

``local_swift`` is a real Swift (scripts/local_swift.py) started once per test session on
loopback; tests that use it must create their own, uniquely named containers. ``gpg_keys``
is a throw-away GNUPGHOME with generated keys. ``make_config`` writes a profile for a test and
``cfbackup`` runs the installed CLI as a user would, checking that no secret is ever printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests"))

from local_swift import LocalSwift  # noqa: E402
from support.cli import (  # noqa: E402
    BIN,
    KEY_PASSPHRASE,
    PASSPHRASE,
    CliResult,
    assert_no_secret,
    stop_gpg_agent,
)


def _ctrl_c_reaches_what_tests_start() -> None:
    """A suite started in the background of a non-interactive shell (``.ci/run &``, nohup)
    inherits SIGINT ignored, and so would every cfbackup a test starts: Python installs no
    KeyboardInterrupt handler then, and the tests of Ctrl-C failed as if cfbackup ignored it.
    With a handler here, the programs the tests start get SIGINT's default back at exec."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


_ctrl_c_reaches_what_tests_start()


def _hypothesis_profile() -> str:
    """CI runs hypothesis derandomized (each test's examples derive from the test itself, so a
    failure replays by running the same test again) and prints a failing example's
    ``@reproduce_failure`` blob; elsewhere examples are random. HYPOTHESIS_PROFILE overrides."""
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, print_blob=True)
    settings.register_profile("dev", print_blob=True)
    name = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
    settings.load_profile(name)
    return name


def pytest_configure(config):
    config._cfbackup_hypothesis_profile = _hypothesis_profile()


# The order tests are handed to xdist workers (scripts/test.sh runs the suite on several, each
# with its own session fixtures: its own Swift, BIND, namespaces). The longest first, so that no
# worker is left with a long test at the end while the others idle; the unit tests last, to fill
# the gaps. Within a directory, collection order is kept.
_FIRST_TO_LAST = ("keystone", "faults", "end_to_end", "firewall", "quota", "recovery",
                  "operations", "integration", "unit")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """The Keystone tier's tests share one worker (``xdist_group``): the tier takes about 20 s to
    start, and the token-expiry backups start in the background with its first test."""
    tests = REPO / "tests"

    def rank(item) -> int:
        parts = Path(item.fspath).relative_to(tests).parts
        return _FIRST_TO_LAST.index(parts[0]) if parts[0] in _FIRST_TO_LAST else len(_FIRST_TO_LAST)

    items.sort(key=rank)  # stable: collection order within a directory
    for item in items:
        if Path(item.fspath).relative_to(tests).parts[0] == "keystone":
            item.add_marker(pytest.mark.xdist_group("keystone"))


@pytest.hookimpl(optionalhook=True)  # an xdist hook, on the controller
def pytest_xdist_node_collection_finished(node, ids):
    """With ``--dist loadgroup``, check that the Keystone group took (xdist marks a grouped test
    by a suffix to its node id). Where xdist cannot mark them, the Keystone tests would spread
    over every worker, each starting its own tier and token-expiry backups, silently."""
    if node.config.getvalue("dist") != "loadgroup":
        return
    lost = [i for i in ids if i.startswith("tests/keystone/") and not i.endswith("@keystone")]
    if lost:
        raise pytest.UsageError(
            f"pytest-xdist's loadgroup did not group {lost[0]} (and {len(lost) - 1} more) with "
            "this pytest: keep the pytest pin in pyproject.toml (pytest-xdist#1386).")


def pytest_sessionstart(session):
    """Printed even with -q: the profile CI ran with is in CI's log."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"hypothesis profile: {session.config._cfbackup_hypothesis_profile} (run with "
            "HYPOTHESIS_PROFILE=ci to replay CI's examples; a failure prints its "
            "@reproduce_failure blob)")


@pytest.fixture(scope="session")
def local_swift():
    """One real Swift for the whole session, the fault suite's included: 3 replicas over 3
    object servers (the multi-node layout cfbackup's users grow into; a fault test kills a
    storage server, others stop the proxy, and bring them back). Its updater daemons sweep
    every 300 s, Swift's default: a sweep forks and costs CPU all session long (about a fifth of
    a core at 5 s), and the one test that needs account usage to catch up runs a sweep itself
    (``run_container_updaters_once``)."""
    with LocalSwift(replicas=3, object_servers=3, updater_interval=300) as swift:
        yield swift


@pytest.fixture(autouse=True)
def _stop_signals_as_they_were():
    """Each test leaves SIGINT and SIGTERM handled as it found them, and no stop signal held
    (``interrupts.held``): tests run cfbackup's main, its daemon and its patches in the test
    process, and a handler one of them left swallowed a later test's Ctrl-C in CI (the stalled
    download tests then waited for swiftclient's 30 s timeout)."""
    import signal

    from cfbackup import interrupts

    before = {sig: signal.getsignal(sig) for sig in interrupts.STOP_SIGNALS}
    yield
    for sig, handler in before.items():
        if signal.getsignal(sig) is not handler and handler is not None:
            signal.signal(sig, handler)
    interrupts._depth, interrupts._kept = 0, None


@pytest.fixture(autouse=True)
def _hermetic_home(tmp_path, monkeypatch):
    """Keep every test away from the real ~/.config and ~/.dt-cf-backup.conf."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CFBACKUP_CONFIG", raising=False)
    yield
    stop_gpg_agent(home / ".gnupg")


@pytest.fixture
def empty_gnupghome(tmp_path):
    """A new, empty keyring directory (0700); its gpg-agent, if one starts, stopped after."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    yield home
    stop_gpg_agent(home)


@pytest.fixture(scope="session")
def gpg_keys(tmp_path_factory):
    """A GNUPGHOME with one key pair (encrypt + sign, protected by KEY_PASSPHRASE)."""
    import gnupg

    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    gpg = gnupg.GPG(gnupghome=str(home))
    params = gpg.gen_key_input(
        key_type="EDDSA",
        key_curve="ed25519",
        key_usage="sign",
        subkey_type="ECDH",
        subkey_curve="cv25519",
        subkey_usage="encrypt",
        name_real="cfbackup test",
        name_email="test@cfbackup.invalid",
        passphrase=KEY_PASSPHRASE,
        expire_date=0,
    )
    key = gpg.gen_key(params)
    assert key.fingerprint, key.stderr
    (home / "gpg-agent.conf").write_text("allow-loopback-pinentry\n")
    (home / "gpg.conf").write_text("pinentry-mode loopback\n")
    yield {"home": str(home), "fingerprint": key.fingerprint}
    stop_gpg_agent(home)


@pytest.fixture
def container():
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_config(tmp_path, local_swift, container):
    """Write a config for a swift profile 'main' and return its path.

    Keyword arguments are TOML snippets appended to the profile table ("encryption",
    "extra" for more profile keys, "more" for whole extra tables).
    """

    def make(
        *,
        encryption: str | None = None,
        extra: str = "",
        more: str = "",
        target: str | None = None,
        source: Path | None = None,
        name: str = "config.toml",
        mode: int = 0o600,
    ) -> Path:
        source = source or tmp_path / "src"
        source.mkdir(exist_ok=True)
        enc = encryption if encryption is not None else 'passphrase_env = "T_PASSPHRASE"'
        text = (
            textwrap.dedent(f"""\
            state_dir = "{tmp_path}/state"

            [profiles.main]
            source = "{source}"
            target = "{target or f"swift://{container}/host1"}"
            archive_dir = "{tmp_path}/archive"
            """)
            + extra
            + textwrap.dedent(f"""

            [profiles.main.swift]
            auth_url = "{local_swift.auth_url}"
            username = "{local_swift.users["admin"][0]}"
            password_env = "T_SWIFT_KEY"

            [profiles.main.encryption]
            """)
            + enc
            + "\n"
            + more
        )
        path = tmp_path / name
        path.write_text(text)
        path.chmod(mode)
        return path

    return make


@pytest.fixture
def cli_env(local_swift, gpg_keys):
    env = dict(os.environ)
    env.update(
        T_PASSPHRASE=PASSPHRASE,
        T_SWIFT_KEY=local_swift.users["admin"][1],
        GNUPGHOME=gpg_keys["home"],
    )
    env.pop("CFBACKUP_CONFIG", None)
    return env


@pytest.fixture
def dup_env(local_swift, tmp_path):
    """duplicity's environment as cfbackup gives it for a symmetric profile (for cfbackup's
    launcher run directly): the passphrase in PASSPHRASE, the Swift credentials in SWIFT_*/ST_*;
    its own GNUPGHOME."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SWIFT_", "ST_", "OS_", "CFBACKUP_"))}
    env.update(local_swift.env_v1("user"), PASSPHRASE=PASSPHRASE, GNUPGHOME=str(home))
    yield env
    stop_gpg_agent(home)


@pytest.fixture
def cfbackup(cli_env, local_swift):
    """Run ``cfbackup ARGS`` (or ``dt-cf-backup`` with program=...) as a user would."""

    def run(
        *args: str, program: str = "cfbackup", env: dict | None = None, timeout: float = 300
    ) -> CliResult:
        completed = subprocess.run(
            [str(BIN / program), *map(str, args)],
            env={**cli_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        result = CliResult(completed)
        assert "Traceback" not in result.output, result
        assert_no_secret(result.output, local_swift)
        return result

    return run
