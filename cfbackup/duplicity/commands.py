"""Pure functions from a profile to duplicity's argv: one place builds every command line.

Nothing here reads the environment or runs anything, so tests compare exact tuples. Secrets never
appear here: they travel in the environment (``environment.py``).
"""

from __future__ import annotations

from cfbackup import upload_workers, volume_size
from cfbackup.config.model import Profile
from cfbackup.config.schema import DEFAULT_KEEP_FULL
from cfbackup.duplicity import options
from cfbackup.duplicity.flags import flag, repeated
from cfbackup.duplicity.target import duplicity_url

DUPLICITY = "duplicity"
VERBOSITY = {
    "error": "error",
    "warning": "warning",
    "notice": "notice",
    "info": "info",
    "debug": "debug",
}


# duplicity retries a failed backend request 5 times, 30 s apart, and swiftclient already
# retries each attempt for about 30 s: a Swift outage meant 277 s of silence before the run
# failed (measured). cfbackup's defaults bound that to about 2 minutes and tell the user about
# each failed attempt; a profile's extra_options
# (appended last, and the last occurrence wins) still override them. docs/reliability.md.
RETRY_FLAGS = ("--num-retries=3", "--backend-retry-delay=10")


def retry_policy(profile: Profile) -> tuple[int, float]:
    """(tries, seconds between them) duplicity makes of a backend request (``--num-retries`` is
    the number of tries, duplicity's backend.retry): RETRY_FLAGS, or the
    profile's extra_options where they set ``--num-retries``/``--backend-retry-delay`` (the
    last one wins, as in duplicity). What cfbackup's own downloads (restore prefetch) follow."""
    values = dict(f.split("=", 1) for f in RETRY_FLAGS)
    for name in values:
        value = (options.last_value(list(profile["extra_options"]), name) or "").strip()
        if value.isdigit():
            values[name] = value
    return max(1, int(values["--num-retries"])), float(values["--backend-retry-delay"])


# duplicity's levels, quietest first: --verbosity N lets through what is at N or louder
LEVELS = tuple(VERBOSITY)


def verbosity(profile: Profile, at_least: str = "error") -> str:
    """The profile's verbosity, raised to ``at_least``: a command whose outcome cfbackup reads
    from duplicity's records at that level (verify's "Verify complete" and "Difference found"
    are notices) needs them whatever the profile's verbosity, which only trims the run log."""
    level = profile["verbosity"]
    return VERBOSITY[max(level, at_least, key=LEVELS.index)]


def common_flags(
    profile: Profile, log_fd: int | None = None, *, at_least: str = "error"
) -> tuple[str, ...]:
    """Options every duplicity command of this profile takes."""
    return (
        *RETRY_FLAGS,
        *flag("--archive-dir", str(profile.archive_dir)),
        *flag("--name", profile.backup_name),
        *flag("--verbosity", verbosity(profile, at_least)),
        *flag("--log-fd", log_fd),
        *flag("--tempdir", profile.get("tempdir")),
        *encryption_flags(profile),
    )


def encryption_flags(profile: Profile) -> tuple[str, ...]:
    enc = profile["encryption"]
    if enc["mode"] == "none":
        return ("--no-encryption",)
    level = enc["compress_level"]
    if level == "auto":  # a backup decides it (cfbackup/compression.py); other commands decrypt
        level = 0
    gpg_options = " ".join(filter(None, (f"--compress-level={level}", enc.get("gpg_options"))))
    return (
        *repeated("--encrypt-key", enc["encrypt_keys"] if enc["mode"] == "pubkey" else ()),
        *flag("--sign-key", enc.get("sign_key")),
        *flag("--gpg-options", gpg_options),
    )


# the staging folders of ``restore --force`` (restore_merge.py): one left by a restore
# killed with -9, or kept by a merge that stopped part-way, is never backed up
STAGE_PREFIX = ".cfbackup-restore-"
STAGING_GLOB = f"**/{STAGE_PREFIX}*"
STAGING_EXCLUDE = f"--exclude={STAGING_GLOB}"


def selection_flags(profile: Profile) -> tuple[str, ...]:
    """Selection options from extra_options, excludes, includes, then everything else excluded
    when includes exist; a restore's staging folders before the excludes.

    duplicity applies the first matching rule; this is the order dt-cf-backup.sh emitted (its
    STATIC_OPTIONS came before the excludes).
    """
    includes = profile["include"]
    return (
        *(o for o in profile["extra_options"] if options.is_selection(o)),
        STAGING_EXCLUDE,
        *repeated("--exclude", profile["exclude"]),
        *repeated("--include", includes),
        *(("--exclude=**",) if includes else ()),
    )


def extra_flags(profile: Profile) -> tuple[str, ...]:
    """extra_options but the selection ones (those are in :func:`selection_flags`)."""
    return tuple(o for o in profile["extra_options"] if not options.is_selection(o))


def upload_flags(profile: Profile) -> tuple[str, ...]:
    """``--concurrency=N``: duplicity's upload processes (``upload_workers``). None for 0, for
    "auto" not yet decided (a backup decides it: ``cfbackup/upload_workers.py``), and when
    extra_options set ``--concurrency`` (they win)."""
    workers = profile["upload_workers"]
    if workers == "auto" or not workers or upload_workers.from_extra_options(profile) is not None:
        return ()
    return (f"--concurrency={workers}",)


