"""Backup sets at the target whose manifest only cfbackup's kept copy still holds.

When the target loses a set's manifest, ``actions.common.keep_lost_manifests`` copies the
archive dir's manifest to ``state_dir/kept-manifests/PROFILE/<chain slug>/`` before duplicity
deletes it. duplicity then takes the set for an incomplete one: ``cleanup`` deletes its volumes
and retention removes its chain once a newer full exists, though putting the kept manifest back
makes it restorable again. :func:`found` names such sets, with the put-back step, so cleanup and
retention refuse while one is at the target.
"""

from __future__ import annotations

import shlex
import urllib.parse
from pathlib import Path

from cfbackup import chains, stores
from cfbackup.duplicity import names
from cfbackup.duplicity.target import swift_target
from cfbackup.errors import CfbackupError


def folder(run, chain: chains.Chain) -> Path:
    """Where the kept manifests of ``chain`` are."""
    return run.config.state_dir / "kept-manifests" / run.profile.name / chain.slug


def put_back(chain: chains.Chain, kept: Path) -> str:
    """How to put the kept manifest ``kept`` back at the chain's target, as a command that
    runs as printed where cfbackup can give one (no encryption), else in words."""
    profile = chain.profile
    if profile["encryption"]["mode"] != "none":
        return (
            f"encrypt {kept} with the profile's gpg key or passphrase and put it at "
            f"{profile.target} as {kept.name}.gpg (docs/reliability.md, lost manifests)"
        )
    swift = swift_target(profile.target)
    if swift is not None:
        name = f"{swift.prefix}/{kept.name}" if swift.prefix else kept.name
        return (
            f"`swift upload --object-name {shlex.quote(name)} {shlex.quote(swift.container)} "
            f"{shlex.quote(str(kept))}`"
        )
    parsed = urllib.parse.urlsplit(profile.target)
    where = urllib.parse.unquote(parsed.netloc + parsed.path).rstrip("/")
    return f"`cp -- {shlex.quote(str(kept))} {shlex.quote(where + '/' + kept.name)}`"


def found(run) -> list[str]:
    """One sentence for each set at the target (swift://, file://) that has volumes and no
    manifest while ``state_dir/kept-manifests`` holds its manifest, naming the put-back step;
    read from the run's target view when it has one (``actions.common.target_view``)."""
    from cfbackup import volumes

    result: list[str] = []
    if not stores.readable(run.profile.target):
        return result
    for chain in chains.of(run.profile):
        kept = {p.name: p for p in folder(run, chain).glob("*.manifest")}
        if not kept:
            continue
        try:
            sets = volumes.backup_sets(
                stores.open_store(chain.profile, run.target_view),
                naming=names.of(chain.profile),
                chain=chain.slug,
            )
        except (CfbackupError, OSError):  # duplicity will meet it and say so
            continue
        for backup_set in sets:
            if backup_set.manifest or not backup_set.volumes:
                continue
            volume = next(iter(backup_set.volumes.values()))
            copy = kept.get(volume[: volume.index(".vol")] + ".manifest")
            if copy is None:
                continue
            where = f" of chain {chain.label}" if chain.root else ""
            result.append(
                f"the {backup_set.label}{where} lost its manifest at {chain.profile.target} "
                f"(duplicity takes it for an incomplete backup and would delete it) but its "
                f"manifest is kept at {copy}: put it back with {put_back(chain, copy)}"
            )
    return result


def refusal(held: list[str]) -> str:
    """The end of cleanup's and prune's refusal while :func:`found` names ``held``."""
    return (
        "; ".join(held)
        + ", then run the same command again (to give that backup up instead, delete the kept "
        "copy)."
    )
