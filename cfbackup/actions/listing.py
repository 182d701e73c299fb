"""``cfbackup list``: the files in a backup (latest or at ``--time``)."""

from __future__ import annotations

from cfbackup import chains, stores
from cfbackup.actions.common import (
    chains_at_time,
    duplicity,
    prepare,
    require_target,
    target_view,
    when_of,
)
from cfbackup.duplicity import commands, machinelog
from cfbackup.runtypes import Run, RunResult
from cfbackup.units import pasteable


def run_list(run: Run) -> RunResult:
    # one login and one listing of the target for the checks
    with target_view(run, retries=stores.request_retries(run.profile)):
        return _list(run)


def _list(run: Run) -> RunResult:
    profile = run.profile
    when_of(run)  # a mistyped --time is a usage error, not a duplicity failure
    require_target(run)
    env = prepare(run, need_secret_key=True)
    chain_list = chains_at_time(run, chains.of(profile), env)

    def listing(chain: chains.Chain) -> list[dict]:
        result = duplicity(
            run,
            lambda fd: commands.list_argv(chain.profile, time=run.options.get("time"), log_fd=fd),
            env,
        )
        notices.extend(
            r.message for r in result.records_with("NOTICE") if r.message.startswith(NOTICES)
        )
        return [
            entry
            for r in result.records_with("INFO", machinelog.INFO_FILE_LIST)
            if (entry := parse_file_entry(r.extra))
        ]

    notices: list[str] = []
    parts = [p for p in chains.run_each(profile, chain_list, listing, skip_empty=True) if p]
    if len(chain_list) == 1:
        entries = parts[0] if parts else []
    else:  # the roots' parent folders are in every chain: the newest of each path, in order
        newest: dict[str, dict] = {}
        for entry in (e for part in parts for e in part):
            if entry["path"] not in newest or entry["time"] > newest[entry["path"]]["time"]:
                newest[entry["path"]] = entry
        entries = [newest[path] for path in sorted(newest, key=_path_order)]
    data: list | dict = entries
    if run.options.get("duplicity_notices"):  # dt-cf-backup -l prints them as duplicity did
        data = {"entries": entries, "notices": list(dict.fromkeys(notices))}
    return RunResult(
        profile=profile.name,
        action="list",
        data=data,
        message=f"{len(entries)} entries in the backup of {profile.name}",
    )


# the notices list-current-files prints before the files: the archive dir's sync, then the date
NOTICES = (
    "Local and Remote metadata are synchronized",
    "Synchronizing remote metadata",
    "Deleting local ",
    "Copying ",
    "Last full backup date:",
)


def _path_order(path: str) -> tuple[str, ...]:
    return () if path == "." else tuple(path.split("/"))


def parse_file_entry(extra: str) -> dict | None:
    """``20261126T022239Z 'sub/b c.txt' reg`` -> time, path, type; and ``path_shell``, the
    form ``list`` prints, for a name it cannot print as it is (``units.pasteable``).

    duplicity writes the name with ``util.escape`` (``unicode-escape``: ASCII, lossless); a
    byte that is not UTF-8 comes back as os.fsdecode spells it (``\\udce9``)."""
    timestamp, _, rest = extra.partition(" ")
    path_part, _, kind = rest.rpartition(" ")
    path = machinelog.file_name(path_part)
    entry = {"time": timestamp, "path": path, "type": kind}
    if (shown := pasteable(path)) != path:
        entry["path_shell"] = shown
    return entry
