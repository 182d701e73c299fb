"""The decision: does the next backup fit in the container's and the account's quotas?

``assess`` gathers the facts (Swift usage and quotas, /info, the estimate); ``evaluate`` is a
pure function from those facts to checks, so the arithmetic is tested without a Swift.
Swift's rule is inclusive: an upload is refused when ``used + length > quota``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any

from cfbackup import next_backup, selection, suggest, volume_size
from cfbackup.duplicity import names
from cfbackup_quota_guard import estimate

log = logging.getLogger("cfbackup.quota_guard")
MIB = 1024 * 1024


def human(n: int | float | None) -> str:
    if n is None:
        return "none"
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


@dataclasses.dataclass
class Check:
    """One quota against usage plus the upcoming upload."""

    scope: str  # "container", "account" or "policy NAME"
    name: str  # container name, storage URL or policy name
    unit: str  # "bytes" or "objects"
    used: int
    adding: int
    quota: int
    enforced: bool | None  # the middleware is on (/info), None when /info is unavailable

    @property
    def after(self) -> int:
        return self.used + self.adding

    @property
    def exceeded(self) -> bool:
        return self.after > self.quota

    @property
    def percent(self) -> float:
        return 100.0 * self.after / self.quota if self.quota else math.inf

    def describe(self) -> str:
        if self.unit == "bytes":
            values = (self.used, self.adding, self.after, self.quota)
            used, adding, after, quota = (human(v) for v in values)
        else:
            used, adding, after, quota = (
                f"{v} objects" for v in (self.used, self.adding, self.after, self.quota)
            )
        compare = f"{'>' if self.exceeded else '<='} quota {quota} ({self.percent:.0f}%)"
        if not self.adding:  # usage alone (cfbackup check)
            return f"{self.scope} {self.name}: {used} used {compare}"
        return f"{self.scope} {self.name}: {used} used + up to {adding} = {after} {compare}"

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(after=self.after, exceeded=self.exceeded, percent=round(self.percent, 1))
        return data


def evaluate(
    container: dict[str, Any],
    account: dict[str, Any] | None,
    info: dict[str, Any] | None,
    upload_bytes: int,
    upload_objects: int,
) -> list[Check]:
    """Every quota that is set, with what this backup adds to it."""
    container_on = None if info is None else "container_quotas" in info
    account_on = None if info is None else "account_quotas" in info
    checks = []
    for unit, used_key, quota_key, adding in (
        ("bytes", "bytes_used", "quota_bytes", upload_bytes),
        ("objects", "object_count", "quota_count", upload_objects),
    ):
        if container.get(quota_key) is not None:
            checks.append(
                Check("container", container["container"], unit, int(container[used_key]),
                      adding, int(container[quota_key]), container_on)
            )  # fmt: skip
    if account is None:
        return checks
    for unit, used_key, quota_key, adding in (
        ("bytes", "bytes_used_current", "quota_bytes", upload_bytes),
        ("objects", "object_count_current", "quota_count", upload_objects),
    ):
        if account.get(quota_key) is not None:
            used = account.get(used_key, account.get(used_key.replace("_current", ""), 0))
            checks.append(
                Check("account", account.get("storage_url") or "", unit, int(used), adding,
                      int(account[quota_key]), account_on)
            )  # fmt: skip
    policy = container.get("storage_policy")
    for name, entry in (account.get("policy_quotas") or {}).items():
        if policy is None or name.lower() != policy.lower():
            continue
        for unit, used_key, quota_key, adding in (
            ("bytes", "bytes_used", "quota_bytes", upload_bytes),
            ("objects", "object_count", "quota_count", upload_objects),
        ):
            if entry.get(quota_key) is not None:
                checks.append(
                    Check(f"policy {name} of account", account.get("storage_url") or "", unit,
                          int(entry.get(used_key) or 0), adding, int(entry[quota_key]), account_on)
                )  # fmt: skip
    return checks


@dataclasses.dataclass
class Assessment:
    profile: str
    plan: next_backup.Plan
    estimate: estimate.Estimate
    upload_bytes: int  # the estimate less what an interrupted set already uploaded
    upload_objects: int
    container: dict[str, Any]
    account: dict[str, Any] | None
    info: dict[str, Any] | None
    checks: list[Check]
    warn_percent: int

    @property
    def refused(self) -> list[Check]:
        return [c for c in self.checks if c.exceeded and c.enforced is not False]

    @property
    def unenforced(self) -> list[Check]:
        return [c for c in self.checks if c.exceeded and c.enforced is False]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if not c.exceeded and c.percent >= self.warn_percent]

    def summary(self) -> str:
        e = self.estimate
        text = (
            f"{self.plan.kind} backup ({self.plan.reason}): up to {human(self.upload_bytes)} in "
            f"{self.upload_objects} objects ({e.changed} of {e.entries} entries, "
            f"{human(e.data_bytes)} of file data, {e.volumes} volume(s); estimated in "
            f"{e.seconds:.2f} s)"
        )
        if self.plan.resume_bytes:
            text += f", {human(self.plan.resume_bytes)} already uploaded"
        return text

    def refusal(self) -> str:
        """The veto: the numbers, then the fix."""
        name = self.profile
        reasons = "; ".join(c.describe() for c in self.refused)
        fixes = []
        for check in self.refused:
            flag = "--bytes" if check.unit == "bytes" else "--count"
            need = check.after
            if check.unit == "bytes":
                need = math.ceil(need / MIB) * MIB
            if check.scope == "container":
                fixes.append(suggest.command("quota", "set", name, flag, need))
            else:
                fixes.append(
                    suggest.command("quota", "set", name, "--account", flag, need)
                    + " (as a reseller admin)"
                )
        return (
            f"quota exceeded: the {self.plan.kind} backup of {name} would not fit: {reasons}. "
            f"Raise the quota with `{'` or `'.join(dict.fromkeys(fixes))}`, or prune old backups "
            f"with `{suggest.command('prune', name)}` and check with "
            f"`{suggest.command('quota', 'show', name)}`; "
            f"`{suggest.command('backup', name, '--ignore-quota')}` runs it anyway."
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "plan": dataclasses.asdict(self.plan),
            "estimate": self.estimate.as_dict(),
            "upload_bytes": self.upload_bytes,
            "upload_objects": self.upload_objects,
            "checks": [c.as_dict() for c in self.checks],
            "refused": bool(self.refused),
            "warn_percent": self.warn_percent,
        }


def gpg_key_count(profile) -> int:
    enc = profile["encryption"]
    keys = len(enc.get("encrypt_keys") or []) if enc["mode"] == "pubkey" else 0
    return keys + (1 if enc.get("sign_key") else 0)


def previous_entries(state_dir, profile_name: str) -> int | None:
    """duplicity's SourceFiles at the last successful backup (bounds the deletions since); a
    ``--dry-run``'s count is no backup's (``history.NOT_DRY``): files deleted before it would
    drop out of the bound."""
    from cfbackup import history

    if state_dir is None:
        return None
    try:
        value = history.newest_stat(state_dir, profile_name, "backup", "SourceFiles", ("success",))
    except Exception:  # noqa: BLE001 - a missing or locked history only loses precision
        return None
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def estimate_next(profile, objects, *, force_full: bool, state_dir=None):
    """The plan and the estimate of the next backup of ``profile``."""
    from cfbackup import chains

    if chains.is_split(profile):
        return _estimate_chains(profile, objects, force_full=force_full)
    archive = profile.archive_dir / profile.backup_name
    plan = next_backup.plan_next(
        next_backup.read_sets(objects, naming=names.of(profile)),
        force_full=force_full,
        full_if_older_than=profile["full_if_older_than"],
        archive_dir=archive,
    )
    root = estimate.canonical(str(profile.source))
    try:
        selector = selection.Selector(
            root, selection.profile_rules(profile["exclude"], profile["include"])
        )
    except selection.SelectionError as error:
        from cfbackup.errors import ConfigError

        raise ConfigError(
            f"profiles.{profile.name}: {error}: fix include/exclude (duplicity refuses it too)."
        ) from None
    found = estimate.estimate(
        root,
        selector,
        volsize_mb=volume_size.planned(profile),
        since=plan.since,
        encrypted=profile["encryption"]["mode"] != "none",
        keys=gpg_key_count(profile),
        previous_entries=(
            previous_entries(state_dir, profile.name) if plan.kind == "incremental" else None
        ),
    )
    if any(o.startswith("--jsonstat") for o in profile["extra_options"]):
        found.objects += 1
        found.bytes += 64 * 1024
    found.resume_credit = plan.resume_bytes
    return plan, found


def _estimate_chains(profile, objects, *, force_full: bool):
    """A split profile's next backup: each chain's plan and estimate, added up (a full when
    any chain is due one)."""
    from cfbackup import chains

    parts = [
        (c, *estimate_next(c.profile, chains.objects_of(c, objects), force_full=force_full))
        for c in chains.of(profile)
    ]
    plans = [plan for _, plan, _ in parts]
    kind = "full" if any(p.kind == "full" for p in plans) else "incremental"
    sinces = [p.since for p in plans if p.since is not None]
    fulls = [p.last_full for p in plans if p.last_full is not None]
    plan = next_backup.Plan(
        kind=kind,
        reason="; ".join(f"/{c.root}: {p.kind} ({p.reason})" for c, p, _ in parts),
        since=min(sinces) if sinces else None,
        last_full=min(fulls) if fulls else None,
        resume_bytes=sum(p.resume_bytes for p in plans),
        resume_objects=sum(p.resume_objects for p in plans),
    )
    found = estimate.Estimate(kind=kind, since=plan.since)
    for _, _, part in parts:
        for field in dataclasses.fields(estimate.Estimate):
            if field.name not in ("kind", "since"):
                setattr(found, field.name, getattr(found, field.name) + getattr(part, field.name))
    return plan, found


@dataclasses.dataclass
class SwiftFacts:
    """What the guard reads from Swift: the target's listing, the container's and the account's
    usage and quotas, /info."""

    objects: list[dict[str, Any]]
    container: dict[str, Any]
    account: dict[str, Any] | None
    info: dict[str, Any] | None


def ask_swift(profile, settings: dict[str, Any], view=None) -> SwiftFacts:
    """Read the facts. ``view``: the run's ``swift.TargetView`` (its connection and the listing
    the passphrase check uses too). The container's HEAD, the account's listing and /info do
    not depend on each other and go out together; the account's sum reuses the container's
    HEAD. Raises BackendError when Swift cannot answer."""
    from concurrent.futures import ThreadPoolExecutor

    from cfbackup import swift, swift_usage

    with swift.swift_errors(profile):
        conn, objects = swift.target_listing(profile, view)
        sizes = [{"bytes": o["bytes"]} for o in objects]
        with ThreadPoolExecutor(max_workers=2) as pool:
            info_asked = pool.submit(swift_usage.swift_info, profile, swift.sibling(conn))
            container_asked = pool.submit(
                swift_usage.container_stats, profile, swift.sibling(conn), objects=sizes
            )
            account = (
                swift_usage.account_usage(
                    profile,
                    conn,
                    max_heads=settings.get("max_container_heads", 100),
                    known={swift.target_of(profile).container: container_asked},
                )
                if settings.get("check_account", True)
                else None
            )
            return SwiftFacts(objects, container_asked.result(), account, info_asked.result())


def assess(
    profile,
    settings: dict[str, Any],
    *,
    force_full: bool = False,
    state_dir=None,
    view=None,
    asked=None,
) -> Assessment:
    """Ask Swift (or take ``asked``, the future of :func:`ask_swift` started ahead), estimate
    the upload, compare. Raises BackendError when Swift cannot answer."""
    started = time.perf_counter()
    facts = asked.result() if asked is not None else ask_swift(profile, settings, view)
    objects, container, account, info = facts.objects, facts.container, facts.account, facts.info
    plan, found = estimate_next(profile, objects, force_full=force_full, state_dir=state_dir)
    upload_bytes = max(0, found.bytes - plan.resume_bytes)
    upload_objects = max(0, found.objects - plan.resume_objects)
    checks = evaluate(container, account, info, upload_bytes, upload_objects)
    log.debug("quota assessment took %.2f s", time.perf_counter() - started)
    return Assessment(
        profile=profile.name,
        plan=plan,
        estimate=found,
        upload_bytes=upload_bytes,
        upload_objects=upload_objects,
        container=container,
        account=account,
        info=info,
        checks=checks,
        warn_percent=int(settings.get("warn_percent", 80)),
    )
