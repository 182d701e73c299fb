"""``cfbackup status``: chains, last full and incremental, last cfbackup runs, remote usage."""

from __future__ import annotations

import os
import re

from cfbackup import (
    chains,
    collection,
    future_sets,
    gpgkeys,
    history,
    legacy_text,
    lock,
    retention,
    stores,
    swift,
    swift_usage,
    volumes,
)
from cfbackup.actions.common import backed_up_roots, collection_status, prepare
from cfbackup.config import secrets
from cfbackup.config.model import Profile
from cfbackup.duplicity import commands, names
from cfbackup.duplicity.environment import encryption_environment, swift_environment
from cfbackup.duplicity.target import swift_target
from cfbackup.errors import CfbackupError, ExitCode
from cfbackup.runtypes import Run, RunResult


def run_status(run: Run) -> RunResult:
    """status runs without the profile lock, beside a backup, prune or cleanup: it must not
    take duplicity's archive-dir lock either (the other run, or this one, would fail). The
    chains of a swift:// or file:// target are read from its object names (``collection.py``);
    only another target's come from duplicity's collection-status, and not while a run holds
    the profile: they are then left out, and the output says why."""
    profile = run.profile
    readable = stores.readable(profile.target)
    env = _prepare(run, readable)
    running = lock.holder(run.config.state_dir, profile.name)
    chain_list = chains.of(profile)
    text = bool(run.options.get("duplicity_text"))  # dt-cf-backup -s: duplicity's own lines
    if readable:
        parts = chains.run_each(profile, chain_list, lambda chain: _collection(chain, text=text))
    elif running:
        parts = [{"chains": [], "orphaned_sets": 0, "incomplete_sets": 0} for _ in chain_list]
    else:
        parts = chains.run_each(
            profile, chain_list, lambda chain: collection_status(run, chain, env)
        )
    status: dict = {"profile": profile.name, "target": profile.target}
    status["running"] = (
        {
            "pid": running.get("pid"),
            "action": running.get("action"),
            "since": running.get("since"),
            "chains_shown": readable,
        }
        if running
        else None
    )
    collection: dict = {"chains": [], "orphaned_sets": 0, "incomplete_sets": 0}
    listings = {  # each chain's names as _collection listed them: no second listing
        chain.label: part.pop("listing")
        for chain, part in zip(chain_list, parts, strict=True)
        if "listing" in part
    }
    missing: list[dict] = []
    lost_manifests: list[dict] = []
    for chain, part in zip(chain_list, parts, strict=True):
        if chain.root:  # a split profile: each duplicity chain says which include root it holds
            for found in part["chains"]:
                found["root"] = f"/{chain.root}"
        collection["chains"] += part["chains"]
        collection["orphaned_sets"] += part.get("orphaned_sets", 0)
        collection["incomplete_sets"] += part.get("incomplete_sets", 0)
        missing += _missing_volumes(chain.profile, part)
        for lost in part.pop("lost_manifests", []):
            lost_manifests.append({**lost, **({"root": f"/{chain.root}"} if chain.root else {})})
    status.update(collection)
    if text:  # None: a chain of a target only duplicity reads (neither swift:// nor file://)
        status["duplicity_text"] = [part.get("text") for part in parts]
    sets = [s for chain in collection["chains"] for s in chain["sets"]]
    status["last_full"] = max((s["time"] for s in sets if s["type"] == "full"), default=None)
    status["last_incremental"] = max((s["time"] for s in sets if s["type"] == "inc"), default=None)
    # broken: a restore would fail (a volume is gone, or incrementals lost their full). Not
    # broken: an interrupted backup (an incomplete set the next backup resumes), or older chains
    # (duplicity calls every chain but the newest "no-sig", even with signatures).
    # A set without a manifest that newer sets follow is no interrupted backup (duplicity
    # resumes only the newest): its manifest is lost, and restores from it on fail. duplicity's
    # collection-status keeps it in the chain and counts it as incomplete: so do chains and
    # incomplete_sets here; lost_manifests names it.
    status["missing_volumes"] = missing
    status["lost_manifests"] = lost_manifests
    status["lost_roots"] = _lost_roots(run, chain_list, parts) if readable else []
    status["broken"] = (
        bool(missing)
        or bool(lost_manifests)
        or bool(status["lost_roots"])
        or collection["orphaned_sets"] > 0
    )
    # sets a clock that was ahead dated: backups and retention refuse until they are moved
    futures = future_sets.found(profile, listings) if readable else []
    status["future_sets"] = future_sets.described(futures)
    status["future_sets_fix"] = future_sets.refusal(profile, futures) or None
    # a newest chain without signatures: remove-older-than would delete it, so retention refuses
    status["unprotected_newest"] = _unprotected_newest(profile, chain_list, listings)
    status["backup_refused"] = _backup_refused(profile) if readable else []
    state_dir = run.config.state_dir
    for outcome in ("success", "failure"):
        if outcome == "success":
            # a backup whose retention failed afterwards is at the target all the same
            row = history.last(state_dir, profile.name, "backup", "success", "retention_failed")
        else:
            rows = [
                r
                for r in history.runs(state_dir, profile.name, limit=200)
                if r["action"] == "backup"
                and r["result"] not in ("success", None)
                and not r["stats"].get("dry_run")
            ]
            row = rows[0] if rows else None
        status[f"last_{outcome}"] = (
            {
                "at": row["finished"] or row["started"],
                "exit_code": row["exit_code"],
                "message": row["message"],
            }
            if row
            else None
        )
    status["last_checks"] = last_checks(state_dir, profile.name)
    verdicts = last_checks(state_dir, profile.name, conclusive=True)
    damage = _damage_found(verdicts)
    status["damage_found_by"] = damage
    if damage and verdicts[damage] != status["last_checks"][damage]:
        status["damage_found"] = verdicts[damage]  # a newer run of it was interrupted
    status["broken"] = status["broken"] or damage is not None
    if swift_target(profile.target) is not None:
        try:
            conn = swift.connect(profile)
            status["remote"] = swift_usage.container_stats(profile, conn)
            # the account's own totals move only when Swift's container-updater runs (minutes
            # later): the sum of the containers' figures is current
            status["remote"]["account"] = swift_usage.account_usage(profile, conn)
        except CfbackupError as error:
            status["remote"] = {"error": error.message}
    status["plugin_warnings"] = [
        line for lines in run.hooks.cfbackup_status(run=run) for line in lines or []
    ]
    return RunResult(
        profile=profile.name, action="status", data=status, message=f"status of {profile.name}"
    )


