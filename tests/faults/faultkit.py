"""The fault suite's tools: one profile reachable through either front-end, runs to kill or to
freeze, the remote objects to damage, and the secrets to watch for (processes in
``procwatch.py``, the webhook receiver in ``webhook_receiver.py``).

A plain module (``from faultkit import ...``): ``conftest`` is a name every test directory's
conftest.py takes in turn, so importing helpers from it is ambiguous.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import random
import signal
import subprocess
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from local_swift import LocalSwift
from procwatch import group_members
from support.cli import BIN, PASSPHRASE, CliResult, secret_values

FRONT_ENDS = ("cfbackup", "dt-cf-backup")
LEGACY_PROFILE = "dt-cf-backup"  # the profile name a ~/.dt-cf-backup.conf gets


def all_secrets() -> list[str]:
    """Every secret the suite uses: passphrases and the tempauth keys (the same in every
    LocalSwift, the session one and the 3-replica one)."""
    return secret_values() + [key for _, key in LocalSwift().users.values()]


def assert_clean(text: str, where: str = "output") -> None:
    for secret in all_secrets():
        assert secret not in text, f"a secret leaked into {where}: {text[:3000]}"


def wait_for(condition: Callable[[], object], timeout: float, what: str, step: float = 0.2):
    """Poll ``condition`` until it returns something true; fail naming ``what`` after
    ``timeout`` seconds. Returns that value."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        value = condition()
        if value:
            print(f"waited {time.monotonic() - started:.1f} s for {what}")
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


# ---- one profile, either front-end ----------------------------------------------------------


def write_tree(root: Path, *, mb: int = 4, seed: int = 1) -> Path:
    """A few small files, some with awkward names, and ``mb`` MB of random data (random so gpg
    cannot compress it: with volsize 1 that is about ``mb`` volumes)."""
    from support.trees import make_awkward_tree

    make_awkward_tree(root, big_mb=0, seed=seed)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / f"random-{seed}.bin").write_bytes(random.Random(seed).randbytes(mb << 20))
    return root


