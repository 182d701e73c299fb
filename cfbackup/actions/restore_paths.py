"""The path a ``restore --path`` names: relative to the source, in one of the include roots,
and in the backup itself. A path that cannot be one is a usage error with the path the user
likely meant; one the backup does not hold is refused with the path of the backup it likely
means (``near_match``), before any volume downloads when duplicity's archive dir can say so
for certain (``refuse_absent``), else once duplicity found it missing.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import tarfile
import time
import zlib
from pathlib import Path, PurePosixPath

from cfbackup import chains, signatures, stores, suggest, volumes
from cfbackup.actions.common import removed_root_with_backups, same_command, when_of
from cfbackup.actions.restore_report import restore_command
from cfbackup.duplicity import names
from cfbackup.duplicity.times import as_typed_later
from cfbackup.errors import CfbackupError, ExitCode, PathNotInBackup
from cfbackup.runtypes import Run
from cfbackup.units import pasteable, printable_name


def target_of(options: dict) -> Path:
    """The restore's TARGET, absolute."""
    return Path(options["target"]).expanduser().absolute()


def relative_path(run: Run, path: str) -> str:
    """A path inside the backup, relative to the source; absolute paths under source accepted.
    Any other absolute path, or one with '..', is a mistake on the command line (exit 2): the
    message gives the relative form the user likely meant, when there is one."""
    source = PurePosixPath(str(run.profile.source))
    candidate = PurePosixPath(path)
    if candidate.is_absolute():
        try:
            candidate = candidate.relative_to(source)
        except ValueError:
            raise _bad_path(
                run, path, f"is not under the profile's source {printable_name(str(source))}"
            ) from None
    parts = [p for p in candidate.parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise _bad_path(run, path, "holds '..', which a path to restore may not")
    return "/".join(parts)


def _bad_path(run: Run, path: str, why: str) -> CfbackupError:
    """``--path PATH`` refused: ``why``, and the path relative to the source the user likely
    meant (``_meant``), with the restore that takes it (none for dt-cf-backup's exact
    destination)."""
    shown = printable_name(path)
    source = str(run.profile.source)
    meant = _meant(source, path)
    if meant is None:
        fix = f"give a path relative to the source, {printable_name(source)}"
    else:
        full = printable_name(str(PurePosixPath(source) / meant))
        fix = f"give it relative to the source: {pasteable(meant)} for {full}"
        options = getattr(run, "options", {})
        if options.get("target") and not options.get("exact_destination"):
            command = restore_command(run, target_of(options), meant, bool(options.get("force")))
            fix += f" ({command})"
    return CfbackupError(f"--path {shown} {why}: {fix}.", exit_code=ExitCode.USAGE)


def _meant(source: str, path: str) -> str | None:
    """The path relative to ``source`` that ``path`` likely means: under the folder the source
    resolves to (a source /srv that is a symlink to /data/srv, given /data/srv/www), else the
    path read as relative to the source (/etc/nginx: etc/nginx); None when that is nothing or
    leaves the source ('..' above it)."""
    candidate = PurePosixPath(path)
    if candidate.is_absolute():
        with contextlib.suppress(ValueError):
            return _meant(source, str(candidate.relative_to(os.path.realpath(source))))
        candidate = candidate.relative_to("/")
    meant = os.path.normpath(str(candidate))
    if meant in (".", "") or meant == ".." or meant.startswith("../"):
        return None
    return meant


def outside_roots(run: Run, rel: str) -> CfbackupError:
    """A --path in none of a split profile's include roots: a usage error (it was a target
    error, exit 12), which names the chain of a root removed from include that still holds
    it, and how to reach it."""
    profile = run.profile
    roots = ", ".join(f"/{c.root}" for c in chains.of(profile))
    shown = printable_name(rel)
    old = removed_root_with_backups(profile, rel)
    if old is None:
        return CfbackupError(
            f"{shown} is in none of the include roots backed up by profile {profile.name} "
            f"({roots}): give a path under one of them.",
            exit_code=ExitCode.USAGE,
        )
    folder = str(PurePosixPath(str(profile.source)) / old)
    return CfbackupError(
        f"{shown} is in none of the include roots of profile {profile.name} ({roots}), but the "
        f"backups of /{old} made before it was removed from include are still at the target "
        f"({chains.of_root(profile, old).profile.target}): add {folder} to include in "
        f"{run.config.path} for this restore, run {same_command(run)}, then remove it again.",
        exit_code=ExitCode.USAGE,
    )


def refuse_absent(run: Run, chain: chains.Chain, rel: str) -> None:
    """Refuse ``rel`` before any volume downloads when the backup a restore at --time reads
    certainly does not hold it (``_certainly_absent``); else leave it to duplicity, which
    reads a volume first (20 MB over a WAN) and says "not found in archive"."""
    held = _certainly_absent(run, chain, rel)
    if held is not None:
        raise not_in_backup(run, chain, rel, held)


# what reading a damaged local signature tar raises (a disk error, a copy cut short): the
# hints read from them are left out, never the refusal they go with
DAMAGED = (OSError, tarfile.TarError, EOFError, zlib.error)

HOLDS_SECONDS = 1.0  # at most this long spent reading signatures before a restore that works


def _certainly_absent(run: Run, chain: chains.Chain, rel: str) -> set[str] | None:
    """Every path of the backup a restore of ``chain`` at --time reads (for the near match)
    when ``rel`` is certainly not one of them, else None. Certain: duplicity's clear copies of
    the signature tars in the archive dir are those of the very sets of the target's chain at
    that time (its listing: one request), and say so within ``HOLDS_SECONDS``. Not: no or
    other local signatures (a new machine; a backup made elsewhere since, whose signatures a
    restore does not fetch), a target cfbackup does not read, a set without its manifest
    (duplicity reports it), or a backup too large to read in that time."""
    profile = chain.profile
    if not stores.readable(profile.target):
        return None
    when, naming = when_of(run), names.of(profile)
    sigtars = signatures.local_chain(profile.archive_dir / profile.backup_name, when, naming)
    if not sigtars:
        return None
    try:
        store = stores.open_store(profile, run.target_view)  # the run's one listing
        found = volumes.backup_sets(store, naming=naming, chain=chain.slug)
    except (CfbackupError, OSError):  # the restore says what is wrong with the target
        return None
    sets = volumes.chain_at(found, when)
    if not sets or any(not s.manifest for s in sets):
        return None
    remote = [(s.kind == "full", s.start if s.kind != "full" else None, s.end) for s in sets]
    local = []
    for sigtar in sigtars:
        parsed = naming.parse(sigtar.name)
        if parsed.type == "full-sig":
            local.append((True, None, parsed.time))
        else:
            local.append((False, parsed.start_time, parsed.end_time))
    if local != remote:
        return None
    try:
        if signatures.holds(sigtars, rel, within=HOLDS_SECONDS) is not False:
            return None
        return signatures.names(sigtars)
    except DAMAGED:  # a damaged copy: duplicity replaces it
        return None


def not_in_backup(
    run: Run, chain: chains.Chain, rel: str, held: set[str] | None = None
) -> PathNotInBackup:
    """``rel`` is not in the backup, and the path of it the user likely means
    (``near_match``) from ``held``, the backup's paths, or else from the archive dir's
    signature tars (synced by the restore that just failed: nothing is downloaded for it)."""
    profile = run.profile
    when = run.options.get("time")
    at = f" at --time {when}" if when else ""
    later = as_typed_later(when, when_of(run)) if when else None  # 3D: the moment it meant
    if held is None:
        try:
            sigtars = signatures.local_chain(
                chain.profile.archive_dir / chain.profile.backup_name,
                when_of(run),
                names.of(chain.profile),
            )
            held = signatures.names(sigtars) if sigtars else None
        except DAMAGED:  # duplicity's sync keeps a damaged copy of a set the target has
            held = None
    options = run.options
    # an earlier backup's path, unless the local signatures (stale) say this one holds it too
    try:
        earlier = None if held and rel in held else _held_earlier(run, chain, rel)
    except DAMAGED:
        earlier = None
    if earlier is not None:
        return earlier
    meant = near_match(rel, held) if held else None
    if meant is not None:
        again = "" if options.get("exact_destination") else (
            " (" + restore_command(run, target_of(options), meant, bool(options.get("force")))
            + ")"
        )  # fmt: skip
        fix = f"did you mean {pasteable(meant)}{again}? Every path it holds: "
    else:
        fix = "check the path against "
    return PathNotInBackup(
        f"{pasteable(rel)} is not in the backup of profile {profile.name}{at}: {fix}"
        f"{suggest.command('list', profile.name, *(('--time', later) if when else ()))}."
    )


def _held_earlier(run: Run, chain: chains.Chain, rel: str) -> PathNotInBackup | None:
    """``rel`` is not in the backup a restore at --time reads, but an earlier backup holds it
    (deleted or renamed since: the incident's own case), as the archive dir's signature tars
    say (``signatures.last_holding``): the refusal naming that backup, with the restore from
    it; None when they say nothing of it (a new machine before any list: no hint)."""
    profile, options = run.profile, run.options
    folder, naming = chain.profile.archive_dir / chain.profile.backup_name, names.of(chain.profile)
    found = signatures.last_holding(folder, rel, when_of(run), naming)
    if found is None:
        return None
    # never the very backup just said to lack it (or a later one): only one strictly before
    # the newest set of the chain the restore read, should two readings of the tars disagree
    local = signatures.local_chain(folder, when_of(run), naming)
    if local:
        newest = naming.parse(local[-1].name)
        if found >= (newest.time if newest.type == "full-sig" else newest.end_time):
            return None
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(found))
    shown = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(found))
    at = f" at --time {options['time']}" if options.get("time") else ""
    if options.get("exact_destination"):  # dt-cf-backup --restore-file/--restore-dir
        fix = f"restore it from there with {_old_restore(options, rel, stamp)}"
    else:
        command = restore_command(
            run, target_of(options), rel, bool(options.get("force")), when=stamp
        )
        fix = f"restore it from there with {command}"
    return PathNotInBackup(
        f"{pasteable(rel)} is not in the backup of profile {profile.name}{at}, but the backup "
        f"of {shown} holds it (it was deleted or renamed after that): {fix}."
    )


