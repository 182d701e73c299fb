"""The config schema: every option's type, default, allowed values and description, once.

Validation (``validate.py``), the commented sample (``cfbackup config sample``) and the
reference page (``docs/config-reference.md``, checked by a test) are all derived from this.
Plugins contribute their own sections through the ``cfbackup_config_schema`` hook.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

REQUIRED = object()  # marker: the option has no default and must be given

DURATION_RE = re.compile(r"^(now|\d+[smhDWMY](\d+[smhDWMY])*|\d{4}-\d{2}-\d{2}(T[\d:]+Z?)?)$")


@dataclasses.dataclass(frozen=True)
class Option:
    """One config key. ``kind`` is one of: string, integer, boolean, list, duration, choice,
    path, secret, table. A ``secret`` may also be given as ``NAME_env``, ``NAME_file`` or
    ``NAME_command``; inline it forces the file to be mode 0600."""

    name: str
    kind: str
    description: str
    default: Any = None
    example: Any = None
    choices: tuple[str, ...] = ()
    children: tuple[Option, ...] = ()
    minimum: int | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


SECRET_SOURCES = ("", "_env", "_file", "_command")
DEFAULT_KEEP_FULL = 2  # the retention when a profile sets no rule (dt-cf-backup.sh's default)

ENCRYPTION = (
    Option(
        "mode",
        "choice",
        "How backups are encrypted: a symmetric passphrase, GPG public keys, or not at all.",
        default="symmetric",
        choices=("symmetric", "pubkey", "none"),
    ),
    Option(
        "passphrase",
        "secret",
        "Symmetric passphrase (mode symmetric), or the passphrase of the secret keys used to "
        "sign and to decrypt when restoring (mode pubkey).",
        example='from passphrase_file = "/root/.config/cfbackup/passphrase"',
    ),
    Option(
        "encrypt_keys",
        "list",
        "GPG key ids or fingerprints to encrypt to (mode pubkey).",
        default=[],
        example=["0x1234ABCD"],
    ),
    Option(
        "sign_key", "string", "GPG key id that signs the backup (optional).", example="0x1234ABCD"
    ),
    Option("gpg_home", "path", "GNUPGHOME holding the keys; gpg's default when unset."),
    Option(
        "compression",
        "choice",
        "How gpg compresses each volume. none: fastest backups, the most bytes stored and "
        "downloaded (1.4x duplicity's default on half-text data). fast (zlib level 1): about "
        "duplicity's bytes or fewer for half as much CPU as its default, but a full backup "
        "takes about twice as long as with none on a fast link; pays when the link or the "
        "storage is what costs (a WAN). small (zlib level 6): fewest bytes, most CPU. "
        "Incompressible data costs the same CPU for nothing saved. Measured: "
        "docs/performance.md.",
        default="none",
        choices=("none", "fast", "small"),
    ),
    Option(
        "s2k_count",
        "integer",
        "Mode symmetric: how many times gpg hashes the passphrase into each volume's key (its "
        "S2K count; unset: gpg-agent's calibration, 65011712 on the test machine, about 0.3 s "
        "of CPU per volume at backup and at restore). Lower makes both faster and makes each "
        "guess of the passphrase by someone holding the volumes as much cheaper: lower it only "
        "with a long random passphrase (docs/performance.md says what it buys).",
        minimum=1024,
    ),
)

SWIFT = (
    Option(
        "auth_version",
        "choice",
        "Swift authentication: 1 (tempauth, Rackspace Cloud Files) or 3 (Keystone v3).",
        default="1",
        choices=("1", "3"),
    ),
    Option("auth_url", "string", "Authentication URL.", example="https://keystone.example:5000/v3"),
    Option(
        "username", "string", "User name (v1: account:user for tempauth).", example="test:tester"
    ),
    Option("password", "secret", "Password or API key."),
    Option("user_domain_name", "string", "Keystone v3 user domain name.", example="Default"),
    Option("user_domain_id", "string", "Keystone v3 user domain id."),
    Option("project_name", "string", "Keystone v3 project (tenant) name.", example="backups"),
    Option("project_id", "string", "Keystone v3 project id."),
    Option("project_domain_name", "string", "Keystone v3 project domain name.", example="Default"),
    Option("project_domain_id", "string", "Keystone v3 project domain id."),
    Option("region_name", "string", "Region whose object-store endpoint is used."),
    Option(
        "interface",
        "choice",
        "Catalog interface of the object-store endpoint.",
        default="public",
        choices=("public", "internal", "admin"),
    ),
    Option("application_credential_id", "string", "Keystone application credential id."),
    Option("application_credential_secret", "secret", "Keystone application credential secret."),
    Option("cloud", "string", "Name of a cloud in clouds.yaml (instead of the keys above)."),
)

RETENTION = (
    Option(
        "keep_full",
        "integer",
        "Keep this many full backups (and their incrementals); older chains are removed "
        f"(duplicity remove-all-but-n-full). When no rule is set, {DEFAULT_KEEP_FULL} applies.",
        minimum=1,
    ),
    Option(
        "keep_incrementals_of_full",
        "integer",
        "Keep incrementals only for the newest N full backups (remove-all-inc-of-but-n-full).",
        minimum=1,
    ),
    Option(
        "remove_older_than",
        "duration",
        "Remove backup sets older than this (remove-older-than), e.g. 6M.",
        example="6M",
    ),
    Option(
        "after_backup",
        "boolean",
        "Apply retention after every successful backup, as dt-cf-backup.sh did.",
        default=True,
    ),
)

PROFILE = (
    Option("source", "path", "Directory to back up (the old ROOT).", default=REQUIRED, example="/"),
    Option(
        "target",
        "string",
        "Where backups go: swift://container[/prefix], cf+http://container (Rackspace, mapped to "
        "swift v1), or any other duplicity URL such as file:///srv/backup.",
        default=REQUIRED,
        example="swift://backups/web1",
    ),
    Option(
        "include",
        "list",
        "Paths or duplicity glob patterns to include. When any is given, everything else under "
        "source is excluded.",
        default=[],
        example=["/etc", "/home"],
    ),
    Option(
        "exclude",
        "list",
        "Paths or glob patterns to exclude. Excludes are matched before includes (first match "
        "wins), the rule of dt-cf-backup.sh.",
        default=[],
        example=["**/.cache"],
    ),
    Option(
        "split_chains",
        "boolean",
        "One duplicity chain per include root, each under its own sub-prefix of target: "
        "backups, restores, verify, list and retention run the chains side by side on several "
        "cores, and a restore takes what it needs from each. Every include must then be a "
        "plain path under source, none inside another. Changing it starts new chains; the old "
        "ones stay at the target until removed (docs/performance.md).",
        default=False,
    ),
    Option(
        "parallel",
        "integer",
        "With split_chains: how many duplicity processes run at once (0: one per CPU).",
        default=0,
        minimum=0,
    ),
    Option(
        "full_if_older_than",
        "duration",
        "Start a new full backup when the last full is older than this.",
        default="14D",
    ),
    Option(
        "volsize",
        "integer",
        "Volume size in MB. Restoring one file downloads and decrypts each volume it is in: "
        "50 makes that about 2x faster than duplicity's 200, for ~20% more time on a full with "
        "a passphrase (gpg derives the key again for each volume; docs/performance.md).",
        default=50,
        minimum=1,
    ),
    Option(
        "restore_prefetch",
        "integer",
        "Swift targets: volumes a restore fetches ahead, two at a time, each checked and "
        "decrypted before duplicity reads it, while it restores (duplicity alone downloads and "
        "decrypts one volume at a time). Uses up to this many volumes of space under state_dir. "
        "0: duplicity downloads itself (docs/performance.md).",
        default=4,
        minimum=0,
    ),
    Option(
        "archive_dir",
        "path",
        "duplicity's local cache of manifests and signatures.",
        default="~/.cache/cfbackup/duplicity",
    ),
    Option("name", "string", "duplicity --name (cache subfolder); the profile name when unset."),
    Option("tempdir", "path", "Temporary directory for duplicity (large files go there)."),
    Option(
        "verbosity",
        "choice",
        "duplicity's verbosity in the run log.",
        default="notice",
        choices=("error", "warning", "notice", "info", "debug"),
    ),
    Option(
        "extra_options",
        "list",
        "Extra duplicity options, appended last (one option per list item, bind values with =).",
        default=[],
        example=["--num-retries=3"],
    ),
    Option(
        "disable_plugins",
        "list",
        "Names of plugins not to run for this profile (see cfbackup plugins).",
        default=[],
    ),
    Option("encryption", "table", "Encryption.", children=ENCRYPTION),
    Option(
        "swift", "table", "Swift credentials (for swift:// and cf+http:// targets).", children=SWIFT
    ),
    Option("retention", "table", "What old backups to remove.", children=RETENTION),
)

TOP = (
    Option(
        "state_dir",
        "path",
        "Where locks, run logs and the run history live.",
        default="~/.local/state/cfbackup",
    ),
    Option("log_dir", "path", "Where each run's log file goes; state_dir/logs when unset."),
    Option(
        "defaults",
        "table",
        "Options merged into every profile (a profile's own win).",
        children=PROFILE,
    ),
    Option("profiles", "table", "One table per profile: [profiles.NAME].", children=PROFILE),
)


def secret_keys(option: Option) -> tuple[str, ...]:
    return tuple(option.name + suffix for suffix in SECRET_SOURCES)


def with_plugin_sections(sections: dict[str, tuple[Option, ...]]) -> tuple[Option, ...]:
    """The profile schema plus the sections contributed by plugins."""
    extra = tuple(
        Option(name, "table", f"Settings of the {name} plugin.", children=options)
        for name, options in sorted(sections.items())
    )
    return PROFILE + extra
