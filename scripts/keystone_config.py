#!/usr/bin/env python3
"""What the local Keystone runs from: keystone.conf, and the template every session copies.

The template (.venv-keystone/cfbackup-template: sqlite database, fernet and credential keys,
identities.json) is built once, by running this file with .venv-keystone's Python
(``python keystone_config.py DIR``; ``local_keystone.py`` does it): ``keystone-manage``
db_sync, fernet_setup, credential_setup and bootstrap in one interpreter, then the test
identities (IDENTITIES) and the catalog. Standard library only at import time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TEMPLATE_VERSION = "4"  # bump when provision() changes: the template is rebuilt

# What provision() creates; ids, and the passwords bootstrap() makes up for each template
# (never written in the code), are filled in from the template's identities.json.
IDENTITIES = {
    "domains": {"BackupDomain": {}},
    "projects": {
        # name -> domain name
        "service": "Default",
        "backups": "BackupDomain",
        "expiry-password": "BackupDomain",
        "expiry-appcred": "BackupDomain",
        "nocatalog": "BackupDomain",
    },
    "users": {
        # key -> (name, domain, {project: [roles]})
        "swift": ("swift", "Default", {"service": ["service", "admin"]}),
        "backup": (
            "backup",
            "BackupDomain",
            {p: ["member"] for p in ("backups", "expiry-password", "expiry-appcred", "nocatalog")},
        ),
        "auditor": ("auditor", "Default", {"backups": ["reader"]}),
    },
}


def config(base: Path, expiration: int) -> str:
    return (
        "[DEFAULT]\n"
        f"log_file = {base / 'keystone.log'}\n"
        "debug = false\n\n"
        f"[database]\nconnection = sqlite:///{base / 'keystone.db'}\n\n"
        f"[token]\nprovider = fernet\nexpiration = {expiration}\n\n"
        f"[fernet_tokens]\nkey_repository = {base / 'fernet-keys'}\n\n"
        f"[fernet_receipts]\nkey_repository = {base / 'fernet-keys'}\n\n"
        f"[credential]\nkey_repository = {base / 'credential-keys'}\n\n"
        "[identity]\npassword_hash_rounds = 4\n\n"
        "[cache]\nenabled = true\nbackend = dogpile.cache.memory\n\n"
        "[catalog]\ncaching = false\n"
    )


def bootstrap(target: str) -> int:
    """keystone-manage db_sync, fernet_setup, credential_setup and bootstrap in one
    interpreter, then the test identities and the catalog; writes identities.json."""
    import getpass
    import secrets

    passwords = {key: f"ks-{key}-{secrets.token_hex(8)}" for key in ("admin", *IDENTITIES["users"])}
    base = Path(target)
    conf = base / "keystone.conf"
    conf.write_text(config(base, 3600))
    from keystone.cmd import cli

    me = getpass.getuser()
    for args in (
        ["db_sync"],
        ["fernet_setup", "--keystone-user", me, "--keystone-group", me],
        ["credential_setup", "--keystone-user", me, "--keystone-group", me],
        ["bootstrap", "--bootstrap-password", passwords["admin"],
         "--bootstrap-public-url", "http://127.0.0.1:1/v3", "--bootstrap-region-id", "RegionOne"],
    ):
        cli.CONF.clear()  # one process, several commands: parse the command line again
        cli.main(argv=["keystone-manage", "--config-file", str(conf), *args])
    identities = provision(passwords)
    identities["version"] = TEMPLATE_VERSION
    (base / "identities.json").write_text(json.dumps(identities, indent=2))
    conf.unlink()
    (base / "keystone.log").unlink(missing_ok=True)
    return 0


def provision(passwords: dict[str, str]) -> dict:
    import uuid

    from keystone.common import provider_api

    api = provider_api.ProviderAPIs
    domains = {"Default": "default"}
    for name in IDENTITIES["domains"]:
        domain_id = uuid.uuid4().hex
        api.resource_api.create_domain(domain_id, {"id": domain_id, "name": name,
                                                   "enabled": True})
        domains[name] = domain_id
    projects = {}
    for name, domain in IDENTITIES["projects"].items():
        project_id = uuid.uuid4().hex
        api.resource_api.create_project(project_id, {
            "id": project_id, "name": name, "domain_id": domains[domain],
            "parent_id": domains[domain], "enabled": True, "is_domain": False,
            "description": "cfbackup tests"})
        projects[name] = {"id": project_id, "name": name, "domain": domain,
                          "domain_id": domains[domain]}
    roles = {r["name"]: r["id"] for r in api.role_api.list_roles()}
    users = {}
    for key, (name, domain, grants) in IDENTITIES["users"].items():
        password = passwords[key]
        user = api.identity_api.create_user({"name": name, "domain_id": domains[domain],
                                             "password": password, "enabled": True})
        for project, role_names in grants.items():
            for role in role_names:
                api.assignment_api.add_role_to_user_and_project(
                    user_id=user["id"], project_id=projects[project]["id"], role_id=roles[role])
        users[key] = {"id": user["id"], "name": name, "domain": domain,
                      "domain_id": domains[domain], "password": password}
    admin = api.identity_api.get_user_by_name("admin", "default")
    users["admin"] = {"id": admin["id"], "name": "admin", "domain": "Default",
                      "domain_id": "default", "password": passwords["admin"]}

    api.catalog_api.create_region({"id": "RegionTwo"})
    service_id = uuid.uuid4().hex
    api.catalog_api.create_service(service_id, {"id": service_id, "type": "object-store",
                                                "name": "swift", "enabled": True})
    for interface in ("public", "internal"):
        endpoint_id = uuid.uuid4().hex
        api.catalog_api.create_endpoint(endpoint_id, {
            "id": endpoint_id, "service_id": service_id, "interface": interface,
            "region_id": "RegionOne", "enabled": True,
            "url": "http://127.0.0.1:1/v1/AUTH_%(project_id)s"})
    identity = [e for e in api.catalog_api.list_endpoints()
                if api.catalog_api.get_service(e["service_id"])["type"] == "identity"]
    for endpoint in identity:  # nocatalog sees only these: no object-store in its catalog
        api.catalog_api.add_endpoint_to_project(endpoint["id"], projects["nocatalog"]["id"])
    return {"domains": domains, "projects": projects, "users": users,
            "regions": ["RegionOne", "RegionTwo"]}


if __name__ == "__main__":
    sys.exit(bootstrap(sys.argv[1]))
