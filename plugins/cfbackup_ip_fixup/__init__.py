"""Built-in plugin ``ip_fixup``: make DNS and the hosts file follow a server's new addresses.

On ``server_ip_changed`` (fired by ``cfbackup server unpark`` and ``cfbackup ip-fixup``) every
profile whose ``[ip_fixup]`` section handles that server updates the A/AAAA records of its
``dns_names`` (RFC 2136 + TSIG, or Designate), then the hosts-file lines naming the host. A DNS
failure stops that profile before its hosts file is touched. See docs/plugins/ip_fixup.md.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging

from cfbackup.config.schema import Option
from cfbackup.errors import CfbackupError, ConfigError, ExitCode
from cfbackup.hookspecs import hookimpl

from .rfc2136 import TSIG_ALGORITHMS

SECTION = "ip_fixup"
log = logging.getLogger("cfbackup.ip_fixup")

OPTIONS = (
    Option(
        "servers",
        "list",
        "Server names whose address changes this profile follows; the profile's name when empty.",
        default=[],
        example=["web1"],
    ),
    Option(
        "dns_names",
        "list",
        "Fully qualified names whose A/AAAA records get the new addresses.",
        default=[],
        example=["web1.example.com."],
    ),
    Option(
        "dns_networks",
        "list",
        "Only new addresses inside these networks go into DNS "
        "(e.g. the public range); all addresses when empty.",
        default=[],
        example=["203.0.113.0/24"],
    ),
    Option(
        "dns_backend",
        "choice",
        "How DNS is updated: RFC 2136 dynamic update or "
        "OpenStack Designate (with the profile's cloud credentials).",
        default="rfc2136",
        choices=("rfc2136", "designate"),
    ),
    Option(
        "dns_server",
        "string",
        "Primary DNS server receiving RFC 2136 updates (name or address).",
        example="ns1.example.com",
    ),
    Option("dns_port", "integer", "Port of dns_server.", default=53, minimum=1),
    Option(
        "dns_zone",
        "string",
        "Zone of the names; found by asking dns_server (or Designate) "
        "for the closest SOA when unset.",
        example="example.com.",
    ),
    Option("dns_ttl", "integer", "TTL of the updated records, in seconds.", default=300, minimum=1),
    Option(
        "dns_timeout",
        "integer",
        "Seconds to wait for the DNS server's answer.",
        default=10,
        minimum=1,
    ),
    Option(
        "dns_check_old",
        "boolean",
        "Update a record only while it holds nothing but the server's old or new addresses, "
        "so a hand-made change is not overwritten; one that already holds the new addresses "
        "is left as it is (a rerun).",
        default=False,
    ),
    Option(
        "tsig_key_name",
        "string",
        "Name of the TSIG key signing updates. Updates are unsigned when neither this nor a "
        "secret is set; a BIND key file (tsig_secret) names the key itself.",
        example="cfbackup-update",
    ),
    Option(
        "tsig_secret",
        "secret",
        "The TSIG key: its bare base64 secret (with tsig_key_name and tsig_algorithm), or the "
        'BIND key file as tsig-keygen writes it (key "NAME" { algorithm ALG; secret "..."; };), '
        "from which the key's name and algorithm are taken.",
        example='from tsig_secret_file = "/etc/cfbackup/tsig.key" (tsig-keygen NAME > FILE)',
    ),
    Option(
        "tsig_algorithm",
        "choice",
        "Algorithm of the TSIG key (a BIND key file's own algorithm wins).",
        default="hmac-sha256",
        choices=TSIG_ALGORITHMS,
    ),
    Option(
        "update_hosts", "boolean", "Rewrite the hosts-file lines naming the host.", default=True
    ),
    Option("hosts_file", "path", "The hosts file to rewrite.", default="/etc/hosts"),
    Option(
        "hosts_names",
        "list",
        "More names that mark a hosts-file line as this host's "
        "(the server name and dns_names always do).",
        default=[],
    ),
    Option(
        "hosts_backup",
        "boolean",
        "Keep a copy of the previous hosts file as FILE.cfbackup.bak.",
        default=True,
    ),
)


@dataclasses.dataclass
class Outcome:
    profile: str
    dns: list[str] = dataclasses.field(default_factory=list)
    hosts: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)


@hookimpl
def cfbackup_config_schema(register):
    register(SECTION, OPTIONS)


def handles(profile, server: str) -> bool:
    if SECTION in (profile.get("disable_plugins") or []):
        return False
    section = profile.plugin_config(SECTION)
    return server in (section.get("servers") or [profile.name])


def _in_networks(address: str, networks: list[str], where: str) -> bool:
    if not networks:
        return True
    try:
        nets = [ipaddress.ip_network(n, strict=False) for n in networks]
    except ValueError as error:
        raise ConfigError(
            f"{where}.dns_networks: {error}: give networks such as 203.0.113.0/24."
        ) from None
    ip = ipaddress.ip_address(address)
    return any(ip.version == n.version and ip in n for n in nets)


def fix_profile(profile, server: str, old: list[str], new: list[str]) -> Outcome:
    """DNS then hosts file for one profile; raises on a DNS failure (hosts then untouched).

    A message whose fix ends with running the fix-up again names the command that does it for
    this profile (rerun.py), as does one after RFC 2136 updates of several zones that failed
    part-way: one UPDATE per zone, so the zones before the failing one stay changed."""
    from cfbackup.config.secrets import resolve_secret

    from . import hosts, rfc2136
    from .rerun import command, part_way

    section = profile.plugin_config(SECTION)
    where = f"profiles.{profile.name}.{SECTION}"
    outcome = Outcome(profile.name)
    rerun = command(server, old, new, profile.name)
    names = [n if n.endswith(".") else n + "." for n in section.get("dns_names") or []]
    if names:
        dns_new = rfc2136.by_family(
            a for a in new if _in_networks(a, section["dns_networks"], where)
        )
        dns_old = rfc2136.by_family(
            a for a in old if _in_networks(a, section["dns_networks"], where)
        )
        for rtype in ("A", "AAAA"):
            if dns_old.get(rtype) and not dns_new.get(rtype):
                outcome.warnings.append(
                    f"no new {rtype} address for {', '.join(rfc2136.shown(n) for n in names)}, "
                    "so those records were left as they are"
                )
        records = {name: dict(dns_new) for name in names}
        if dns_new and section["dns_backend"] == "designate":
            from . import designate

            check = (
                {n: {t: dns_old.get(t, []) for t in dns_new} for n in names}
                if section["dns_check_old"]
                else None
            )
            outcome.dns = designate.replace(
                profile,
                section.get("dns_zone"),
                records,
                section["dns_ttl"],
                where,
                check,
                rerun=rerun,
            )
        elif dns_new:
            secret = resolve_secret(section, "tsig_secret", where)
            dns_server = rfc2136.Server(section, secret, where)
            zones: dict[str, list[str]] = {}
            for name in names:
                zone = section.get("dns_zone") or dns_server.zone_of(name)
                zones.setdefault(zone, []).append(name)
            changed: list[str] = []  # the zones this run changed, as shown in a sentence
            for zone, zone_names in zones.items():
                check = (
                    {n: {t: dns_old.get(t, []) for t in dns_new} for n in zone_names}
                    if section["dns_check_old"]
                    else None
                )
                try:
                    already = dns_server.replace(
                        zone,
                        {n: records[n] for n in zone_names},
                        section["dns_ttl"],
                        check,
                        rerun=rerun,
                    )
                except CfbackupError as error:
                    if not changed:
                        raise
                    raise part_way(
                        error, "RFC 2136 updates are atomic only within a zone", changed, rerun
                    ) from None
                done = [
                    f"{rfc2136.shown(n)} {t} {' '.join(dns_old.get(t, [])) or '(none given)'} "
                    f"-> {' '.join(a)}"
                    for n in zone_names
                    for t, a in dns_new.items()
                    if (n, t) not in already
                ]
                if done:
                    changed.append(f"zone {rfc2136.shown(zone)} ({', '.join(done)})")
                outcome.dns += [
                    f"{n} {t} {' '.join(a)}" + (" (already so)" if (n, t) in already else "")
                    for n in zone_names
                    for t, a in dns_new.items()
                ]
    if section["update_hosts"]:
        host_names = [server, *(n.rstrip(".") for n in names), *section["hosts_names"]]
        try:
            changes, warnings = hosts.fix_file(
                section["hosts_file"], host_names, old, new, backup=section["hosts_backup"]
            )
        except OSError as error:
            raise ConfigError(
                f"{where}.hosts_file: cannot rewrite {section['hosts_file']}: "
                f"{error.strerror or error}: check the path and permissions, then run {rerun}"
                + ("; DNS was already updated, and a rerun skips it." if outcome.dns else ".")
            ) from None
        outcome.hosts = [f"{section['hosts_file']}:{c.line}: {c.old} -> {c.new}" for c in changes]
        outcome.warnings += [f"{section['hosts_file']}: {w}" for w in warnings]
    return outcome


def fix_all(config, server: str, old: list[str], new: list[str]) -> list[Outcome]:
    """Every profile that handles ``server``; the first error is raised after the others ran."""
    outcomes, errors = [], []
    for profile in config.profiles.values():
        if not handles(profile, server):
            continue
        try:
            outcome = fix_profile(profile, server, old, new)
        except CfbackupError as error:
            errors.append((profile.name, error))
            continue
        for line in outcome.dns:
            log.info("DNS updated: %s", line)
        for line in outcome.hosts:
            log.info("hosts file: %s", line)
        for warning in outcome.warnings:  # callers print them (they get the outcomes)
            log.info("ip_fixup warning: %s", warning)
        outcomes.append(outcome)
    for name, error in errors[1:]:  # the first one is raised, and printed by the CLI
        log.error("ip_fixup for profile %s: %s", name, error.message)
    if errors:
        raise errors[0][1]
    return outcomes


@hookimpl
def cfbackup_server_ip_changed(server, old, new, config):
    """Returns the outcomes (a list of :class:`Outcome`) so callers can print a summary."""
    return fix_all(config, server, list(old), list(new))


@hookimpl
def cfbackup_check(run):
    """Rows only for profiles that configure ip_fixup: the DNS server answers a signed SOA
    query (key and secret accepted, nothing changed) and the hosts file can be replaced."""
    import os

    from cfbackup.config.secrets import resolve_secret

    from . import rfc2136

    section = run.plugin_config(SECTION)
    where = f"profiles.{run.profile.name}.{SECTION}"
    rows = []
    if section.get("dns_names") and section["dns_backend"] == "rfc2136":
        try:
            server = rfc2136.Server(section, resolve_secret(section, "tsig_secret", where), where)
            zone = section.get("dns_zone") or server.zone_of(section["dns_names"][0])
            rows.append(("DNS updates", True, server.check(zone)))
        except CfbackupError as error:
            rows.append(("DNS updates", False, error.message))
    if section["update_hosts"] and (section.get("servers") or section.get("dns_names")):
        path = section["hosts_file"]
        folder = os.path.dirname(os.path.realpath(path)) or "."
        ok = os.path.isfile(path) and os.access(folder, os.W_OK)
        rows.append(
            (
                "hosts file",
                ok,
                f"{path} can be replaced"
                if ok
                else f"{path} is missing or its directory is not writable: run as root or "
                "set hosts_file",
            )
        )
    return rows or None


@hookimpl
def cfbackup_register_commands(subparsers, context):
    p = subparsers.add_parser(
        "ip-fixup", help="update DNS and the hosts file after a server's address changed"
    )
    p.add_argument("--name", required=True, metavar="SERVER", help="the server's name")
    p.add_argument(
        "--old",
        action="append",
        default=[],
        metavar="ADDR",
        help="an address it had (repeat, or separate with commas)",
    )
    p.add_argument(
        "--new",
        action="append",
        required=True,
        metavar="ADDR",
        help="an address it has now (repeat, or separate with commas)",
    )
    p.add_argument("--profile", metavar="P", help="only this profile's [ip_fixup]")
    p.set_defaults(handler=ip_fixup_command)


def _addresses(values: list[str], flag: str) -> list[str]:
    result = []
    for value in values:
        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                result.append(str(ipaddress.ip_address(part)))
            except ValueError:
                raise CfbackupError(
                    f"{flag} {part}: not an IPv4 or IPv6 address.", exit_code=ExitCode.USAGE
                ) from None
    return result


def ip_fixup_command(args, context) -> int:
    """Fire ``server_ip_changed`` to every plugin, with the config cut down to --profile."""
    from cfbackup.cli import output

    old, new = _addresses(args.old, "--old"), _addresses(args.new, "--new")
    config = context.config
    if args.profile:
        profile = config.profile(args.profile)
        config = dataclasses.replace(config, profiles={profile.name: profile})
    handling = [p.name for p in config.profiles.values() if handles(p, args.name)]
    if not handling:
        raise ConfigError(
            f"no profile's [{SECTION}] handles server {args.name}: add "
            f'servers = ["{args.name}"] to one (or name a profile after it).'
        )
    results = context.plugin_manager.hook.cfbackup_server_ip_changed(
        server=args.name, old=old, new=new, config=config
    )
    for outcome in (
        o
        for result in results or []
        if isinstance(result, list)
        for o in result
        if isinstance(o, Outcome)
    ):
        for line in outcome.dns:
            output.info(f"{outcome.profile}: DNS {line}")
        for line in outcome.hosts:
            output.info(f"{outcome.profile}: hosts {line}")
        for warning in outcome.warnings:
            output.warn(f"{outcome.profile}: {warning}")
    output.info(
        f"ip-fixup of {args.name} done for profile(s) {', '.join(handling)}: "
        f"{', '.join(old) or '-'} -> {', '.join(new)}"
    )
    everyone = [p.name for p in context.config.profiles.values() if handles(p, args.name)]
    if handling == everyone:  # --profile left none out: tell the others (server_image)
        done = context.plugin_manager.hook.cfbackup_ip_fixup_done(
            server=args.name, old=old, new=new, config=context.config
        )
        for warning in (w for result in done or [] for w in result or []):
            output.warn(warning)
    return int(ExitCode.OK)
