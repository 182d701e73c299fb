"""Command handlers: pick profiles, run the action for each, print, return the exit code."""

from __future__ import annotations

import os
import time
import tomllib
from pathlib import Path

from cfbackup import progress
from cfbackup.cli import output
from cfbackup.cli.printers import PRINTERS, print_plain
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
            (printer or PRINTERS.get(name, print_plain))(result, args)
            if result.exit_code == ExitCode.INTERRUPTED:  # Ctrl-C or SIGTERM stops them all,
                break  # not this profile's run alone (systemd would kill the next one)
        failed = [r for r in results if not r.ok]
        return int(failed[0].exit_code) if failed else int(ExitCode.OK)

    return handler


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