def _prepare(run: Run, readable: bool) -> dict[str, str]:
    """What status needs before it reads the target. A swift:// or file:// target it reads
    itself, object names and the archive dir's plain manifests, never decrypting anything: no
    passphrase nor key is needed (on a new machine before its passphrase file is back), only
    the Swift credentials, checked now. Another target's duplicity needs them all."""
    if not readable:
        return prepare(run, keep_manifests=False)  # no duplicity sync
    profile = run.profile
    if swift_target(profile.target) is not None:
        swift_environment(profile)  # a missing Swift secret: its sentence, before any request
    profile.archive_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return {}


def _backup_refused(profile: Profile) -> list[str]:
    """Why the next backup will be refused before it starts, one sentence per check: the
    encryption passphrase and the keys it encrypts and signs with, as its ``prepare`` checks
    them. status reads without them (:func:`_prepare`), but must not look healthy while the
    nightly backup cannot run. (A target only duplicity reads: ``prepare`` already refused.)"""
    found = []
    for check in (_passphrase_readable, gpgkeys.check_keys):
        try:
            check(profile)
        except CfbackupError as error:
            found.append(error.message)
    return found


def _passphrase_readable(profile: Profile) -> None:
    """``encryption_environment``'s refusals, but a ``passphrase_command`` is never run (only
    its program looked for): status, which monitoring calls every few minutes, needs no
    passphrase, and the command may ask gpg-agent (``pass show``), be audited (a vault read)
    or prompt."""
    enc = profile["encryption"]
    given = any(enc.get(f"passphrase{kind}") for kind in ("", "_env", "_file"))
    if enc["mode"] == "none" or given or not enc.get("passphrase_command"):
        encryption_environment(profile)
        return
    where = f"profiles.{profile.name}.encryption.passphrase_command"
    secrets.check_secret_command(enc["passphrase_command"], where)


def _collection(chain: chains.Chain, *, text: bool = False) -> dict:
    """One chain's collection status, read from its target and archive dir (no duplicity);
    with ``text``, also what duplicity's collection-status prints for it (its lines)."""
    store = stores.open_store(chain.profile)
    folder = chain.profile.archive_dir / chain.profile.backup_name
    from duplicity import dup_time

    listing = store.list()  # one listing for both views: a backup may be running beside
    naming = names.of(chain.profile)
    read = collection.read(listing, folder, naming=naming)
    found = collection.summary(read)
    if text:
        found["text"] = legacy_text.collection_status(read, folder)
    found["listing"] = list(listing)
    found["lost_manifests"] = [
        {"type": s.kind, "time": dup_time.timetostring(s.end), "volumes": len(s.volumes)}
        for s in volumes.lost_manifests(
            volumes.backup_sets(store, naming=naming, chain=chain.slug, listing=listing)
        )
    ]
    return found