def _old_restore(options: dict, rel: str, when: str) -> str:
    """``dt-cf-backup [-c FILE] --restore-file|--restore-dir REL DEST --time WHEN``: the same
    restore at ``when``, to paste as it is printed (a ``rel`` starting with '-' as ``./-x``:
    argparse would take it for an option; the old file's -c only when it was given)."""
    flag = "--restore-dir" if options.get("restore_dir") else "--restore-file"
    config = options.get("legacy_config")
    words = [
        "dt-cf-backup",
        *(("-c", os.path.abspath(os.path.expanduser(config))) if config else ()),
        flag,
        f"./{rel}" if rel.startswith("-") else rel,
        str(target_of(options)),
        "--time",
        when,
        *(("--force",) if options.get("force") else ()),
    ]
    return " ".join(suggest.word(word) for word in words)


def near_match(rel: str, paths: set[str]) -> str | None:
    """The path of ``paths`` (a backup's) that ``rel``, which is not one of them, likely
    means: the one that differs only by case, else, under the deepest folder of ``rel`` the
    backup has, its entry whose name is closest to the next part of ``rel``."""
    if rel in paths:  # the signature tars say otherwise: no hint
        return None
    folded = [p for p in paths if p.casefold() == rel.casefold()]
    if len(folded) == 1:
        return folded[0]
    parts = rel.split("/")
    depth = len(parts) - 1
    while depth > 0 and "/".join(parts[:depth]) not in paths:
        depth -= 1
    parent = "/".join(parts[:depth])
    children = {
        p.rsplit("/", 1)[-1] for p in paths if p != "." and (p.rpartition("/")[0] == parent)
    }
    close = difflib.get_close_matches(parts[depth], sorted(children), n=1, cutoff=0.6)
    if not close:
        lower = {c.casefold(): c for c in children}
        close = [lower[parts[depth].casefold()]] if parts[depth].casefold() in lower else []
    if not close:
        return None
    whole = "/".join([*parts[:depth], close[0], *parts[depth + 1 :]])
    return whole if whole in paths else "/".join([*parts[:depth], close[0]])
