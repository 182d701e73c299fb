"""``cfbackup firewall``: lock-down by hand, status, and the seed firewall, here or over SSH.

Works without a config file (defaults, state in /var/lib/cfbackup); with one, the settings come
from a profile's ``[firewall_lockdown]`` section (``--profile`` when there are several) and the
state lives in the config's ``state_dir``. With ``-s NAMES`` the servers come from the cloud
(``--cloud``, or the profile's) and the inventory (:mod:`selection`); the plan is printed before
anything runs, and ``--dry-run`` stops there.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path
from typing import Any

from cfbackup import suggest
from cfbackup.errors import ConfigError, ExitCode
from cfbackup_firewall_lockdown import backends, lift, lockdown, seed
from cfbackup_firewall_lockdown.record import read_record
from cfbackup_firewall_lockdown.settings import BACKENDS, SECTION, Settings, settings_from_section

SEED_VERBS = ("enable", "disable", "allow", "disallow", "deny")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "firewall",
        help="lock the firewall down by hand, show its state, manage the seed firewall",
        description="Lock-down (as around a restore) and the seed firewall (base policy), on "
        "this host or, with -s, on the cloud's and the inventory's servers over SSH. Needs root.",
    )
    p.add_argument("--profile", metavar="NAME",
                   help="profile whose [firewall_lockdown] settings apply (when several)")
    p.add_argument("--backend", choices=BACKENDS, help="firewall tool (default: from the "
                   "config, else auto: nft when installed, else iptables)")
    p.add_argument("-s", "--servers", metavar="NAMES",
                   help='run OPERATION over SSH on the servers whose names contain one of '
                   'these words, e.g. -s "web db"')
    p.add_argument("--exact", action="store_true",
                   help="with -s: names must equal one of the words")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--cloud", metavar="NAME",
                        help="with -s: list the servers of this clouds.yaml entry (default: the "
                        "cloud of the profile, as server parking uses it)")
    source.add_argument("--no-cloud", action="store_true",
                        help="with -s: only the inventory, even when the profile names a cloud")
    p.add_argument("--network", metavar="NAME",
                   help="with -s: reach cloud servers at their address on this network "
                   "(default: access IPv4, else the first fixed address)")
    p.add_argument("--inventory", metavar="FILE",
                   help="servers for -s, and the SSH settings of the cloud's (default "
                   "$CFBACKUP_INVENTORY or /etc/cfbackup/inventory.toml)")
    p.add_argument("--dry-run", action="store_true",
                   help="with -s: print the servers and addresses chosen, change nothing")
    p.add_argument("--parallel", type=int, default=8, metavar="N",
                   help="servers handled at once with -s (default 8)")
    p.add_argument("--ssh-timeout", type=float, default=120, metavar="S",
                   help="seconds one server may take with -s (default 120)")
    ops = p.add_subparsers(dest="firewall_op", metavar="OPERATION", required=True)
    o = ops.add_parser("status", help="is a lock-down in force, since when; the seed firewall")
    o.add_argument("--json", action="store_true")
    o = ops.add_parser("lock", help="lock the firewall down until unlock or the timeout")
    o.add_argument("--timeout", type=int, metavar="S",
                   help="the dead-man lifts it after S seconds (default deadman_timeout; "
                   "0: only cfbackup firewall unlock lifts it)")
    o = ops.add_parser("unlock", help="lift the lock-down, restoring the saved ruleset")
    o.add_argument("--reload-saved", action="store_true",
                   help="also load the whole saved ruleset back (undoing other changes made "
                   "during the lock-down)")
    ops.add_parser("enable", help="turn the seed firewall on (drop inbound except what is "
                   "allowed, SSH from the management networks)")
    ops.add_parser("disable", help="turn the seed firewall off (its lists are kept)")
    for verb, text in (("allow", "allow a port or a network in the seed firewall"),
                       ("disallow", "remove an allowed port or network"),
                       ("deny", "alias of disallow (fw-control.py's verb)")):
        o = ops.add_parser(verb, help=text)
        o.add_argument("what", choices=("port", "network"))
        o.add_argument("value", metavar="VALUE", help="port: 80, 53/udp, 60000-61000/udp; "
                       "network: CIDR such as 10.0.0.0/8")
    p.set_defaults(handler=handle)


def operation_argv(args: argparse.Namespace) -> list[str]:
    """The operation as words, for the remote ``cfbackup firewall`` command."""
    argv = []
    if args.profile:
        argv += ["--profile", args.profile]
    if args.backend:
        argv += ["--backend", args.backend]
    argv.append(args.firewall_op)
    if args.firewall_op == "status" and args.json:
        argv.append("--json")
    if args.firewall_op == "lock" and args.timeout is not None:
        argv += ["--timeout", str(args.timeout)]
    if args.firewall_op == "unlock" and args.reload_saved:
        argv.append("--reload-saved")
    if args.firewall_op in ("allow", "disallow", "deny"):
        argv += [args.what, args.value]
    return argv


def handle(args: argparse.Namespace, context: Any) -> int:
    from cfbackup.cli import output

    if args.servers:
        return _handle_remote(args, context, output)
    given = [flag for flag, value in (("--exact", args.exact), ("--cloud", args.cloud),
                                      ("--no-cloud", args.no_cloud), ("--network", args.network),
                                      ("--dry-run", args.dry_run)) if value]
    if given:
        verb, it = ("applies", "it") if len(given) == 1 else ("apply", "them")
        raise ConfigError(f"{', '.join(given)} {verb} only with -s NAMES (servers over SSH): add "
                          f"-s, or leave {it} out to act on this host.", exit_code=ExitCode.USAGE)
    lockdown.require_admin(f"cfbackup firewall {args.firewall_op}",
                           verb="reads" if args.firewall_op == "status" else "changes")
    settings, state_dir = local_settings(args, context)
    op = args.firewall_op
    if op == "status":
        return _status(settings, state_dir, args, output)
    if op == "unlock":
        return _unlock(settings, state_dir, args, output)
    backend = backends.detect(settings.backend)
    if op == "lock":
        return _lock(settings, backend, state_dir, args, output)
    verb = "disallow" if op == "deny" else op
    output.info(seed.change(backend, settings, state_dir, verb, getattr(args, "what", None),
                            getattr(args, "value", None)))
    return int(ExitCode.OK)


def local_settings(args: argparse.Namespace, context: Any) -> tuple[Settings, Path]:
    """Settings and state dir from the config when there is one, else the defaults."""
    config = _config_or_none(args, context)
    if config is None:
        settings, state_dir = settings_from_section(None), lockdown.DEFAULT_STATE_DIR
    else:
        state_dir = config.state_dir
        # status and unlock find the lock-down without settings: no need to pick a profile
        profile = _pick_profile(config, args.profile,
                                required=args.firewall_op not in ("status", "unlock"))
        where = f"{config.path}: profiles.{profile.name}.{SECTION}" if profile else SECTION
        settings = settings_from_section(profile.plugin_config(SECTION) if profile else None,
                                         where)
    if args.backend:
        settings = dataclasses.replace(settings, backend=args.backend)
    return settings, state_dir


def _config_or_none(args: argparse.Namespace, context: Any):
    from cfbackup.config.load import find_config

    if getattr(args, "config", None) or os.environ.get("CFBACKUP_CONFIG"):
        return context.config  # the user named one: its errors are theirs to see
    try:
        find_config(None)
    except ConfigError:
        return None  # no config anywhere: the firewall commands work with defaults
    return context.config


def _pick_profile(config: Any, name: str | None, *, required: bool):
    if name:
        return config.profile(name)
    profiles = list(config.profiles.values())
    if len(profiles) == 1:
        return profiles[0]
    enabled = [p for p in profiles if p.plugin_config(SECTION).get("enabled")]
    if len(enabled) == 1:
        return enabled[0]
    if not required:
        return None
    raise ConfigError(f"{config.path}: several profiles ({', '.join(config.profiles)}): name "
                      "the one whose [firewall_lockdown] settings apply with --profile.")


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(stamp)) if stamp else "unknown"


def _candidates(settings: Settings, state_dir: Path) -> list[backends.Backend]:
    """Where to look for a lock-down: the recorded backend, else every available one."""
    record = read_record(state_dir)
    if record and record.get("backend"):
        return [backends.from_description(record["backend"])]
    if settings.backend != "auto":
        return [backends.detect(settings.backend)]
    found: list[backends.Backend] = [backends.detect("auto")]
    if found[0].name == "nft":
        other = backends.Iptables.find()
        if other:
            found.append(other)
    return found


def _lock(settings: Settings, backend: backends.Backend, state_dir: Path,
          args: argparse.Namespace, output: Any) -> int:
    timeout = settings.deadman_timeout if args.timeout is None else args.timeout
    if timeout < 0:
        raise ConfigError("--timeout must be 0 or more seconds.", exit_code=ExitCode.USAGE)
    locked = lockdown.lock(settings, backend, state_dir, owner_pid=None, timeout=timeout,
                           reason="cfbackup firewall lock")
    if locked.already:
        output.info(f"a lock-down is already in force since {_when(locked.already.since)} "
                    f"({locked.already.where}): nothing changed")
        return int(ExitCode.OK)
    if locked.took_over:
        output.warn(f"took over the orphaned lock-down in force since "
                    f"{_when(locked.took_over[0].since)} (its owner and dead-man were gone)")
    allowed = ", ".join(rule.describe() for rule in settings.lockdown_rules)
    output.info(f"firewall locked down ({backend.name}): new inbound connections are dropped "
                f"except loopback, established traffic and {allowed}")
    if locked.deadline:
        output.info(f"the dead-man (pid {locked.deadman_pid}) lifts it at "
                    f"{_when(locked.deadline)} unless {suggest.command('firewall', 'unlock')} "
                    "comes first")
    else:
        output.warn("no dead-man timeout: the lock-down stays until "
                    + suggest.command("firewall", "unlock"))
    return int(ExitCode.OK)


def _unlock(settings: Settings, state_dir: Path, args: argparse.Namespace, output: Any) -> int:
    removed = False
    candidates = _candidates(settings, state_dir)
    if args.reload_saved and len(candidates) > 1:  # no record: reload where a copy is kept
        candidates = [b for b in candidates if lift.has_kept(b, state_dir)] or candidates[:1]
    reloaded: list[Path] = []
    for backend in candidates:
        result = lift.unlock(backend, state_dir, reload_saved=args.reload_saved)
        removed = removed or result.removed
        reloaded += result.reloaded_from or []
        if result.drift and not args.reload_saved:
            reload = suggest.command("firewall", "unlock", "--reload-saved")
            output.warn(result.drift + f" ({reload} loads it back)")
    if reloaded:
        output.info(f"saved ruleset reloaded from {', '.join(str(p) for p in reloaded)}")
    if removed:
        what = "saved ruleset reloaded" if args.reload_saved else "ruleset as saved"
        output.info(f"firewall lock-down lifted ({what})")
    else:
        output.info("no firewall lock-down was in force" +
                    ("; saved ruleset reloaded" if args.reload_saved else ""))
    return int(ExitCode.OK)


def _status(settings: Settings, state_dir: Path, args: argparse.Namespace, output: Any) -> int:
    state: dict[str, Any] = {"locked": False}
    for backend in _candidates(settings, state_dir):
        state = lockdown.status(backend, state_dir)
        if state["locked"] or state.get("foreign"):
            break
    seed_backend = backends.detect(settings.backend)
    state["seed"] = seed.describe(seed_backend, settings, state_dir)
    if args.json:
        output.print_json(state)
        return int(ExitCode.OK)
    if state.get("foreign"):
        output.warn(f"lock-down: not cfbackup's: {state['advice']}")
    elif state["locked"]:
        minutes = (time.time() - state["since"]) / 60 if state.get("since") else None
        age = f" ({minutes:.0f} min ago)" if minutes is not None else ""
        output.info(f"lock-down: in force since {_when(state.get('since'))}{age} "
                    f"({state['where']})")
        if state.get("reason") or state.get("owner_pid"):
            alive = "running" if state.get("owner_alive") else "NOT running"
            output.info(f"  held by: {state.get('reason') or 'cfbackup'}" + (
                f" (pid {state['owner_pid']}, {alive})" if state.get("owner_pid") else ""))
        if state.get("deadman_pid"):
            alive = "running" if state.get("deadman_alive") else "NOT running"
            until = f", lifts it at {_when(state['deadline'])} at the latest" \
                if state.get("deadline") and state.get("deadman_alive") else ""
            output.info(f"  dead-man: pid {state['deadman_pid']} ({alive}){until}")
        if state.get("dropped_packets") is not None:
            output.info(f"  dropped so far: {state['dropped_packets']} packets")
        if state.get("orphaned"):
            output.warn(state["advice"])
    else:
        output.info("lock-down: not in force")
    s = state["seed"]
    active = "enabled" if s["active"] else "disabled"
    ports, networks = ", ".join(s["ports"]) or "none", ", ".join(s["networks"]) or "none"
    output.info(f"seed firewall: {active}; SSH {s['ssh']}; ports: {ports}; networks: {networks}")
    if s["enabled"] != s["active"]:
        output.warn("the seed firewall's rules do not match its saved state (after a reboot or "
                    "a firewall reload): run " +
                    suggest.command("firewall", "enable" if s["enabled"] else "disable"))
    return int(ExitCode.OK)


def _handle_remote(args: argparse.Namespace, context: Any, output: Any) -> int:
    from cfbackup_firewall_lockdown import compute, inventory, remote, selection

    profile = None if args.cloud or args.no_cloud else _cloud_profile(args, context)
    in_cloud = bool(args.cloud or profile)
    servers = inventory.read(args.inventory, required=not in_cloud)
    sources = ([compute.describe(profile, args.cloud)] if in_cloud else []) + \
        ([f"inventory {servers.path}"] if servers.found else [])
    where = " and ".join(sources)
    listed = compute.list_servers(profile=profile, cloud_name=args.cloud) if in_cloud else None
    chosen = selection.select(servers, listed, args.servers, exact=args.exact,
                              network=args.network, where=where)
    plan = [f"-s {args.servers!r}{' --exact' if args.exact else ''} selects from {where}:"]
    plan += [f"  {line}" for line in chosen.plan()]
    if args.dry_run:  # the plan is the result; the exit code tells what is known already
        for line in plan + ["dry run: nothing was changed"]:
            output.info(line)
        return remote.exit_code(chosen.outcomes())
    for line in plan:  # before acting, on stderr: stdout keeps one result line per server
        output.note(line)
    ran = remote.run_everywhere(chosen.reachable(), operation_argv(args),
                                parallel=args.parallel, timeout=args.ssh_timeout)
    outcomes = sorted(ran + chosen.outcomes(), key=lambda outcome: outcome.name)
    for outcome in outcomes:
        # one line per server on stdout, in name order, failures included (scripts read it)
        output.info(outcome.line())
    return remote.exit_code(outcomes)


def _cloud_profile(args: argparse.Namespace, context: Any):
    """The profile whose cloud lists the servers: ``--profile`` (when this host's config has
    it: the name is also passed on to the servers), else the config's only profile, when it
    names a cloud; None otherwise (the inventory alone)."""
    from cfbackup_firewall_lockdown import compute

    config = _config_or_none(args, context)
    if config is None:
        return None
    if args.profile:
        profile = config.profiles.get(args.profile)
    elif len(config.profiles) == 1:
        profile = next(iter(config.profiles.values()))
    else:
        profile = None
    return profile if profile is not None and compute.profile_names_cloud(profile) else None