def _unprotected_newest(profile: Profile, chain_list, listings: dict) -> list[str]:
    """Why retention refuses to run ``remove-older-than`` on each chain whose newest chain has
    no signatures (``retention.unprotected_newest``, as ``prune`` and a backup's retention
    refuse), from the listings status already made; none when no such rule runs."""
    if retention.keeps_all(profile):
        return []
    rules = commands.retention_rules(profile)
    return [
        why
        for chain in chain_list
        if chain.label in listings
        and (
            why := retention.unprotected_newest(
                chain.profile, rules, listings[chain.label], chain.label if chain.root else ""
            )
        )
    ]


def _lost_roots(run: Run, chain_list, parts: list[dict]) -> list[str]:
    """split_chains: the include roots whose chain has no backup set at the target though the
    run history shows them backed up (``roots_without_backup``, which every check fails on):
    their chain was removed, and a restore of them fails. A root added since the last backup
    has no chain yet, and is none of them."""
    if not chains.is_split(run.profile):
        return []
    empty = [
        chain.label
        for chain, part in zip(chain_list, parts, strict=True)
        if not any(found["sets"] for found in part["chains"])
    ]
    if not empty:
        return []
    ever = backed_up_roots(run)
    return [label for label in empty if label in ever]


def _missing_volumes(profile: Profile, collection: dict) -> list[dict]:
    """Sets with fewer volumes at the target than their manifest lists: a volume deleted behind
    cfbackup's back, which duplicity's collection-status does not notice (it counts the volumes
    it sees). The manifests are the copies duplicity keeps in the archive dir; a set whose
    manifest is not there is not checked."""
    from duplicity import dup_time

    folder = profile.archive_dir / profile.backup_name
    try:
        local = sorted(os.listdir(folder))
    except OSError:
        local = []
    manifests = {  # the archive dir's plain copies, by (type, end time)
        (found.type, found.time or found.end_time): folder / name
        for name, found in names.of(profile).parsed(local)
        if found.manifest and not found.partial and name.endswith(".manifest")
    }
    missing = []
    for chain in collection["chains"]:
        for backup_set in chain["sets"]:
            time, present = backup_set["time"], backup_set["volumes"]
            manifest = manifests.get((backup_set["type"], dup_time.stringtotime(time)))
            if manifest is None or present is None:
                continue
            try:
                expected = len(set(VOLUME_LINE.findall(manifest.read_bytes())))
            except OSError:
                continue
            if present < expected:
                missing.append(
                    {
                        "type": backup_set["type"],
                        "time": time,
                        "volumes": present,
                        "expected": expected,
                    }
                )
    return missing


VOLUME_LINE = re.compile(rb"^Volume (\d+):", re.M)  # a resumed set may list one twice


CHECKS = ("verify", "read_data", "drill", "drill_from_nothing")  # as status names them


def last_checks(state_dir, profile: str, *, conclusive: bool = False) -> dict[str, dict | None]:
    """The newest finished run of each check (``verify``, ``verify --read-data``, ``drill``,
    ``drill --from-nothing``): its result, time, exit code, message and what it found. With
    ``conclusive``, the newest that passed or found damage: one interrupted, or failed for
    another cause (Swift down), says nothing of the backup."""
    found: dict[str, dict | None] = dict.fromkeys(CHECKS)
    for row in history.runs(state_dir, profile, limit=1000, actions=("verify", "drill")):
        if row["result"] is None:
            continue  # running, or killed before it recorded an outcome
        if row["exit_code"] == ExitCode.USAGE:
            continue  # refused for its command line (--kit without --from-nothing): no check
        stats = row["stats"] or {}
        if row["action"] == "verify":  # the runner records the kind (Run.marks) from the start
            kind = "read_data" if "read_data" in stats else "verify"
        else:
            kind = "drill_from_nothing" if stats.get("from_nothing") else "drill"
        # a plain verify's differences are the source's changes, not damage; a split root
        # whose chain vanished from the target is
        damage = bool(stats.get("lost_roots")) if kind == "verify" else _damaged(stats)
        if conclusive and not damage and row["result"] != "success":
            continue
        if found[kind] is None:
            found[kind] = {
                "result": row["result"],
                "at": row["finished"] or row["started"],
                "exit_code": row["exit_code"],
                "message": row["message"],
                "damage": damage,
            }
        if all(found.values()):
            break
    return found


def _damaged(stats: dict) -> bool:
    """A check's statistics say the backup is damaged (not merely a changed source file)."""
    return bool(
        stats.get("bad_volumes")
        or stats.get("lost_roots")
        or stats.get("mismatches")
        or stats.get("failures")
    )


def _damage_found(checks: dict[str, dict | None]) -> str | None:
    """The check whose newest run is the newest of them, when that run found damage: the
    profile is broken until a check passes again. A plain verify counts only when it found a
    split root's chain gone: its passing says nothing of the volumes."""
    runs = [(kind, c) for kind, c in checks.items() if c and (kind != "verify" or c["damage"])]
    if not runs:
        return None
    kind, newest = max(runs, key=lambda item: item[1]["at"])
    return kind if newest["damage"] else None
