"""Command handlers: pick profiles, run the action for each, print, return the exit code."""

from __future__ import annotations

import os
import time
import tomllib
from pathlib import Path

from cfbackup import progress, suggest
from cfbackup.cli import output
from cfbackup.errors import ExitCode

ACTIONS = {  # command -> (module in cfbackup.actions, function)
    "backup": ("backup", "run_backup"),
    "verify": ("verify", "run_verify"),
    "drill": ("drill", "run_drill"),
    "restore": ("restore", "run_restore"),
    "list": ("listing", "run_list"),
    "status": ("status", "run_status"),
    "prune": ("maintenance", "run_prune"),
    "cleanup": ("maintenance", "run_cleanup"),
    "check": ("check", "run_check"),
}


def _action(name: str):
    """The function of one action, importing only its module: importing all of them cost every
    run 0.14-0.22 s (measured under load), which a nightly backup does not need."""
    import importlib

    module, function = ACTIONS[name]
    return getattr(importlib.import_module(f"cfbackup.actions.{module}"), function)


PRINTERS = {}


def profile_action(name: str, *, many: bool = False, take_lock: bool = True, printer=None):
    """A handler running action ``name`` for the profile(s) named on the command line; each
    result printed by ``printer(result, args)`` (default: the action's own printer)."""

    def handler(args, context) -> int:
        from cfbackup.runner import execute_run

        config = context.config
        names = args.profiles if many else [args.profile] if args.profile else []
        profiles = config.select(names) if many else [config.profile(args.profile)]
        del names
        action = _action(name)
        options = {k: v for k, v in vars(args).items() if k not in ("handler",)}
        if options.get("time"):  # a typo is a usage error before any run, hook or lock
            from cfbackup.actions.common import parse_time

            options["when"] = parse_time(options["time"])
        results = []
        for profile in profiles:
            quiet = getattr(args, "quiet", False)
            with progress.reporting(name, profile.name, quiet=quiet) as options["progress"]:
                result = execute_run(
                    config,
                    profile,
                    name,
                    options,
                    context.plugin_manager,
                    action,
                    take_lock=take_lock,
                )
            results.append(result)
            (printer or PRINTERS.get(name, _print_plain))(result, args)
            if result.exit_code == ExitCode.INTERRUPTED:  # Ctrl-C or SIGTERM stops them all,
                break  # not this profile's run alone (systemd would kill the next one)
        failed = [r for r in results if not r.ok]
        return int(failed[0].exit_code) if failed else int(ExitCode.OK)

    return handler


def _print_plain(result, args) -> None:
    output.print_result(result)


def _print_list(result, args) -> None:
    if not result.ok:
        return output.print_result(result)
    if args.json:
        return output.print_json(result.data)
    for entry in result.data:
        shown = entry.get("path_shell", entry["path"])  # pasted back, restore --path gets it
        output.info(f"{entry['time']}  {entry['type']:<4} {shown}")


def _print_status(result, args) -> None:
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
    if s.get("future_sets_fix"):  # a clock that was ahead (future_sets.py)
        output.info(f"  REFUSED: backups and retention refuse to run: {s['future_sets_fix']}")
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


def _print_check(result, args) -> None:
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


def _print_drill(result, args) -> None:
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


def _print_prune(result, args) -> None:
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


PRINTERS.update(
    list=_print_list,
    status=_print_status,
    check=_print_check,
    drill=_print_drill,
    prune=_print_prune,
)


def show_history(args, context) -> int:
    from cfbackup import history

    rows = history.runs(context.config.state_dir, args.profile, limit=args.limit)
    if args.json:
        output.print_json(rows)
        return 0
    for row in rows:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["started"]))
        duration = f"{row['finished'] - row['started']:.1f}s" if row["finished"] else "running"
        output.info(
            f"{started}  {row['profile']:<16} {row['action']:<8} "
            f"{row['result'] or '-':<10} {duration:>8}  {row['message'] or ''}"
        )
    return 0


