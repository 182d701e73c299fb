"""A lock-down's state on disk, and the processes it names: what every party to it shares.

``STATE_DIR/firewall/`` holds ``lockdown.json`` (token, start, owner process, deadline,
backend, dead-man, the allow rules so the dead-man can re-apply the lock-down), the saved
ruleset (``saved-ruleset.*``, mode 0600; kept as ``kept-ruleset.*`` when the lock-down ended
with the ruleset changed, so that ``unlock --reload-saved`` finds it later) and the seed; a file
lock there serializes cfbackup processes and the dead-man. The lock-down (``lockdown.py``), the
dead-man (``deadman.py``) and the seed (``seed.py``) read and write it through this module, so
the dead-man needs neither the lock-down nor its settings.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cfbackup_firewall_lockdown import backends
from cfbackup_firewall_lockdown.settings import AllowRule, parse_network

log = logging.getLogger("cfbackup.firewall_lockdown")

RECORD = "lockdown.json"
KEPT = "kept-ruleset"


def firewall_dir(state_dir: Path, *, create: bool = False) -> Path:
    """``STATE_DIR/firewall``; readers (status) do not create it, writers do (mode 0700)."""
    path = Path(state_dir) / "firewall"
    if create:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@contextlib.contextmanager
def exclusive(state_dir: Path) -> Iterator[None]:
    """Serialize lock, unlock and seed changes between cfbackup processes (and the dead-man)."""
    fd = os.open(firewall_dir(state_dir, create=True) / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --- the record and the saved ruleset ------------------------------------------------------


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        log.warning("ignoring unreadable %s (%s)", path, error)
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically (a crash never leaves half a record), mode 0600."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_record(state_dir: Path) -> dict[str, Any] | None:
    return read_json(firewall_dir(state_dir) / RECORD)


def drop_record(state_dir: Path, token: str) -> dict[str, Any] | None:
    record = read_record(state_dir)
    if record and record.get("token") == token:
        (firewall_dir(state_dir) / RECORD).unlink(missing_ok=True)
        return record
    return None


def save_ruleset(backend: backends.Backend, state_dir: Path) -> dict[str, str]:
    files = {}
    for name, text in backend.save().items():
        path = firewall_dir(state_dir, create=True) / f"saved-ruleset.{name}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        files[name] = str(path)
    return files


def read_saved(record: dict[str, Any]) -> dict[str, str] | None:
    try:
        return {name: Path(path).read_text(encoding="utf-8")
                for name, path in record.get("saved", {}).items()}
    except OSError:
        return None


def keep_saved(state_dir: Path, record: dict[str, Any]) -> tuple[list[Path], bool]:
    """Move the lock-down's saved copy to ``kept-ruleset.*``, out of the next lock-down's way;
    returns the kept files and whether they replaced an older kept copy."""
    older = list(firewall_dir(state_dir).glob(f"{KEPT}.*"))
    for path in older:  # one set: no older file of another IP family mixed in
        path.unlink(missing_ok=True)
    kept, replaced = [], bool(older)
    for name, path in record.get("saved", {}).items():
        target = firewall_dir(state_dir) / f"{KEPT}.{name}"
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, target)
            kept.append(target)
    return kept, replaced


def read_kept(state_dir: Path, names: tuple[str, ...]) -> dict[str, Path]:
    """The kept copy (of the given backend's files), by name."""
    found = {name: firewall_dir(state_dir) / f"{KEPT}.{name}" for name in names}
    return {name: path for name, path in found.items() if path.is_file()}


# --- the allow rules, for the dead-man ----------------------------------------------------


def encode_rules(rules: tuple[AllowRule, ...]) -> list[dict[str, Any]]:
    return [{"proto": r.proto, "ports": list(r.ports) if r.ports else None,
             "sources": [str(n) for n in r.sources]} for r in rules]


def decode_rules(data: list[dict[str, Any]] | None) -> tuple[AllowRule, ...] | None:
    """The rules of :func:`encode_rules`; None for a record written without them."""
    if data is None:
        return None
    return tuple(AllowRule(r["proto"], tuple(r["ports"]) if r["ports"] else None,  # type: ignore[arg-type]
                           tuple(parse_network(n) for n in r["sources"])) for r in data)


# --- processes --------------------------------------------------------------------------------


def process_start(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (tells a reused PID apart)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):  # a zombie is dead: killed, not yet reaped by its parent
        return None
    return int(fields[19])


def process_alive(pid: int, start: int | None) -> bool:
    now = process_start(pid)
    return now is not None and (start is None or now == start)


def call_off_deadman(token: str, wait: float = 3.0) -> Path | None:
    """Stop the dead-man of lock-down ``token`` wherever its state is (a lock-down lifted from
    another state dir: it would re-apply it) and wait for it to end; returns its state dir."""
    import time

    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"cfbackup_firewall_lockdown.deadman" not in argv or token.encode() not in argv:
            continue
        state_dir = argv[argv.index(b"--state-dir") + 1] if b"--state-dir" in argv else None
        with contextlib.suppress(OSError):
            os.kill(int(entry.name), signal.SIGTERM)
        deadline = time.monotonic() + wait
        while process_alive(int(entry.name), None) and time.monotonic() < deadline:
            time.sleep(0.05)
        return Path(os.fsdecode(state_dir)) if state_dir else None
    return None


def stop_deadman(record: dict[str, Any]) -> None:
    pid = record.get("deadman_pid")
    if not pid or pid == os.getpid():
        return
    try:  # only our own dead-man: its command line carries the token
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if record["token"].encode() not in cmdline.read():
                return
        os.kill(pid, signal.SIGTERM)
    except (OSError, KeyError):
        pass
