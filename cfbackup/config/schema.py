"""The config schema: every option's type, default, allowed values and description, once.

Validation (``validate.py``), the commented sample (``cfbackup config sample``) and the
reference page (``docs/config-reference.md``, checked by a test) are all derived from this.
Plugins contribute their own sections through the ``cfbackup_config_schema`` hook.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from cfbackup.duplicity.times import FORMATS as TIME_FORMATS
from cfbackup.execute import NETWORK_ENV

REQUIRED = object()  # marker: the option has no default and must be given

DURATION_RE = re.compile(r"^(now|\d+[smhDWMY](\d+[smhDWMY])*|\d{4}-\d{2}-\d{2}(T[\d:]+Z?)?)$")


@dataclasses.dataclass(frozen=True)
class Option:
    """One config key. ``kind`` is one of: string, integer, boolean, list, duration, time,
    choice, path, secret, table. A ``time`` goes to duplicity, and is read with duplicity's
    own parser when the config is loaded (``duplicity/times.py``). A ``secret`` may also be
    given as ``NAME_env``, ``NAME_file`` or ``NAME_command``; inline it forces the file to be
    mode 0600."""

    name: str
    kind: str
    description: str
    default: Any = None
    example: Any = None
    choices: tuple[str, ...] = ()
    children: tuple[Option, ...] = ()
    minimum: int | None = None
    maximum: int | None = None

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
        "GPG key ids or fingerprints to encrypt to (mode pubkey). A backup needs the public key "
        "of each, usable (not expired or revoked); a restore needs the secret key of any one "
        "(e.g. an offsite escrow key's), as gpg does, expired or revoked or not.",
        default=[],
        example=["0x1234ABCD"],
    ),
    Option(
        "sign_key",
        "string",
        "GPG key that signs the backup (optional): its key ID or fingerprint, 8, 16 or 40 hex "
        "digits (0x and spaces allowed). duplicity's restore refuses a volume without its good "
        "signature, and so do verify --read-data and drills. A backup needs its secret key, a "
        "restore its public key, neither expired nor revoked.",
        example="0x1234ABCD",
    ),
    Option("gpg_home", "path", "GNUPGHOME holding the keys; gpg's default when unset."),
    Option(
        "compress_level",
        "integer",
        'gpg compression level for backups: "auto", or 0 (none) to 9. "auto" compresses at '
        "level 1 when the Swift is across a network (the fastest of a few small requests "
        "sent beside the checks before a backup takes 10 ms or more) and a sample of the "
        "files it backs up (an incremental: those changed since the last backup) compresses "
        "to 90% or less; otherwise 0, so a nearby Swift gets the fastest "
        "full (about 2x faster than duplicity's default, 6) and a distant one fewer bytes "
        "(level 1 stores about what duplicity's default stores, level 0 about 1.5x that on "
        "mixed data). The run's log says what it chose and why; a number pins it "
        "(docs/performance.md).",
        default="auto",
        choices=("auto",),
        minimum=0,
        maximum=9,
    ),
    Option(
        "gpg_options",
        "string",
        "More gpg options, passed with duplicity --gpg-options after the compression level (a "
        "--compress-level here wins). The old scripts' GPG_OPTIONS.",
        example="--cipher-algo=AES256",
    ),
)

SWIFT = (
    Option(
        "auth_version",
        "choice",
        "Swift authentication: 1 (tempauth, Rackspace Cloud Files) or 3 (Keystone v3), "
        'as a number or a string ("3").',
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
        "Which storage endpoint: with v3, the catalog interface of the object-store endpoint; "
        "with v1, internal is Rackspace ServiceNet (the storage host prefixed with snet-, as "
        "RACKSPACE_SERVICENET=True did).",
        default="public",
        choices=("public", "internal", "admin"),
    ),
    Option(
        "retries",
        "integer",
        "How many times swiftclient retries a request that failed on the network or with a "
        "5xx (not one that timed out: that is tried once, each timeout counting; duplicity's "
        "--timeout, 30 s in cfbackup's own client), with a back-off of 1, 2, 4... s, before "
        "duplicity, or cfbackup's own downloads "
        "(restore, verify --read-data, drill), count it one failed try and wait "
        "--backend-retry-delay for the next (--num-retries tries). Unset: 5 in duplicity "
        "(about 31 s per try), 3 in cfbackup's downloads (about 7 s). Lower it to give up "
        "sooner on a Swift that is gone, raise it to ride out longer outages "
        "(docs/reliability.md).",
        example=2,
        minimum=0,
        maximum=10,
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
        "time",
        "Remove backup sets older than this (duplicity remove-older-than), e.g. 6M: "
        f"{TIME_FORMATS}, as duplicity reads it (a value it would not read is refused when "
        "the config is loaded).",
        example="6M",
    ),
    Option(
        "after_backup",
        "boolean",
        "Apply retention after every successful backup, as dt-cf-backup.sh did. Never after "
        "a partial backup (files it could not read, an include root missing): those files may "
        "be only in the backups retention would remove; it runs after the next complete backup.",
        default=True,
    ),
    Option(
        "keep_all",
        "boolean",
        "Remove no backup, ever: no retention after backups, and cfbackup prune removes "
        "nothing (the old CLEAN_UP_TYPE=none). Not with the rules above.",
        default=False,
    ),
)

SCHEDULE = (
    Option(
        "cron",
        "string",
        "When to run, as a 5-field cron expression (minute hour day-of-month month "
        "day-of-week, local time; names, ranges, steps and @daily-style aliases allowed). "
        "Give cron or interval, not both.",
        example="30 2 * * *",
    ),
    Option(
        "interval",
        "duration",
        "Run every so often instead (s, m, h, D, W; e.g. 6h). In the daemon the first run "
        "comes one interval after it starts.",
        example="6h",
    ),
    Option(
        "jitter",
        "duration",
        "Delay each run by a random time up to this much, so that many hosts do not start at "
        "once (systemd RandomizedDelaySec).",
        example="10m",
    ),
    Option(
        "misfire_grace_time",
        "duration",
        "A run that could not start on time (daemon stopped, machine asleep) still starts when "
        "it is late by at most this much; missed runs are coalesced into one. Waiting for "
        "--max-parallel is not lateness (see max_wait).",
        default="1h",
    ),
    Option(
        "max_wait",
        "duration",
        "How long a run waits for its turn. For another run of the same profile to finish "
        "(its backup, drill or verify due at the same time): daemon, systemd and cron "
        "(CFBACKUP_LOCK_WAIT), 6h when unset; past it the run is skipped with exit 4. In the "
        "daemon also for a free --max-parallel slot (unset: however long the runs before it "
        "take); past it the run is skipped and logged as missed (it runs at its next time).",
        example="4h",
    ),
    Option("enabled", "boolean", "Set to false to keep the schedule but not run it.", default=True),
)

DRILL = (
    Option(
        "sample",
        "string",
        "What cfbackup drill restores when --sample is not given: a percentage of the files "
        "(2%), a size (200M) or a number of files (50 files), picked at random with large and "
        "small files both represented (docs/checks.md).",
        default="2%",
    ),
    Option(
        "max_duration",
        "duration",
        "Stop a drill after this long (s, m, h, D, W; e.g. 30m) when --max-duration is not "
        "given; it passes on the files it checked and says how far it got.",
        example="30m",
    ),
    *SCHEDULE,
)

VERIFY = (
    Option(
        "read_data",
        "string",
        "What the scheduled cfbackup verify reads: --read-data=THIS (n/t, next/t, x%, a size "
        "or all; next/7 on a daily schedule reads every volume once a week). Empty: "
        "duplicity's own verify instead.",
        default="next/7",
    ),
    *SCHEDULE,
)

PROFILE = (
    Option("source", "path", "Directory to back up (the old ROOT).", default=REQUIRED, example="/"),
    Option(
        "target",
        "string",
        "Where backups go: swift://container[/prefix] (the legacy cf+http://container is "
        "mapped to swift v1 by config migrate), or a local directory by its absolute path, "
        "file:///srv/backup (three slashes: file://srv/backup, which duplicity reads under "
        "the folder cfbackup runs in, is refused, naming the folders its backups went to; a "
        "legacy DEST so is kept, with a warning); other duplicity backends (S3, sftp, ...) are "
        "refused. Each "
        "profile has its own: two profiles whose targets are one place, or a target at a "
        "split_chains profile's chain prefix (TARGET/SLUG), are refused, since each one's fulls "
        "and retention would delete the other's backups; targets only nested (swift://c/a and "
        "swift://c/a/b) are fine.",
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
        "time",
        'Start a new full backup when the last full is older than this; "never": only when '
        "there is none or --full is given (a legacy file without --full-if-older-than). "
        f"Otherwise {TIME_FORMATS}, as duplicity --full-if-older-than reads it (a value it "
        "would not read is refused when the config is loaded).",
        default="14D",
        choices=("never",),
    ),
    Option(
        "volsize",
        "integer",
        'Volume size in MB: "auto", or a number. Restoring one file downloads and decrypts each '
        'volume it is in. "auto" is 50 nearby, which makes such a restore about 2x faster than '
        "duplicity's 200. When the Swift is across a network (the round trip compress_level "
        '"auto" measures: 10 ms or more) that download is most of a one-file restore and its '
        "time is the link's rate: each volume is then 20 MB while the backup's uploads run at "
        "100 Mbit/s or more, else 10 MB (a 20 MB volume: 3.5 s at 48 Mbit/s). The rate is the "
        "uploads' (each volume's bytes over its PUT's time, round trip included), not the "
        "downloads'. A backup starts with the size the last backup's upload rate gives (10 MB "
        "when none measured one). A volume costs a key derivation with a passphrase (0.2-0.3 s "
        "of CPU, started ahead, beside the volume before) and an object (docs/performance.md). "
        "The run's log says what it chose and why, and the rate the uploads ran at.",
        default="auto",
        choices=("auto",),
        minimum=1,
    ),
    Option(
        "upload_workers",
        "integer",
        "Backups: processes that upload volumes while duplicity builds the next (duplicity "
        '--concurrency): "auto", or 0 (none) to 8. "auto" is 1 when the Swift is across a '
        'network (the round trip compress_level "auto" measures: 10 ms or more), where '
        "uploading a volume takes about as long as building one; else 0. They start only "
        "when a backup has a second volume (about 0.5 s of CPU and 40 MB of memory each), so "
        "a one-volume incremental starts none; they pay with several volumes (volsize). The "
        "run's log says what it chose and why; a --concurrency in extra_options wins "
        "(docs/performance.md).",
        default="auto",
        choices=("auto",),
        minimum=0,
        maximum=8,
    ),
    Option(
        "restore_prefetch",
        "integer",
        "Swift targets: volumes a restore fetches ahead, two at a time, each checked and "
        "decrypted before duplicity reads it, while it restores (duplicity alone downloads and "
        "decrypts one volume at a time). Uses up to this many volumes of space under tempdir "
        "(else state_dir). 0: duplicity downloads itself (docs/performance.md).",
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
        "duplicity's verbosity in the run log. Never below what cfbackup reads: a backup runs "
        "at warning at least (unreadable files), verify at notice (its differences).",
        default="notice",
        choices=("error", "warning", "notice", "info", "debug"),
    ),
    Option(
        "extra_options",
        "list",
        "Extra duplicity options, one per list item, values bound with =. They come last, "
        "except selection options (--exclude-if-present, --exclude-other-filesystems, ...), "
        "which duplicity applies in order: they come before exclude and include.",
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
    Option(
        "drill",
        "table",
        "cfbackup drill's defaults, and its schedule (cron or interval: run by the scheduler "
        "plugin, like [schedule]).",
        children=DRILL,
    ),
    Option(
        "drill_from_nothing",
        "table",
        "A scheduled cfbackup drill --from-nothing (cron or interval: run by the scheduler "
        "plugin): the drill from the newest recovery kit alone, in a throw-away HOME and "
        "keyring, with [drill]'s sample and max_duration; proves the kit (docs/checks.md). "
        "Rarer than [drill]: it downloads the signatures and volumes it needs every time.",
        children=SCHEDULE,
    ),
    Option(
        "verify",
        "table",
        "A scheduled cfbackup verify (cron or interval: run by the scheduler plugin), by "
        "default a rotating slice of --read-data.",
        children=VERIFY,
    ),
)

_NETWORK_HELP = {
    "http_proxy": "Proxy for http:// URLs (the Swift, Keystone and cloud API endpoints).",
    "https_proxy": "Proxy for https:// URLs (the Swift, Keystone and cloud API endpoints).",
    "no_proxy": "Comma-separated hosts and domains reached without the proxy.",
    "requests_ca_bundle": "CA bundle (PEM file) trusted for HTTPS: a private cloud's own CA.",
    "ssl_cert_file": "CA bundle (PEM file) trusted for HTTPS by OpenSSL's default.",
    "ssl_cert_dir": "Folder of CA certificates (hashed names) trusted for HTTPS.",
}
_NETWORK_EXAMPLE = {
    "http_proxy": "http://proxy.example:3128",
    "https_proxy": "http://proxy.example:3128",
    "no_proxy": "localhost,127.0.0.1,.internal.example",
    "REQUESTS_CA_BUNDLE": "/etc/ssl/private-cloud-ca.pem",
}

TOP = (
    Option(
        "state_dir",
        "path",
        "Where locks, run logs and the run history live.",
        default="~/.local/state/cfbackup",
    ),
    Option("log_dir", "path", "Where each run's log file goes; state_dir/logs when unset."),
    Option(
        "environment",
        "table",
        "How this host reaches the cloud, set for every run: cfbackup's own requests and "
        "duplicity's follow these (over the environment cfbackup was started in). A legacy "
        "file's exports of them are read into this table, as dt-cf-backup.sh passed them to "
        "duplicity.",
        children=tuple(
            Option(name, "string", _NETWORK_HELP[name.lower()], example=_NETWORK_EXAMPLE.get(name))
            for name in NETWORK_ENV
        ),
    ),
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
