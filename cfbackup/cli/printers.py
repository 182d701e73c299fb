"""How each action's result is printed, as text or ``--json``: the listing, the status
report, the checks, a drill's mismatches, a prune's plan; anything else by
:func:`cfbackup.cli.output.print_result`."""

from __future__ import annotations

import time

from cfbackup import suggest
from cfbackup.cli import output


def print_plain(result, args) -> None:
    output.print_result(result)


def print_list(result, args) -> None:
    if not result.ok:
        return output.print_result(result)
    if args.json:
        return output.print_json(result.data)
    for entry in result.data:
        shown = entry.get("path_shell", entry["path"])  # pasted back, restore --path gets it
        output.info(f"{entry['time']}  {entry['type']:<4} {shown}")


def print_status(result, args) -> None:
    if not result.ok:
        return output.print_result(result)
    if getattr(args, "json", False):
        return output.print_json(result.data)
    s = result.data
    output.info(f"profile {s['profile']}: {s['target']}")
    running = s.get("running")
    if running:
        since = running.get("since")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "unknown"
        output.info(
            f"  running: a {running.get('action') or 'cfbackup run'} of {s['profile']} "
            f"(PID {running.get('pid') or '?'}, since {when})"
        )
        if not running.get("chains_shown"):
            output.info(
                "  chains: not shown: duplicity reads them for this target, and the running "
                f"{running.get('action') or 'run'} holds its archive dir; run "
                f"{suggest.command('status', s['profile'])} again once it ends"
            )
    for warning in s.get("plugin_warnings", []):  # a firewall lock-down nobody lifts, ...
        output.info(f"  WARNING: {warning}")
    output.info(f"  last full:        {s['last_full'] or 'none'}")
    output.info(f"  last incremental: {s['last_incremental'] or 'none'}")
    for chain in s["chains"]:
        root = f" of {chain['root']}" if chain.get("root") else ""  # split_chains
        output.info(
            f"  chain{root} ({chain['state']}): "
            + ", ".join(f"{x['type']} {x['time']}" for x in chain["sets"])
        )
    full = suggest.command("backup", s["profile"], "--full")
    for gone in s.get("missing_volumes", []):
        output.info(
            f"  BROKEN: the {gone['type']} set of {gone['time']} has {gone['volumes']} of "
            f"{gone['expected']} volumes at the target: restore from before it "
            f"(--time), then take a full backup ({full})"
        )
    lost = s.get("lost_manifests", [])
    for gone in lost:
        root = f" of {gone['root']}" if gone.get("root") else ""
        output.info(
            f"  BROKEN: the chain{root} is broken at the {gone['type']} set of {gone['time']}: "
            "its manifest is missing at the target and newer backups follow it, so restores "
            f"from it on fail: restore from before it (--time), then take a full backup ({full})"
        )
    for root in s.get("lost_roots", []):  # split_chains: a backed-up root's chain is gone
        output.info(
            f"  BROKEN: the chain of {root} is gone from the target though the run history "
            f"shows it was backed up: a restore of {root} fails: run "
            f"{suggest.command('backup', s['profile'])} to start a new chain for it, and find "
            "out what removed it"
        )
    if s.get("future_sets_fix"):  # a clock that was ahead (future_sets.py)
        output.info(f"  REFUSED: backups and retention refuse to run: {s['future_sets_fix']}")
    for why in s.get("backup_refused") or []:  # no passphrase, a key not in the keyring
        output.info(f"  REFUSED: the next backup will be refused: {why}")
    for why in s.get("unprotected_newest") or []:  # no signatures (retention.py)
        output.info(f"  REFUSED: remove-older-than retention refuses to run: {why}")
    checks = s.get("last_checks") or {}
    damage = s.get("damage_found_by")
    if damage and s.get("damage_found"):  # the newest run of that check did not finish
        found = s["damage_found"]
        output.info(
            f"  BROKEN: the newest check that finished, {CHECK_NAMES[damage]} of "
            f"{_local(found['at'])}, found damage: {found['message']}"
        )
    elif damage:
        found = checks[damage]
        output.info(
            f"  BROKEN: the newest check, {CHECK_NAMES[damage]} of {_local(found['at'])}, found "
            "damage: its line below names it and the fix"
        )
    interrupted = s["incomplete_sets"] - len(lost)  # duplicity counts lost manifests as well
    if s["orphaned_sets"]:
        output.info(
            f"  BROKEN: orphaned sets {s['orphaned_sets']}: run "
            f"{suggest.command('cleanup', s['profile'])}, then {full}"
        )
    elif interrupted > 0:
        output.info(
            f"  incomplete sets {interrupted} (an interrupted backup): the next backup resumes it"
        )
    for outcome in ("success", "failure"):
        last = s.get(f"last_{outcome}")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["at"])) if last else "never"
        said = ""
        if last and outcome == "failure":
            said = f" ({last['message']})"
        elif last and (warned := _warnings_of(last.get("message") or "")):
            said = f" ({warned})"  # a success with warnings: retention unconfirmed, a loose file
        output.info(f"  last {outcome}: {when}{said}")
    for kind, name in CHECK_NAMES.items():
        if kind not in checks:
            continue  # an older cfbackup's status
        found = checks[kind]
        output.info(
            f"  last {name}: "
            + (
                f"{found['result']}, {_local(found['at'])}: {found['message']}"
                if found
                else "never"
            )
        )
    remote = s.get("remote")
    if remote:
        if "error" in remote:
            output.info(f"  remote: {remote['error']}")
        else:
            output.info(
                f"  remote: container {remote['container']}: "
                + _quota_use(remote["bytes_used"], remote["object_count"], remote)
            )
            if remote.get("prefix"):
                output.info(
                    f"  prefix {remote['prefix']}: {remote['prefix_bytes']} bytes in "
                    f"{remote['prefix_objects']} objects"
                )
            account = remote.get("account")
            if account:
                used = account.get("bytes_used_current", account["bytes_used"])
                count = account.get("object_count_current", account["object_count"])
                lag = ""
                if used != account["bytes_used"] or count != account["object_count"]:
                    lag = (
                        f" (Swift's own account total still says {account['bytes_used']} bytes "
                        f"in {account['object_count']} objects: it lags by minutes)"
                    )
                if not account.get("current_exact", True):
                    lag += " (more than 100 containers: partly Swift's lagging totals)"
                output.info("  account: " + _quota_use(used, count, account) + lag)


