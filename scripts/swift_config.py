"""What the local Swift runs from: swift.conf, the rings, and one paste config per server.

Writing only (``local_swift.py`` starts and watches the servers). Tempauth users in the proxy by
default; Keystone mode (``LocalSwift(keystone={...})``, see scripts/local_keystone.py) replaces
tempauth with keystonemiddleware ``authtoken`` + Swift's ``keystoneauth`` (DESIGN.md section 5):
- ``cache = swift.cache`` in [filter:authtoken]: with ``memcached_servers`` instead every
  authenticated request is a 500 (python-memcached is not installed; /healthcheck still 200).
- ``interface = public`` in [filter:authtoken]: it looks for an *internal* identity endpoint by
  default, and every authenticated request is a 500 (EndpointNotFound) when there is none.
- ``operator_roles`` holds ``admin, member, swiftoperator``: a user with only ``reader`` gets 403.
- ``ratelimit`` is in the pipeline: an account's writes can be throttled through its
  ``X-Account-Sysmeta-Global-Write-Ratelimit`` (set_account_sysmeta), which stretches a backup
  over several token lifetimes without touching anyone else's account.
Standard library only.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

# name -> (tempauth user, key, groups); "admin" is the reseller admin (may set account quotas).
# The keys are drawn once per process (every LocalSwift of a process shares them, and a state
# file carries them to another): no secret is written in the code.
TEMPAUTH = {
    name: (user, f"key-{name}-{secrets.token_hex(6)}", groups)
    for name, user, groups in (
        ("admin", "test:tester", ".admin .reseller_admin"),
        ("user", "test:tester2", ".admin"),
        ("other", "test2:tester3", ".admin"),
    )
}

# Runs .venv/bin/swift-ring-builder once per argv list, in one interpreter (imports are slow).
_RINGS = """\
import json, runpy, sys
script, calls = sys.argv[1], json.loads(sys.argv[2])
for argv in calls:
    sys.argv[:] = [script] + argv  # in place: ringbuilder bound sys.argv at import
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0, 1):  # 1 is a warning (balance), 2 an error
            sys.exit("swift-ring-builder %s failed (%s)" % (" ".join(argv), exc.code))
