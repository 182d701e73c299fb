"""split_chains: one duplicity chain per include root, side by side, and every command works
across them as with one chain (real Swift, duplicity, gpg)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from urllib.parse import unquote

from support import proxylog
from support.cli import BIN
from support.trees import assert_same_tree, make_awkward_tree

from cfbackup import chains
from cfbackup.errors import ExitCode


def _tree(root):
    make_awkward_tree(root / "etc", big_mb=0)
    make_awkward_tree(root / "srv" / "www", big_mb=2, seed=11)
    (root / "other").mkdir()
    (root / "other" / "not backed up.txt").write_text("outside the include roots\n")
    return root


def _config(make_config, src, more=""):
    extra = f'include = ["{src}/etc", "{src}/srv/www"]\nsplit_chains = true\n'
    return make_config(source=src, extra=extra, more=more)


def _objects(local_swift, container):
    from swiftclient import client

    user, key = local_swift.users["admin"]
    conn = client.Connection(authurl=local_swift.auth_url, user=user, key=key, auth_version="1")
    return [o["name"] for o in conn.get_container(container, full_listing=True)[1]]


def test_each_root_is_its_own_chain_and_commands_work_across_them(
    tmp_path, make_config, cfbackup, local_swift, container
):
    src = _tree(tmp_path / "src")
    config = _config(make_config, src)
    result = cfbackup("-c", config, "backup")
    assert result.returncode == 0, result
    assert "(2 chains)" in result.stdout
    names = _objects(local_swift, container)
    for root in ("etc", "srv/www"):
        prefix = f"host1/{chains.slug_of(root)}/"
        assert any(n.startswith(prefix + "duplicity-full.") for n in names), (root, names)
    assert not any(n.startswith("host1/duplicity-") for n in names)  # nothing at the top
    logs = "".join(p.read_text() for p in (tmp_path / "state" / "logs").glob("*.log"))
    assert "Error in sitecustomize" not in logs and "Traceback" not in logs  # launcher, patches

    listing = json.loads(cfbackup("-c", config, "list", "--json").stdout)
    paths = [entry["path"] for entry in listing]
    assert paths.count(".") == 1 and paths.count("srv") == 1
    assert "etc/dir one/nested/deeper/leaf.conf" in paths and "srv/www/big.bin" in paths
    assert not any(p.startswith("other") for p in paths)
    assert paths == sorted(paths, key=lambda p: () if p == "." else tuple(p.split("/")))

    between = time.strftime("%Y-%m-%dT%H:%M:%S")  # after the full, before the incremental
    time.sleep(1.1)
    (src / "srv" / "www" / "plain.txt").write_text("changed after the full\n")
    skip = proxylog.length(local_swift)
    result = cfbackup("-c", config, "backup")
    assert result.returncode == 0, result
    # the passphrase check opens the first chain's manifest and hands it to that chain's
    # duplicity only (patches/handed_manifest.py): one GET of each chain's manifest
    requests = proxylog.requests_since(local_swift, skip)
    for root in ("etc", "srv/www"):
        prefix = f"/{container}/host1/{chains.slug_of(root)}/duplicity-full."
        gets = [p for m, p, _s in requests if m == "GET" and prefix in p and "manifest" in p]
        assert len(gets) == 1, (root, requests)

    out = tmp_path / "out"
    result = cfbackup("-c", config, "restore", "main", out)
    assert result.returncode == 0, result
    assert_same_tree(src / "etc", out / "etc")
    assert_same_tree(src / "srv" / "www", out / "srv" / "www")
    assert sorted(os.listdir(out)) == ["etc", "srv"]

    one = tmp_path / "one"
    result = cfbackup("-c", config, "restore", "main", one, "--path", "srv/www/plain.txt")
    assert result.returncode == 0, result
    assert (one / "srv" / "www" / "plain.txt").read_text() == "changed after the full\n"
    part = tmp_path / "part"  # a folder above the roots: each root under it, from its chain
    result = cfbackup("-c", config, "restore", "main", part, "--path", "srv")
    assert result.returncode == 0, result
    assert_same_tree(src / "srv" / "www", part / "srv" / "www")
    result = cfbackup("-c", config, "restore", "main", tmp_path / "x", "--path", "other")
    assert result.returncode == ExitCode.USAGE, result  # no target problem (it was 12)
    assert "in none of the include roots" in result.stderr
    assert not (tmp_path / "x").exists()

    assert cfbackup("-c", config, "verify").returncode == 0
    (src / "etc" / "plain.txt").write_text("edited, not backed up\n")
    result = cfbackup("-c", config, "verify", "--compare-data")
    assert result.returncode == ExitCode.VERIFY_DIFFERENCES, result
    assert "1 difference(s)" in result.stderr

    # cfbackup's own checks read both chains, a full and an incremental each
    result = cfbackup("-c", config, "verify", "--read-data")
    assert result.returncode == 0, result
    volumes = [n for n in _objects(local_swift, container) if ".difftar." in n]
    assert {n.split("/")[1] for n in volumes} == {chains.slug_of(r) for r in ("etc", "srv/www")}
    assert _history(tmp_path)[0]["stats"]["volumes_checked"] == len(volumes) >= 4
    drill = cfbackup("-c", config, "drill", "--sample", "100%", "--json")
    assert drill.returncode == 0, drill
    files = {f["path"]: f for f in json.loads(drill.stdout)["files"]}
    assert "etc/dir one/nested/deeper/leaf.conf" in files and "srv/www/big.bin" in files
    assert {f["status"] for f in files.values()} == {"match"}
    assert files["etc/plain.txt"]["reference"] == "signature"  # edited after the backup
    assert files["srv/www/plain.txt"]["reference"] == "source"  # as the incremental has it
    assert not any(p.startswith("other") for p in files)
    drill = cfbackup("-c", config, "drill", "--sample", "100%", "--time", between, "--json")
    assert drill.returncode == 0, drill  # the full backups alone: plain.txt as it was then
    files = {f["path"]: f for f in json.loads(drill.stdout)["files"]}
    assert files["srv/www/plain.txt"] == {
        "path": "srv/www/plain.txt", "size": 11, "status": "match", "reference": "signature",
        "reason": "",
    }  # fmt: skip

    skip = proxylog.length(local_swift)
    status = json.loads(cfbackup("-c", config, "status", "--json").stdout)
    assert sorted(c["root"] for c in status["chains"]) == ["/etc", "/srv/www"]
    assert status["last_incremental"] and not status["broken"]
    # each chain's objects are listed once (a round trip per 10,000 objects across a network)
    requests = [  # the proxy logs the path quoted, the query's values quoted once more
        unquote(unquote(p)) for m, p, _s in proxylog.requests_since(local_swift, skip) if m == "GET"
    ]
    for root in ("etc", "srv/www"):
        chain = f"prefix=host1/{chains.slug_of(root)}/&"
        listings = [p for p in requests if chain in p and "marker=" not in p]  # first pages
        assert len(listings) == 1, (root, requests)


def test_retention_and_cleanup_run_on_every_chain(tmp_path, make_config, cfbackup):
    src = _tree(tmp_path / "src")
    config = _config(make_config, src, more="[profiles.main.retention]\nkeep_full = 1\n")
    for _ in range(2):
        assert cfbackup("-c", config, "backup", "--full").returncode == 0
        time.sleep(1.1)
    status = json.loads(cfbackup("-c", config, "status", "--json").stdout)
    assert sorted(c["root"] for c in status["chains"]) == ["/etc", "/srv/www"]
    assert cfbackup("-c", config, "prune").returncode == 0
    assert cfbackup("-c", config, "cleanup").returncode == 0
    result = cfbackup("-c", config, "backup", "--full", env={"T_PASSPHRASE": "a typo"})
    assert result.returncode == ExitCode.CRYPTO, result  # checked once, against a chain
    assert "does not decrypt the backups" in result.stderr
    text = cfbackup("-c", config, "status").stdout
    assert "chain of /etc (" in text and "chain of /srv/www (" in text


def test_include_roots_that_cannot_be_chains_are_config_errors(tmp_path, make_config, cfbackup):
    src = _tree(tmp_path / "src")
    for include, says in (
        (f'["{src}/etc", "**/*.conf"]', "is a pattern, not a directory"),
        (f'["{src}/srv", "{src}/srv/www"]', "cannot nest"),
        ('["/elsewhere"]', "is not under source"),
        ("[]", "needs include roots"),
    ):
        config = make_config(source=src, extra=f"include = {include}\nsplit_chains = true\n")
        result = cfbackup("-c", config, "backup")
        assert result.returncode == ExitCode.CONFIG, result
        assert says in result.stderr, result
        check = cfbackup("-c", config, "check")
        assert check.returncode != 0 and says in check.output, check


def test_interrupting_a_split_backup_stops_every_chain(tmp_path, make_config, cli_env):
    """SIGTERM stops both duplicity processes (SIGINT, as for one chain), the run ends with
    the interrupted exit code, and the next backup completes."""
    src = tmp_path / "src"
    for root in ("etc", "srv/www"):
        (src / root).mkdir(parents=True)
        (src / root / "big.bin").write_bytes(os.urandom(40 * 1024 * 1024))
    config = _config(make_config, src, more="")
    process = subprocess.Popen(
        [str(BIN / "cfbackup"), "-c", str(config), "backup", "--full"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    children: list[int] = []
    while time.monotonic() < deadline and len(children) < 2:
        children = _duplicity_children(process.pid)
        time.sleep(0.1)
    assert len(children) == 2, "two duplicity processes should run side by side"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=90)
    assert process.returncode == ExitCode.INTERRUPTED, stderr
    assert "Traceback" not in stderr
    for pid in children:
        assert not os.path.exists(f"/proc/{pid}") or _zombie(pid), pid
    result = subprocess.run(
        [str(BIN / "cfbackup"), "-c", str(config), "backup"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


def _duplicity_children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue
        if int(fields[1]) == pid and b"duplicity" in cmdline:
            found.append(int(entry))
    return found


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_root_added_later_is_left_out_until_its_first_backup_and_named(
    tmp_path, make_config, cfbackup
):
    src = _tree(tmp_path / "src")
    config = _config(make_config, src)
    assert cfbackup("-c", config, "backup").returncode == 0
    time.sleep(1.1)  # duplicity's times have one-second resolution
    between = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
    time.sleep(1.1)
    config.write_text(
        config.read_text().replace(
            f'include = ["{src}/etc", "{src}/srv/www"]',
            f'include = ["{src}/etc", "{src}/srv/www", "{src}/other"]',
        )
    )
    out = tmp_path / "out"
    result = cfbackup("-c", config, "restore", "main", out)
    assert result.returncode == 9, result  # PARTIAL: a script must see that /other is missing
    assert "chain /other has no backup yet" in result.stderr
    assert "except /other: the target holds no backup of it" in result.stderr
    assert sorted(os.listdir(out)) == ["etc", "srv"]  # what was there is restored, and stays
    listing = json.loads(cfbackup("-c", config, "list", "--json").stdout)
    assert not any(e["path"].startswith("other") for e in listing)
    assert cfbackup("-c", config, "verify").returncode == 0
    assert cfbackup("-c", config, "backup").returncode == 0  # starts the new root's chain
    result = cfbackup("-c", config, "restore", "main", tmp_path / "o", "--path", "other")
    assert result.returncode == 0, result
    assert (tmp_path / "o" / "other" / "not backed up.txt").exists()
    # as of a time before the new root's first backup: left out, never its newer state
    # as a root with no backup yet is: exit 9 (PARTIAL), named in the result, not a success
    result = cfbackup("-c", config, "restore", "main", tmp_path / "then", "--time", between)
    assert result.returncode == ExitCode.PARTIAL, result
    assert "chain /other has no backup at or before --time" in result.stderr
    assert f"except /other: no backup of it at or before --time {between}" in result.stderr
    assert sorted(os.listdir(tmp_path / "then")) == ["etc", "srv"]
    result = cfbackup(
        "-c", config, "restore", "main", tmp_path / "t", "--path", "other", "--time", between
    )
    assert result.returncode == ExitCode.REFUSED, result
    # the oldest backup of /other's chain, not of the profile (/etc's is older)
    assert "is before the oldest backup of the chain of /other (the full backup of" in (
        result.stderr
    ), result
    assert not (tmp_path / "t").exists()


def _history(tmp_path):
    from cfbackup import history

    return history.runs(tmp_path / "state", "main")


def test_backups_from_before_a_layout_change_are_named_with_the_way_to_them(
    tmp_path, make_config, cfbackup
):
    """After split_chains is switched on, a --time before it said "there is no state that old"
    though the old chain is at the target; after a root is removed from include, a --path
    under it was a target error (12). Both now name the old backups and the command (with
    -c FILE) that reaches them, which runs as printed once the setting is switched back."""
    src = tmp_path / "src"
    for root in ("etc", "db"):
        (src / root).mkdir(parents=True)
        (src / root / "d").write_text(f"{root} before\n")
    extra = f'include = ["{src}/etc", "{src}/db"]\nsplit_chains = false\n'
    config = make_config(source=src, extra=extra)
    assert cfbackup("-c", config, "backup").returncode == 0
    time.sleep(1.1)
    before = time.strftime("%Y-%m-%dT%H:%M:%S")
    time.sleep(1.1)
    (src / "db" / "d").write_text("db after\n")
    text = config.read_text()
    config.write_text(text.replace("split_chains = false", "split_chains = true"))
    assert cfbackup("-c", config, "backup").returncode == 0

    out = tmp_path / "out"
    result = cfbackup("-c", config, "restore", "main", out, "--time", before)
    assert result.returncode == ExitCode.REFUSED, result
    assert "the backups made before split_chains was switched on are still at swift://" in (
        result.stderr
    ), result
    printed = f"cfbackup -c {config} restore main {out} --time {before}"
    assert f"set split_chains = false in {config} for this restore, run {printed}, then set " \
        "it back to true." in result.stderr, result  # fmt: skip
    config.write_text(text)  # split_chains = false, as the message says
    result = cfbackup(*printed.split()[1:])
    assert result.returncode == 0, result
    assert (out / "db" / "d").read_text() == "db before\n"

    # db removed from include (split_chains on): its chain is still at the target
    config.write_text(
        text.replace("split_chains = false", "split_chains = true").replace(f', "{src}/db"', "")
    )
    one = tmp_path / "one"
    result = cfbackup("-c", config, "restore", "main", one, "--path", "db/d")
    assert result.returncode == ExitCode.USAGE, result
    printed = f"cfbackup -c {config} restore main {one} --path db/d"
    assert "db/d is in none of the include roots of profile main (/etc), but the backups of " \
        "/db made before it was removed from include are still at the target (swift://" in (
            result.stderr
        ), result  # fmt: skip
    assert f": add {src}/db to include in {config} for this restore, run {printed}, then " \
        "remove it again." in result.stderr, result  # fmt: skip
    assert not one.exists()
    config.write_text(text.replace("split_chains = false", "split_chains = true"))
    result = cfbackup(*printed.split()[1:])
    assert result.returncode == 0, result
    assert (one / "db" / "d").read_text() == "db after\n"


def test_a_restore_into_the_current_folder_keeps_its_owner_and_mode(
    tmp_path, make_config, cli_env
):
    """``cd /srv/restore && cfbackup restore web .`` stages the restore inside the folder and
    merges it in. With split_chains the staged top folder is not from the backup (cfbackup made
    it, to hold each root): its owner, mode and times were copied onto the user's folder, an
    empty one owned by another user with mode 0750 became root's with 0755. The folder keeps
    its own now, as when the same restore is given its absolute path; with --force too, and
    so do the folders above a root."""
    src = _tree(tmp_path / "src")
    extra = f'include = ["{src}/etc", "{src}/srv/www"]\nsplit_chains = true\n'
    config = make_config(
        source=src, extra=extra, target=f"file://{tmp_path}/backups", encryption='mode = "none"'
    )
    here = tmp_path / "restore"
    here.mkdir()
    os.chown(here, 1234, 1234)
    here.chmod(0o750)

    def cfbackup(*args):
        done = subprocess.run([str(BIN / "cfbackup"), "-c", str(config), *args], cwd=here,
                              env=cli_env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def owner_and_mode(folder):
        info = folder.stat()
        return info.st_uid, info.st_gid, oct(info.st_mode & 0o7777)

    assert cfbackup("backup").returncode == 0
    for force in ([], ["--force"]):
        done = cfbackup("restore", "main", ".", *force)
        assert done.returncode == 0, done.stderr
        assert owner_and_mode(here) == (1234, 1234, "0o750")
        if force:  # srv, above the root srv/www, is the user's folder too
            assert owner_and_mode(here / "srv") == (1234, 1234, "0o700")
        else:
            os.chown(here / "srv", 1234, 1234)
            (here / "srv").chmod(0o700)
        assert_same_tree(src / "etc", here / "etc")
        assert_same_tree(src / "srv" / "www", here / "srv" / "www")
        assert sorted(os.listdir(here)) == ["etc", "srv"]