CHECK_NAMES = {
    "verify": "verify",
    "read_data": "verify --read-data",
    "drill": "drill",
    "drill_from_nothing": "drill --from-nothing",
}


def _warnings_of(message: str) -> str:
    """The warnings the history keeps with a run's message (``runner._with_warning``: "MESSAGE
    (warning: A; warning: B)"), or ""."""
    if message.startswith("warning: "):
        return message
    at = message.find(" (warning: ")
    return message[at + 2 : -1] if at >= 0 and message.endswith(")") else ""


def _local(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


def _quota_use(used: int, count: int, stats: dict) -> str:
    """``N bytes in M objects`` and each quota that is set, with the percentage used."""
    text = f"{used} bytes in {count} objects"
    quotas = [
        f"{value} {unit} ({100 * have / value:.0f}% used)" if value else f"{value} {unit}"
        for value, have, unit in (
            (stats.get("quota_bytes"), used, "bytes"),
            (stats.get("quota_count"), count, "objects"),
        )
        if value is not None
    ]
    return text + (", quota " + " and ".join(quotas) if quotas else ", no quota")


def print_check(result, args) -> None:
    if getattr(args, "json", False):
        return output.print_json(
            {
                "profile": result.profile,
                "ok": result.ok,
                "checks": [
                    {"what": w, "ok": ok is not False, "note": ok is None, "detail": d}
                    for w, ok, d in result.data or []
                ],
            }
        )
    if result.data is None:
        return output.print_result(result)
    output.info(f"profile {result.profile}:")
    for what, ok, detail in result.data:
        mark = "note" if ok is None else "ok" if ok else "FAIL"
        output.info(f"  [{mark}] {what}: {detail}")
    output.print_result(result)


def print_drill(result, args) -> None:
    """The summary, then every file that did not match (the history keeps the first 100)."""
    report = result.data
    if getattr(args, "json", False):
        import dataclasses

        return output.print_json(
            {
                "profile": result.profile,
                "ok": result.ok,
                "exit_code": int(result.exit_code),
                "message": result.message,
                "stats": result.stats,
                "files": [dataclasses.asdict(f) for f in report.files] if report else [],
            }
        )
    if report is not None:
        skipped: dict[str, int] = {}
        for item in report.files:
            if item.status == "skipped":
                skipped[item.reason] = skipped.get(item.reason, 0) + 1
            elif item.status != "match":
                output.info(f"  {item.status.upper()} {item.describe()}")
        for reason, count in skipped.items():
            output.info(f"  SKIPPED {count} file(s): {reason}")
    output.print_result(result)


def print_prune(result, args) -> None:
    """A dry run's plan (``prune --dry-run``), each set it would remove, then the summary."""
    if not result.ok or not result.data:
        if getattr(args, "json", False) and result.ok:
            return output.print_json(
                {"profile": result.profile, "dry_run": False, "message": result.message}
            )
        return output.print_result(result)
    if getattr(args, "json", False):
        return output.print_json(result.data)
    from cfbackup.actions.maintenance import prune_plan_lines

    output.info(f"profile {result.profile}:")
    for line in prune_plan_lines(result.data):
        output.info(f"  {line}")
    output.print_result(result)


PRINTERS = {  # command -> its printer (print_plain for the others)
    "list": print_list,
    "status": print_status,
    "check": print_check,
    "drill": print_drill,
    "prune": print_prune,
}