"""

PIPELINE = (
    "catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempauth "
    "copy container-quotas account-quotas slo dlo versioned_writes proxy-logging proxy-server"
)
KEYSTONE_PIPELINE = PIPELINE.replace("bulk tempauth", "bulk ratelimit authtoken keystoneauth")
OPERATOR_ROLES = "admin, member, swiftoperator"


def write_swift_conf(base: Path) -> None:
    """swift.conf (hash path, one storage policy); a reused --dir keeps its hash, so its data
    stays valid."""
    swift_conf = base / "swift.conf"
    if not swift_conf.exists():
        swift_conf.write_text(
            "[swift-hash]\n"
            f"swift_hash_path_suffix = {uuid.uuid4().hex}\n"
            f"swift_hash_path_prefix = {uuid.uuid4().hex}\n\n"
            "[storage-policy:0]\nname = Policy-0\ndefault = yes\n")


def build_rings(base_dir: Path, log_dir: Path, backends: list[tuple[str, int]],
                replicas: int) -> None:
    """account/container rings: 1 replica; object ring: ``replicas`` over all servers."""
    calls = []
    for ring in ("account", "container", "object"):
        builder = str(base_dir / f"{ring}.builder")
        Path(builder).unlink(missing_ok=True)  # ports change on every start
        devs = [(n, p) for n, p in backends if n.startswith(ring)]
        ring_replicas = replicas if ring == "object" else 1
        calls.append([builder, "create", "8", str(ring_replicas), "0"])
        add = [builder, "add"]
        for zone, (name, port) in enumerate(devs, start=1):
            add += [f"r1z{zone}-127.0.0.1:{port}/{name}", "1"]
        calls += [add, [builder, "rebalance"]]
    script = Path(sys.executable).parent / "swift-ring-builder"
    out = subprocess.run([sys.executable, "-c", _RINGS, str(script), json.dumps(calls)],
                         capture_output=True, text=True, cwd=base_dir)
    (log_dir / "ring-builder.log").write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        raise RuntimeError(f"building rings failed:\n{out.stdout}{out.stderr}")


def memcached_argv(port: int) -> list[str]:
    argv = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64", "-t", "2"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    return argv


def write_conf(base_dir: Path, name: str, port: int, sections: str,
               bind_ip: str = "127.0.0.1") -> Path:
    user = pwd.getpwuid(os.geteuid()).pw_name
    path = base_dir / f"{name}.conf"
    path.write_text(
        "[DEFAULT]\n"
        f"bind_ip = {bind_ip}\nbind_port = {port}\nworkers = 0\nuser = {user}\n"
        f"swift_dir = {base_dir}\ndevices = {base_dir / 'nodes' / name}\n"
        "mount_check = false\ndisable_fallocate = true\n"
        f"recon_cache_path = {base_dir / 'recon'}\n"
        f"log_name = {name}\nlog_level = INFO\n\n" + sections)
    return path


def backend_sections(kind: str, updater_interval: float) -> str:
    text = (f"[pipeline:main]\npipeline = healthcheck {kind}-server\n\n"
            f"[app:{kind}-server]\nuse = egg:swift#{kind}\n\n"
            "[filter:healthcheck]\nuse = egg:swift#healthcheck\n\n")
    if kind in ("container", "object"):
        text += (f"[{kind}-updater]\ninterval = {updater_interval}\n"
                 "concurrency = 1\nnode_timeout = 3\n\n")
    return text


def proxy_sections(mc_port: int, keystone: dict | None) -> str:
    pipeline = KEYSTONE_PIPELINE if keystone else PIPELINE
    own = ("cache", "tempauth", "authtoken", "keystoneauth", "ratelimit", "proxy-server")
    filters = dict.fromkeys(f for f in pipeline.split() if f not in own)
    text = (f"[pipeline:main]\npipeline = {pipeline}\n\n"
            "[app:proxy-server]\nuse = egg:swift#proxy\nallow_account_management = true\n"
            "account_autocreate = true\nnode_timeout = 5\nconn_timeout = 0.5\n\n"
            + (keystone_sections(keystone) if keystone else tempauth_section())
            + f"[filter:cache]\nuse = egg:swift#memcache\n"
            f"memcache_servers = 127.0.0.1:{mc_port}\n\n")
    return text + "".join(f"[filter:{f}]\nuse = egg:swift#{f.replace('-', '_')}\n\n"
                          for f in filters)


def tempauth_section() -> str:
    users = "".join(f"user_{u.replace(':', '_')} = {k} {g}\n"
                    for u, k, g in TEMPAUTH.values())
    return f"[filter:tempauth]\nuse = egg:swift#tempauth\ntoken_life = 86400\n{users}\n"


def keystone_sections(ks: dict) -> str:
    return (
        "[filter:authtoken]\n"
        "paste.filter_factory = keystonemiddleware.auth_token:filter_factory\n"
        f"www_authenticate_uri = {ks['auth_url']}\nauth_url = {ks['auth_url']}\n"
        "auth_type = password\ninterface = public\n"
        f"username = {ks['username']}\npassword = {ks['password']}\n"
        f"user_domain_name = {ks.get('user_domain_name', 'Default')}\n"
        f"project_name = {ks.get('project_name', 'service')}\n"
        f"project_domain_name = {ks.get('project_domain_name', 'Default')}\n"
        "cache = swift.cache\ndelay_auth_decision = true\n"
        "include_service_catalog = false\nhttp_connect_timeout = 5\n\n"
        "[filter:keystoneauth]\nuse = egg:swift#keystoneauth\n"
        f"operator_roles = {ks.get('operator_roles', OPERATOR_ROLES)}\n"
        "reseller_admin_role = ResellerAdmin\n\n"
        "[filter:ratelimit]\nuse = egg:swift#ratelimit\nlog_sleep_time_seconds = 1\n\n"
    )
