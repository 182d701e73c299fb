"""What prune says before it removes anything: its dry run names exactly the chains duplicity's
own dry run of each rule lists and removes nothing; keep_all prunes nothing and says why (real
Swift, duplicity, gpg)."""

from __future__ import annotations

import json
import subprocess
import time

from support.cli import BIN
from support.stores import admin_connection, full_backups, object_names
from support.trees import make_awkward_tree


def test_keep_all_prunes_nothing_and_says_why(
    tmp_path, make_config, cfbackup, local_swift, container
):
    """Three fulls, more than the default rule (keep 2 fulls) keeps: with keep_all neither the
    backups' own retention nor prune removes one."""
    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    config = make_config(source=src, more="[profiles.main.retention]\nkeep_all = true\n")
    for _ in range(3):
        assert cfbackup("-c", config, "backup", "--full").returncode == 0
        time.sleep(1.1)
    before = object_names(local_swift, container)
    assert full_backups(before, "host1/") == 3, before

    result = cfbackup("-c", config, "prune")
    assert result.returncode == 0, result
    assert "nothing removed: profile main keeps every backup (retention.keep_all = true)" in (
        result.output
    )
    result = cfbackup("-c", config, "prune", "--dry-run", "--json")
    assert result.returncode == 0, result
    assert json.loads(result.stdout)["chains"] == []
    assert object_names(local_swift, container) == before


# duplicity's own dry run of each retention rule (no --force): the chains it lists, by end time
DUPLICITY_DRY_RUN = r"""
import json, sys
from cfbackup.cli.context import CliContext
from cfbackup.config import load_config
from cfbackup.duplicity import commands
from cfbackup.duplicity.environment import duplicity_environment
from cfbackup.duplicity.run import run_duplicity
profile = load_config(sys.argv[1], CliContext().plugin_sections()).profile(None)
listed = {}
for rule in commands.retention_rules(profile):
    result = run_duplicity(
        lambda fd: commands.retention_argv(profile, rule, dry_run=True, log_fd=fd),
        duplicity_environment(profile),
    )
    head = "Found old backup chain(s) at the following time:"
    notices = [r.message for r in result.records_with("NOTICE") if r.message.startswith(head)]
    lines = notices[0].splitlines()[1:-1] if notices else []
    listed[" ".join(rule)] = [line.strip() for line in lines if line.strip()]
print(json.dumps(listed))
"""


def test_prune_dry_run_lists_what_prune_removes_and_removes_nothing(
    tmp_path, make_config, cfbackup, cli_env, local_swift, container
):
    """Three chains of a full and an incremental each; keep 2 fulls, the incrementals of 1:
    the dry run names the oldest chain (rule 1) and the middle chain's incremental (rule 2),
    as duplicity's own dry run lists them, removes nothing, and is what prune then removes."""
    from duplicity import dup_time

    src = make_awkward_tree(tmp_path / "src", big_mb=0)
    more = (
        "[profiles.main.retention]\nafter_backup = false\nkeep_full = 2\n"
        "keep_incrementals_of_full = 1\n"
    )
    config = make_config(source=src, more=more)
    for n in range(3):
        assert cfbackup("-c", config, "backup", "--full").returncode == 0
        time.sleep(1.1)
        (src / f"new {n}").write_text(f"changed {n}\n")
        assert cfbackup("-c", config, "backup").returncode == 0
        time.sleep(1.1)
    before = object_names(local_swift, container)

    result = cfbackup("-c", config, "prune", "--dry-run")
    assert result.returncode == 0, result
    assert "dry run: prune would remove 3 backup set(s)" in result.stdout, result
    assert "nothing was removed" in result.stdout, result
    assert "duplicity remove-all-but-n-full 2: would remove 2 backup set(s):" in result.stdout
    assert "duplicity remove-all-inc-of-but-n-full 1: would remove 1 backup set(s):" in (
        result.stdout
    )
    assert object_names(local_swift, container) == before

    result = cfbackup("-c", config, "prune", "--dry-run", "--json")
    assert result.returncode == 0, result
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True and plan["sets"] == 3, plan
    (chain,) = plan["chains"]
    first, second = chain["rules"]
    assert [s["type"] for s in first["sets"]] == ["full", "inc"], first
    assert [s["type"] for s in second["sets"]] == ["inc"], second
    listing = admin_connection(local_swift).get_container(container, full_listing=True)[1]
    sizes = {o["name"]: o["bytes"] for o in listing}
    named = [n for s in first["sets"] + second["sets"] for n in s["names"]]
    assert len(named) == len(set(named)) == plan["objects"]
    assert plan["bytes"] == sum(sizes[f"host1/{n}"] for n in named) > 0

    # duplicity's own dry run of each rule (on the target as it is) lists the same chains;
    # its second rule also lists the chain the first one removes
    completed = subprocess.run(
        [str(BIN / "python"), "-c", DUPLICITY_DRY_RUN, str(config)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    listed = json.loads(completed.stdout)

    def chain_ends(rule):
        return {dup_time.timetopretty(dup_time.stringtotime(s["chain_end"])) for s in rule["sets"]}

    assert set(listed[first["rule"]]) == chain_ends(first) and len(chain_ends(first)) == 1
    assert set(listed[second["rule"]]) - chain_ends(first) == chain_ends(second)
    assert len(listed[second["rule"]]) == 2

    history = json.loads(cfbackup("-c", config, "history", "--json").stdout)
    newest = history[0]
    assert newest["action"] == "prune" and newest["message"].startswith("dry run: "), newest
    assert newest["stats"]["dry_run"] is True, newest

    # prune removes exactly what the dry run named
    assert cfbackup("-c", config, "prune").returncode == 0
    after = object_names(local_swift, container)
    assert set(before) - set(after) == {f"host1/{n}" for n in named}
