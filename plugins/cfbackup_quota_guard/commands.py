"""``cfbackup quota show [PROFILE...] [--json] [--estimate]`` and ``cfbackup quota set``."""

from __future__ import annotations

import os

from cfbackup.errors import CfbackupError, ConfigError, ExitCode


def parse_amount(text: str, *, sizes: bool) -> int | None:
    """A quota from the command line: N, N with a unit for bytes (K/M/G/T: powers of 1000;
    KiB/MiB/GiB/TiB: powers of 1024), or ``none`` to remove the quota. A bad amount is a
    command-line mistake: USAGE (2)."""
    from cfbackup.units import parse_size

    text = text.strip()
    if text.lower() in ("none", "off", "remove"):
        return None
    try:
        if not sizes and not text.isdigit():
            raise ValueError(text)
        return parse_size(text)
    except ValueError:
        flag = "--bytes" if sizes else "--count"
        raise CfbackupError(
            f"{flag} {text!r} is not "
            f"{'a size (e.g. 500000000, 500M, 10GiB)' if sizes else 'a count (a whole number)'}"
            " or 'none': give one of those.",
            exit_code=ExitCode.USAGE,
        ) from None


def register(subparsers) -> None:
    p = subparsers.add_parser("quota", help="show or set Swift quotas of a profile's target")
    sub = p.add_subparsers(dest="quota_command", metavar="SUBCOMMAND", required=True)
    s = sub.add_parser("show", help="container and account usage and quotas")
    s.add_argument("profiles", nargs="*", metavar="PROFILE")
    s.add_argument("--json", action="store_true")
    s.add_argument(
        "--estimate", action="store_true", help="also estimate the next backup and compare"
    )
    s.set_defaults(handler=show)
    t = sub.add_parser("set", help="set the container quota (or with --account the account's)")
    t.add_argument("profile", metavar="PROFILE")
    t.add_argument("--bytes", metavar="N", help="bytes (500M, 10GiB...) or 'none' to remove")
    t.add_argument("--count", metavar="N", help="objects, or 'none' to remove")
    t.add_argument(
        "--account",
        action="store_true",
        help="set the account's quota instead (Swift allows only a reseller admin)",
    )
    t.add_argument("--admin-user", metavar="USER", help="a reseller admin to do it as")
    t.add_argument(
        "--admin-password-env",
        metavar="VAR",
        help="environment variable holding that user's password or key",
    )
    t.add_argument("--json", action="store_true")
    t.set_defaults(handler=set_quota)


def _percent(used: int, quota: int | None) -> str:
    if quota is None:
        return ""
    return f" ({100 * used / quota:.0f}%)" if quota else " (quota 0)"


def gather(profile, *, with_estimate: bool, state_dir) -> dict:
    from cfbackup import swift, swift_usage
    from cfbackup_quota_guard import guard

    conn = swift.connect(profile)
    data: dict = {"profile": profile.name, "target": profile.target}
    data["container"] = swift_usage.container_stats(profile, conn)
    data["account"] = swift_usage.account_usage(profile, conn)
    info = swift_usage.swift_info(profile, conn)
    data["middlewares"] = (
        None
        if info is None
        else {name: name in info for name in ("container_quotas", "account_quotas")}
    )
    if with_estimate:
        settings = {"check_account": True}
        data["next_backup"] = guard.assess(profile, settings, state_dir=state_dir).as_dict()
    return data


