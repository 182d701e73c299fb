"""``cfbackup verify PROFILE --read-data[=SUBSET]``: download and decrypt volumes and check
each against its manifest, without the source.

Every complete backup set at the target counts (every chain, not only the newest: an older
chain is what ``restore --time`` reads). SUBSET picks the volumes (``sampling.py``); the
seed of a random pick and the slice are kept in the run history, so a run can be repeated and
``next/t`` knows where the previous run stopped. A missing, corrupt or undecryptable volume
(or manifest) is named, and the run exits 8.
"""

from __future__ import annotations

import logging
import random
import time

from cfbackup import chains, history, sampling, stores, suggest, volume_fetch, volume_keys, volumes
from cfbackup.actions.common import left_out_text, prepare, roots_without_backup, scratch
from cfbackup.duplicity import commands, names
from cfbackup.errors import CfbackupError, ExitCode, NoBackupFound, VerifyDifferences
from cfbackup.progress import human_bytes
from cfbackup.runtypes import Run, RunResult

log = logging.getLogger("cfbackup")


def parse(text: str | None) -> sampling.Subset:
    try:
        return sampling.parse_subset(text)
    except ValueError as error:
        raise CfbackupError(
            f"--read-data: {error}; a profile goes before it: cfbackup verify PROFILE "
            "--read-data[=SUBSET].",
            exit_code=ExitCode.USAGE,
        ) from None


def run_read_data(run: Run) -> RunResult:
    try:
        return _read_data(run)
    except CfbackupError as error:  # the history tells a failed read-data from a plain verify
        error.stats = {"read_data": run.options.get("read_data") or "all", **error.stats}
        raise


def _read_data(run: Run) -> RunResult:
    profile = run.profile
    subset = parse(run.options.get("read_data"))
    if run.options.get("time"):
        raise CfbackupError(
            "--read-data checks every backup set at the target: leave out --time.",
            exit_code=ExitCode.USAGE,
        )
    if subset.kind == "slice" and subset.n is None:
        subset = sampling.Subset("slice", n=_next_slice(run, subset.t), t=subset.t)
    seed = int(run.options.get("seed") or random.SystemRandom().randrange(2**32))
    env = prepare(run, need_secret_key=True, keep_manifests=False)  # runs no duplicity: no sync
    keys = volume_keys.Keys.for_profile(profile, env)
    started = time.monotonic()

    bad: list[str] = []
    every: list[tuple[stores.Store, volumes.VolumeRef]] = []
    unchecked = 0  # the volumes of sets whose manifest is lost: nothing to check them against
    empty: list[str] = []  # split_chains: include roots with no backup at the target
    for chain in chains.of(profile):
        store = stores.open_store(chain.profile, run.target_view)
        found = volumes.backup_sets(store, naming=names.of(chain.profile), chain=chain.slug)
        for lost in volumes.lost_manifests(found):
            bad.append(volumes.lost_manifest_problem(lost, store))
            unchecked += len(lost.volumes)
        sets = volumes.complete(found)
        if chain.root and not sets:
            empty.append(chain.label)
        unreadable = volumes.read_manifests(store, sets, keys)
        bad += [f"the manifest {s.manifest} of the {s.label}: {s.problem}" for s in unreadable]
        every += [(store, ref) for s in sets if s.info is not None for ref in s.volume_refs()]
    left_out = roots_without_backup(run, profile, empty)
    if not every and not bad:
        raise NoBackupFound(
            f"no backup of profile {profile.name} at {profile.target}: run a backup first or "
            "check the profile's target."
        )
    chosen = sampling.choose_volumes(
        every,
        subset,
        random.Random(seed),
        key=lambda item: item[1].key,
        size=lambda item: item[1].size or 0,
    )
    outcomes: list[volume_fetch.Outcome] = []
    by_store: dict[int, list] = {}
    for store, ref in chosen:
        by_store.setdefault(id(store), [store, []])[1].append(ref)
    with scratch(run, "read-data") as folder:
        for store, refs in by_store.values():
            outcomes += volume_fetch.fetch(
                store,
                refs,
                folder,
                keys=keys,
                keep=False,
                retry=commands.retry_policy(run.profile),
                action="verify",
            )
    bad += [o.describe() for o in outcomes if not o.ok]
    checked = sum(o.bytes for o in outcomes)
    stats = {
        "read_data": subset.describe(),
        "slice": f"{subset.n}/{subset.t}" if subset.kind == "slice" else None,
        "seed": seed if subset.kind in ("percent", "size") else None,
        "volumes_total": len(every) + unchecked,
        "volumes_checked": len(outcomes),
        "bytes_checked": checked,
        "bad_volumes": bad,
    }
    if left_out:
        stats["roots_without_backup"] = left_out
    what = (
        f"{len(outcomes)} of {len(every) + unchecked} volume(s) ({subset.describe()}"
        + (f", seed {seed}" if stats["seed"] is not None else "")
        + f", {human_bytes(checked)} in {time.monotonic() - started:.0f} s)"
    )
    if bad:
        error = VerifyDifferences(
            f"verify --read-data of {profile.name} found {len(bad)} bad volume(s) among {what}: "
            + "; ".join(bad[:5])
            + (f"; and {len(bad) - 5} more (cfbackup history --json)" if len(bad) > 5 else "")
            + ": restores that need them will fail; start a sound chain with "
            + suggest.command("backup", profile.name, "--full")
            + ".",
            stats=stats,
        )
        raise error
    return RunResult(
        profile=profile.name,
        action="verify",
        stats=stats,
        message=f"verify --read-data of {profile.name} passed: {what} downloaded, decrypted and "
        "matching their manifests" + left_out_text(left_out),
    )


def _next_slice(run: Run, t: int) -> int:
    """The slice after the one the last ``--read-data`` run with the same t read (1 at first)."""
    for row in history.runs(run.config.state_dir, run.profile.name, limit=500):
        stats = row.get("stats") or {}
        if row["action"] == "verify" and stats.get("slice") and row["result"] is not None:
            n, _, total = stats["slice"].partition("/")
            if total == str(t) and n.isdigit():
                return int(n) % t + 1
    return 1