@dataclasses.dataclass
class Setup:
    """A profile the test drives through ``front_end``: ``cfbackup -c CONFIG`` with a native
    config, or ``dt-cf-backup --config CONFIG`` with a legacy ~/.dt-cf-backup.conf."""

    front_end: str
    config: Path
    source: Path
    container: str
    state_dir: Path
    archive_dir: Path
    profile: str
    swift: LocalSwift
    env: dict[str, str]
    workdir: Path

    @property
    def legacy(self) -> bool:
        return self.front_end == "dt-cf-backup"

    def argv(self, action: str, *args: str) -> list[str]:
        """The command line a user types for ``action`` (backup, full, restore TARGET, verify);
        other actions, and ``cli`` (its arguments as they are), go through ``cfbackup -c CONFIG``
        for both kinds of config."""
        if action == "cli":
            return [str(BIN / "cfbackup"), "-c", str(self.config), *args]
        if self.legacy and action in ("backup", "full", "restore", "verify"):
            flag = {"backup": "--backup", "full": "--full", "restore": "--restore"}.get(action)
            return [
                str(BIN / "dt-cf-backup"),
                "--config",
                str(self.config),
                flag or "--verify",
                *args,
            ]
        cli = [str(BIN / "cfbackup"), "-c", str(self.config)]
        if action == "full":
            return [*cli, "backup", self.profile, "--full", *args]
        if action == "backup":
            return [*cli, "backup", *(args or (self.profile,))]
        if action in ("restore", "verify", "status"):
            return [*cli, action, self.profile, *args]
        return [*cli, action, *args]

    def run(
        self,
        action: str,
        *args: str,
        env: dict | None = None,
        prefix: tuple[str, ...] = (),
        timeout: float = 240,
    ) -> CliResult:
        """Run to the end; its output never holds a traceback or a secret."""
        started = time.monotonic()
        completed = subprocess.run(
            [*prefix, *self.argv(action, *map(str, args))],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        result = CliResult(completed)
        print(
            f"{action} {' '.join(map(str, args))}: exit {result.returncode} in "
            f"{time.monotonic() - started:.1f} s"
        )  # shown with a failure, and with -rP
        assert "Traceback" not in result.output, result
        assert_clean(result.output)
        return result

    def spawn(self, action: str, *args: str, env: dict | None = None) -> Spawned:
        """Start in the background, in its own process group (so the test can kill or freeze
        cfbackup and its duplicity child together)."""
        out = self.workdir / f"spawn-{uuid.uuid4().hex[:6]}.out"
        with open(out, "wb") as handle:
            process = subprocess.Popen(
                self.argv(action, *map(str, args)),
                env={**self.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        print(f"{action} {' '.join(map(str, args))}: started in the background")
        return Spawned(process, out)

    def history(self) -> list[dict]:
        result = self.run("history", "--json", "--limit", "100")
        assert result.returncode == 0, result
        return [row for row in json.loads(result.stdout) if row["profile"] == self.profile]

    def assert_history(self, *codes: int) -> list[dict]:
        """Every run left a finished record; ``codes`` are among their exit codes."""
        rows = self.history()
        assert all(row["finished"] for row in rows), rows
        found = [row["exit_code"] for row in rows]
        for code in codes:
            assert int(code) in found, f"no run with exit code {int(code)} in history: {rows}"
        return rows

    def lock_is_free(self) -> bool:
        path = self.state_dir / "locks" / f"{self.profile}.lock"
        if not path.exists():
            return True
        with open(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(handle, fcntl.LOCK_UN)
        return True

    # ---- the remote side ----
    def connection(self):
        """A swiftclient Connection as the admin user (kept: polling re-authenticates less)."""
        import swiftclient

        if getattr(self, "_connection", None) is None:
            user, key = self.swift.users["admin"]
            self._connection = swiftclient.Connection(
                authurl=self.swift.auth_url, user=user, key=key, retries=0, timeout=10
            )
        return self._connection

    def listing(self) -> list[dict]:
        """The container's objects (name, last_modified, hash...); empty while Swift is
        unreachable or the container absent."""
        try:
            return self.connection().get_container(self.container, full_listing=True)[1]
        except Exception:  # noqa: BLE001 - polled while Swift may be down or the container absent
            return []

    def remote_objects(self) -> list[str]:
        """Object names in the container (empty while Swift is unreachable)."""
        return [o["name"] for o in self.listing()]

    def last_log(self, action: str = "backup") -> str:
        """The newest run log of ``action`` for the profile (duplicity's output is in it)."""
        logs = sorted((self.state_dir / "logs").glob(f"{self.profile}-{action}-*.log"),
                      key=os.path.getmtime)
        assert logs, f"no {action} log in {self.state_dir / 'logs'}"
        return logs[-1].read_text(errors="replace")

    def status(self) -> dict:
        result = self.run("status", "--json")
        assert result.returncode == 0, result
        found = json.loads(result.stdout)
        return found[0] if isinstance(found, list) else found

    def spawn_until_uploading(self, kind: str = "full", volumes: int = 1) -> Spawned:
        """Start a backup and return once ``volumes`` new volumes of a ``kind`` ("full" or
        "inc") set are at the target: the middle of the upload (more volumes follow)."""
        before = set(self.volumes(kind))
        run = self.spawn("backup")
        wait_for(
            lambda: (
                len(set(self.volumes(kind)) - before) >= volumes or run.process.poll() is not None
            ),
            120,
            f"{volumes} {kind} volume(s) at the target",
            step=0.05,  # a volume takes a fraction of a second on a quiet machine
        )
        assert run.process.poll() is None, f"the backup ended before the fault:\n{run.output()}"
        return run

    def volumes(self, kind: str) -> list[str]:
        """Uploaded volumes of full (``kind="full"``) or incremental (``"inc"``) sets."""
        return [
            n for n in self.remote_objects() if n.startswith(f"duplicity-{kind}.") and ".vol" in n
        ]


@dataclasses.dataclass
class Spawned:
    process: subprocess.Popen
    out: Path
    started: float = dataclasses.field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float = 240) -> int:
        code = self.process.wait(timeout=timeout)
        print(f"background run: exit {code} after {time.monotonic() - self.started:.1f} s")
        return code

    def output(self) -> str:
        text = self.out.read_text(errors="replace")
        assert "Traceback" not in text, text
        assert_clean(text)
        return text

    def kill_group(self) -> None:
        """kill -9 of cfbackup and its duplicity child at once, as a crash or an OOM kill does;
        returns when no process of the group is left."""
        os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        wait_for(lambda: not group_members(self.pid), 15, "the killed process group to be gone")

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP the whole run (cfbackup and duplicity) for the block: it holds its lock and
        cannot finish while the test acts."""
        os.killpg(self.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(self.pid, signal.SIGCONT)


def native_config(
    path: Path,
    *,
    source: Path,
    swift: LocalSwift,
    container: str,
    workdir: Path,
    profiles: tuple[str, ...],
    extra: str,
    encryption: str,
    notify_url: str | None = None,
    swift_options: str = "",
) -> None:
    text = f'state_dir = "{workdir}/state"\n'
    for name in profiles:
        target = container if name == profiles[0] else f"{container}-{name}"
        text += (
            textwrap.dedent(f"""
            [profiles.{name}]
            source = "{source}"
            target = "swift://{target}"
            archive_dir = "{workdir}/archive"
            volsize = 1
            """)
            + extra
            + textwrap.dedent(f"""
            [profiles.{name}.retention]
            after_backup = false

            [profiles.{name}.swift]
            auth_url = "{swift.auth_url}"
            username = "{swift.users["admin"][0]}"
            password_env = "T_SWIFT_KEY"
            """)
            + swift_options
            + textwrap.dedent(f"""
            [profiles.{name}.encryption]
            """)
            + encryption
            + "\n"
        )
        if notify_url:  # the notify plugin posts every failed run there
            text += textwrap.dedent(f"""
                [profiles.{name}.notify.webhook]
                url = "{notify_url}"
                when = "failure"
                """)
    path.write_text(text)
    path.chmod(0o600)


def legacy_config(
    path: Path,
    *,
    source: Path,
    swift: LocalSwift,
    container: str,
    passphrase: str = PASSPHRASE,
    static_options: str = "--volsize 1",
) -> Path:
    """A ~/.dt-cf-backup.conf as the old script's users wrote it (bash; secrets inline, so
    mode 0600). CLEAN_UP_TYPE=none: no retention pass after each backup (faster)."""
    user, key = swift.users["admin"]
    path.write_text(
        textwrap.dedent(f"""\
        # dt-cf-backup configuration
        ROOT="{source}"
        DEST="cf+http://{container}"
        CLOUDFILES_USERNAME="{user}"
        CLOUDFILES_APIKEY='{key}'
        CLOUDFILES_AUTHURL="{swift.auth_url}"
        PASSPHRASE='{passphrase}'
        GPG_KEY=""
        STATIC_OPTIONS="{static_options}"
        CLEAN_UP_TYPE="none"
        """)
    )
    path.chmod(0o600)
    return path


def error_line(result: CliResult) -> str:
    """The one ``cfbackup: error:`` line a failure prints."""
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("cfbackup: error:")]
    assert len(lines) == 1, result
    return lines[0]