def _print(data: dict) -> None:
    from cfbackup.cli import output
    from cfbackup_quota_guard.guard import human

    c, a = data["container"], data["account"]
    output.info(f"profile {data['profile']}: {data['target']}")
    if not c["exists"]:
        output.info(f"  container {c['container']}: does not exist yet")
    output.info(
        f"  container {c['container']}: {human(c['bytes_used'])} in {c['object_count']} objects"
        f"; quota {human(c['quota_bytes'])}{_percent(c['bytes_used'], c['quota_bytes'])}, "
        f"{c['quota_count'] if c['quota_count'] is not None else 'no'} objects"
        f"{_percent(c['object_count'], c['quota_count'])}"
    )
    if c.get("prefix"):
        output.info(
            f"  prefix {c['prefix']}: {human(c['prefix_bytes'])} in {c['prefix_objects']} objects"
        )
    used = a["bytes_used_current"]
    output.info(
        f"  account: {human(used)} in {a['object_count_current']} objects "
        f"(the account reports {human(a['bytes_used_reported'])}); quota "
        f"{human(a['quota_bytes'])}{_percent(used, a['quota_bytes'])}"
        + (f" via {a['quota_bytes_header']}" if a["quota_bytes_header"] else "")
        + f", {a['quota_count'] if a['quota_count'] is not None else 'no'} objects"
        + _percent(a["object_count_current"], a["quota_count"])
    )
    for name, entry in (a.get("policy_quotas") or {}).items():
        output.info(
            f"  policy {name}: quota {human(entry.get('quota_bytes'))}, "
            f"{entry.get('quota_count') if entry.get('quota_count') is not None else 'no'} objects"
        )
    mw = data["middlewares"]
    output.info(
        "  middlewares: "
        + (
            "unknown (/info is disabled)"
            if mw is None
            else ", ".join(f"{k} {'on' if v else 'OFF'}" for k, v in mw.items())
        )
    )
    nxt = data.get("next_backup")
    if nxt:
        plan = nxt["plan"]
        output.info(
            f"  next backup: {plan['kind']} ({plan['reason']}): up to "
            f"{human(nxt['upload_bytes'])} in {nxt['upload_objects']} objects"
        )
        for check in nxt["checks"]:
            state = "REFUSED" if check["exceeded"] else "ok"
            unit = check["unit"]
            show = human if unit == "bytes" else str
            output.info(
                f"    {check['scope']} {unit}: {show(check['used'])} + {show(check['adding'])} "
                f"= {show(check['after'])} of {show(check['quota'])} "
                f"({check['percent']:.0f}%): {state}"
            )


def show(args, context) -> int:
    from cfbackup.cli import output
    from cfbackup.duplicity.target import swift_target

    config = context.config
    named = bool(args.profiles)
    results, code = [], ExitCode.OK
    for profile in config.select(args.profiles):
        if swift_target(profile.target) is None:
            if named:
                raise ConfigError(
                    f"profiles.{profile.name}.target: {profile.target} is not a swift:// "
                    "target: it has no Swift quota."
                )
            continue
        data = gather(profile, with_estimate=args.estimate, state_dir=config.state_dir)
        results.append(data)
        if args.estimate and data["next_backup"]["refused"]:
            code = ExitCode.QUOTA
        if not args.json:
            _print(data)
    if args.json:
        output.print_json(results)  # always a list, one object per profile
    return int(code)


def set_quota(args, context) -> int:
    from cfbackup import swift, swift_usage
    from cfbackup.cli import output
    from cfbackup_quota_guard.guard import human

    # command-line mistakes first, as USAGE (2), before the config or Swift is consulted
    if args.bytes is None and args.count is None:
        raise CfbackupError(
            "quota set: nothing to set: give --bytes N and/or --count N ('none' removes a quota).",
            exit_code=ExitCode.USAGE,
        )
    changes = {}
    if args.bytes is not None:
        changes["quota_bytes"] = parse_amount(args.bytes, sizes=True)
    if args.count is not None:
        changes["quota_count"] = parse_amount(args.count, sizes=False)
    if args.admin_user and not args.admin_password_env:
        raise CfbackupError(
            "--admin-user needs --admin-password-env VAR, VAR an environment variable holding "
            "that user's password.",
            exit_code=ExitCode.USAGE,
        )
    profile = context.config.profile(args.profile)
    swift.target_of(profile)
    password = None
    if args.admin_user:
        variable = args.admin_password_env
        password = os.environ.get(variable)
        if not password:
            raise ConfigError(
                f"--admin-password-env {variable}: that environment variable is not set (or is "
                "empty): export the reseller admin's password in it."
            )
    conn = swift.connect(profile)
    if args.admin_user:  # the admin acts on the profile's account, not on its own
        with swift.swift_errors(profile):
            account_url = conn.get_auth()[0]
        conn = swift.connect(
            profile, username=args.admin_user, password=password, storage_url=account_url
        )
    if args.account:
        result = swift_usage.set_account_quota(profile, conn=conn, **changes)
        where = f"account {result['storage_url']}"
    else:
        result = swift_usage.set_container_quota(profile, conn=conn, **changes)
        where = f"container {result['container']}"
    if args.json:
        output.print_json(result)
        return 0
    output.info(
        f"{where}: quota {human(result['quota_bytes'])}, "
        f"{result['quota_count'] if result['quota_count'] is not None else 'no'} objects "
        f"(used: {human(result['bytes_used'])} in {result['object_count']} objects)"
    )
    return 0