def config_migrate(args, context) -> int:
    """Print (or write, mode 0600) the native config of a legacy file. Every variable it set is
    in the result or named in a warning; the encryption is checked to come out as the
    legacy file gives it, so a migrated config never starts a differently encrypted chain."""
    import tomli_w

    from cfbackup.config import file_target, legacy
    from cfbackup.config.load import build_config, read_raw
    from cfbackup.config.schema import with_plugin_sections
    from cfbackup.errors import ConfigError

    path = Path(args.file).expanduser()
    raw, kind, warnings = read_raw(path)
    if kind != "legacy":
        raise ConfigError(f"{path}: is already a native config; nothing to migrate.")
    migrated = []  # a relative DEST: the absolute folder the legacy runs from cron used
    for body in raw["profiles"].values():
        if isinstance(body.get("target"), str) and (
            absolute := file_target.legacy_migrated(body["target"])
        ):
            body["target"], said = absolute
            migrated.append(said)
    sections = context.plugin_sections()
    before = build_config(raw, path=None, kind=kind, plugin_sections=sections)
    warnings = migrated + [w for w in before.warnings if w not in warnings] + warnings
    known = {option.name for option in with_plugin_sections(sections)}  # a plugin switched off
    raw["profiles"] = {
        name: {k: v for k, v in body.items() if k in known}
        for name, body in raw["profiles"].items()
    }
    notes = legacy.read_file(path).notes()
    if not args.output:  # never print a secret: point at environment variables instead
        raw, moved = move_secrets_to_env(raw)
        for variable, key in moved:
            output.warn(
                f"{key} is read from ${variable} in the printed config: export it, or "
                "use -o FILE to write the secret into a mode 0600 file"
            )
        raw, stripped = strip_proxy_passwords(raw)
        for name in stripped:
            output.warn(
                f"environment.{name}: the proxy password is left out of the printed config: "
                "put it back into the URL in the config file (chmod 600 it), set "
                f"{name} in the environment cfbackup runs in, or use -o FILE to write it "
                "into a mode 0600 file"
            )
    body = tomli_w.dumps(raw)
    after = build_config(tomllib.loads(body), path=None, plugin_sections=sections)
    for name, profile in before.profiles.items():
        if _encryption(profile) != _encryption(after.profiles[name]):
            raise ConfigError(  # a bug, never a user's mistake: say so rather than write it
                f"{path}: the migrated config would encrypt differently from the legacy file; "
                "nothing was written: report this with the file's variables (not their values)."
            )
    text = (
        f"# cfbackup config migrated from {path}\n"
        + "".join(f"# warning: {w}\n" for w in warnings)
        + "".join(f"# note: {n}\n" for n in notes)
        + "\n"
        + body
    )
    for warning in warnings:
        output.warn(warning)
    for note in notes:
        output.warn(f"note: {note}")
    if args.output:
        fd = _open_private(Path(args.output))
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        output.info(f"wrote {args.output} (mode 0600: it may hold secrets)")
    else:
        output.emit(text, end="")
    return 0


def _open_private(path: Path) -> int:
    """``path`` opened for writing, mode 0600; a missing folder is made (mode 0700), as on a
    new machine where ``~/.config/cfbackup`` does not exist yet."""
    from cfbackup.errors import CfbackupError

    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as error:
        raise CfbackupError(
            f"cannot write {path} ({error.strerror}): give -o a file in a folder you can write.",
            exit_code=ExitCode.USAGE,
        ) from None


def _encryption(profile) -> tuple:
    enc = profile["encryption"]
    return enc["mode"], tuple(enc["encrypt_keys"]), enc.get("sign_key"), enc.get("gpg_options")


def strip_proxy_passwords(raw: dict) -> tuple[dict, list[str]]:
    """``raw`` with the password taken out of each [environment] proxy URL
    (``http://user:pw@proxy:3128`` becomes ``http://user@proxy:3128``), and the names of the
    variables it was taken from: a printed config never holds it."""
    import copy
    import urllib.parse

    from cfbackup import redact

    raw = copy.deepcopy(raw)
    stripped = []
    environment = raw.get("environment") or {}
    for name, value in environment.items():
        if not isinstance(value, str) or "@" not in value:
            continue
        try:
            url = urllib.parse.urlsplit(value)
            password = url.password
        except ValueError:  # not a URL cfbackup reads a password from
            continue
        if password:
            redact.register(password)
            user = url.username or ""
            host = url.netloc.rpartition("@")[2]
            environment[name] = urllib.parse.urlunsplit(url._replace(netloc=f"{user}@{host}"))
            stripped.append(name)
    return raw, stripped


def move_secrets_to_env(raw: dict) -> tuple[dict, list[tuple[str, str]]]:
    """Replace inline secrets with ``*_env`` keys naming CFBACKUP_* variables."""
    import copy

    raw = copy.deepcopy(raw)
    moved = []
    for name, profile in raw.get("profiles", {}).items():
        for section, key in (("encryption", "passphrase"), ("swift", "password")):
            table = profile.get(section, {})
            if table.get(key):
                variable = f"CFBACKUP_{section.upper()}_{key.upper()}"
                del table[key]
                table[f"{key}_env"] = variable
                moved.append((variable, f"profiles.{name}.{section}.{key}"))
    return raw, moved


def config_reference(args, context) -> int:
    from cfbackup.config.reference import render_reference

    output.emit(render_reference(context.plugin_sections()), end="")
    return 0


def recovery_kit(args, context) -> int:
    from cfbackup.cli.recovery import export_recovery_kit

    return export_recovery_kit(args, context)


def recovery_kit_import(args, context) -> int:
    from cfbackup.cli.recovery import import_recovery_kit

    return import_recovery_kit(args, context)


def list_plugins(args, context) -> int:
    from cfbackup.plugins import describe_plugins

    rows = describe_plugins(context.plugin_manager)
    if args.json:
        output.print_json(rows)
        return 0
    for row in rows:
        output.info(
            f"{row['name']} {row['version'] or ''} ({row['module']}): "
            + ", ".join(h.removeprefix("cfbackup_") for h in row["hooks"])
        )
    return 0