def backup_argv(
    profile: Profile, *, full: bool = False, dry_run: bool = False, log_fd: int | None = None
) -> tuple[str, ...]:
    return (
        DUPLICITY,
        "full" if full else "backup",
        # files it could not read are warnings: the backup is partial, retention skipped
        *common_flags(profile, log_fd, at_least="warning"),
        *selection_flags(profile),
        *(() if full else flag("--full-if-older-than", _full_if_older_than(profile))),
        *flag("--volsize", volume_size.argv_value(profile)),
        *upload_flags(profile),
        *flag("--dry-run", dry_run),
        *extra_flags(profile),
        str(profile.source),
        duplicity_url(profile.target),
    )


def verify_argv(
    profile: Profile,
    *,
    compare_data: bool = False,
    time: str | None = None,
    log_fd: int | None = None,
) -> tuple[str, ...]:
    return (
        DUPLICITY,
        "verify",
        *common_flags(profile, log_fd, at_least="notice"),  # its summary is a notice
        *selection_flags(profile),
        *flag("--compare-data", compare_data),
        *flag("--time", time),
        *extra_flags(profile),
        duplicity_url(profile.target),
        str(profile.source),
    )


def restore_argv(
    profile: Profile,
    target_dir: str,
    *,
    path: str | None = None,
    time: str | None = None,
    force: bool = False,
    log_fd: int | None = None,
    only: str | None = None,
    owners: bool = True,
) -> tuple[str, ...]:
    """``only``: a file listing archive paths (NUL-separated, taken literally, not as globs):
    restore just those (duplicity 3.2 applies selection to a restore of the whole backup).
    ``owners``: give entries their owners (``restore_target.can_chown``: only a process that
    may), else duplicity leaves them to the restorer and still sets modes and times."""
    return (
        DUPLICITY,
        "restore",
        *common_flags(profile, log_fd),
        *flag("--path-to-restore", path),
        *(
            (
                "--filter-literal",
                "--null-separator",
                f"--include-filelist={only}",
                "--filter-globbing",
                "--exclude=**",
            )
            if only
            else ()
        ),
        *flag("--time", time),
        *flag("--force", force),
        *flag("--no-restore-ownership", not owners),
        *extra_flags(profile),
        duplicity_url(profile.target),
        target_dir,
    )


def list_argv(profile: Profile, *, time: str | None = None, log_fd: int | None = None):
    return (
        DUPLICITY,
        "list-current-files",
        *common_flags(profile, log_fd),
        *flag("--time", time),
        *extra_flags(profile),
        duplicity_url(profile.target),
    )


def collection_status_argv(profile: Profile, *, log_fd: int | None = None) -> tuple[str, ...]:
    return (
        DUPLICITY,
        "collection-status",
        *common_flags(profile, log_fd),
        *extra_flags(profile),
        duplicity_url(profile.target),
    )


def _full_if_older_than(profile: Profile) -> str | None:
    """The --full-if-older-than value; None for "never" (duplicity then forces no full)."""
    value = profile["full_if_older_than"]
    return None if value == "never" else value


def retention_rules(profile: Profile) -> list[tuple[str, str]]:
    """The duplicity retention commands a profile asks for (the default rule when none; none
    with ``keep_all``)."""
    retention = profile["retention"]
    rules: list[tuple[str, str]] = []
    if retention.get("keep_all"):
        return rules
    if retention.get("remove_older_than"):
        rules.append(("remove-older-than", retention["remove_older_than"]))
    if retention.get("keep_full"):
        rules.append(("remove-all-but-n-full", str(retention["keep_full"])))
    if retention.get("keep_incrementals_of_full"):
        rules.append(("remove-all-inc-of-but-n-full", str(retention["keep_incrementals_of_full"])))
    if not rules:
        rules.append(("remove-all-but-n-full", str(DEFAULT_KEEP_FULL)))
    return rules


def retention_argv(
    profile: Profile, rule: tuple[str, str], *, dry_run: bool = False, log_fd: int | None = None
) -> tuple[str, ...]:
    """Without ``--force`` (a dry run) duplicity only lists the chains it would remove, in a
    notice ("Found old backup chain(s) at the following time")."""
    command, value = rule
    return (
        DUPLICITY,
        command,
        value,
        *common_flags(profile, log_fd, at_least="notice" if dry_run else "error"),
        *flag("--force", not dry_run),
        *extra_flags(profile),
        duplicity_url(profile.target),
    )


def cleanup_argv(
    profile: Profile, *, dry_run: bool = False, log_fd: int | None = None
) -> tuple[str, ...]:
    """Without ``--force`` (a dry run) duplicity only lists what it would delete, in a notice
    (the run log's answer to ``cleanup --dry-run``, whatever the profile's verbosity)."""
    return (
        DUPLICITY,
        "cleanup",
        *common_flags(profile, log_fd, at_least="notice"),
        *flag("--force", not dry_run),
        *extra_flags(profile),
        duplicity_url(profile.target),
    )
