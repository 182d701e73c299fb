"""Config loading: schema defaults, every problem at once, secrets, and the legacy reader."""

from __future__ import annotations

import textwrap

import pytest

from cfbackup import chains
from cfbackup.config import build_config, load_config
from cfbackup.config.legacy import load_legacy, normalize
from cfbackup.config.schema import PROFILE, REQUIRED
from cfbackup.config.secrets import resolve_secret
from cfbackup.errors import ConfigError
from cfbackup.redact import redact


def test_defaults_come_from_the_schema():
    config = build_config({"profiles": {"p": {"source": "/", "target": "file:///t"}}}, path=None)
    data = config.profiles["p"].data
    for option in PROFILE:
        if option.kind not in ("table",) and option.default not in (None, REQUIRED):
            assert data[option.name] == option.default
    assert data["encryption"]["mode"] == "symmetric"
    assert data["swift"]["auth_version"] == "1"


def test_defaults_table_is_merged_and_profile_wins():
    config = build_config(
        {
            "defaults": {"volsize": 75, "exclude": ["**/x"]},
            "profiles": {
                "a": {"source": "/", "target": "file:///a"},
                "b": {"source": "/", "target": "file:///b", "volsize": 10},
            },
        },
        path=None,
    )
    assert config.profiles["a"]["volsize"] == 75 and config.profiles["b"]["volsize"] == 10
    assert config.profiles["b"]["exclude"] == ["**/x"]


def test_all_problems_reported_together():
    with pytest.raises(ConfigError) as error:
        build_config(
            {
                "profiles": {
                    "p": {"target": 5, "volsize": 0, "bogus": 1, "encryption": {"mode": "x"}}
                }
            },
            path=None,
        )
    message = error.value.message
    for part in (
        "profiles.p.source: required",
        "profiles.p.target: expected a string",
        "profiles.p.volsize: must be at least 1",
        "profiles.p.bogus: unknown key",
        "profiles.p.encryption.mode: 'x' is not one of",
    ):
        assert part in message


def test_unknown_key_names_the_close_match():
    with pytest.raises(ConfigError) as error:
        build_config(
            {
                "profiles": {
                    "p": {
                        "source": "/",
                        "target": "swift://c",
                        "swift": {"auth_ulr": "http://x", "usrname": "u", "zzz": 1},
                    }
                }
            },
            path=None,
        )
    message = error.value.message
    assert "profiles.p.swift.auth_ulr: unknown key: did you mean auth_url?" in message
    assert "profiles.p.swift.usrname: unknown key: did you mean username?" in message
    assert "profiles.p.swift.zzz: unknown key (allowed here:" in message  # nothing close


def test_secret_given_twice_is_an_error():
    with pytest.raises(ConfigError, match="give only one of"):
        build_config(
            {
                "profiles": {
                    "p": {
                        "source": "/",
                        "target": "file:///t",
                        "encryption": {"passphrase_env": "A", "passphrase_file": "/f"},
                    }
                }
            },
            path=None,
        )


def test_inline_secret_requires_private_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[profiles.p]\nsource = "/"\ntarget = "file:///t"\n'
        '[profiles.p.encryption]\npassphrase = "inline-pass"\n'
    )
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600") as error:
        load_config(path)
    assert "inline-pass" not in error.value.message
    path.chmod(0o600)
    assert load_config(path).profiles["p"]


def test_secret_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_SECRET", "from-env-secret")
    assert resolve_secret({"p_env": "MY_SECRET"}, "p", "x") == "from-env-secret"
    secret = tmp_path / "s"
    secret.write_text("from-file-secret\n")
    assert resolve_secret({"p_file": str(secret)}, "p", "x") == "from-file-secret"
    assert resolve_secret({"p_command": f"cat {secret}"}, "p", "x") == "from-file-secret"
    assert redact("it is from-env-secret and from-file-secret") == "it is *** and ***"
    with pytest.raises(ConfigError, match="NOT_SET_VAR, which is not set"):
        resolve_secret({"p_env": "NOT_SET_VAR"}, "p", "x")
    with pytest.raises(ConfigError, match="exited with code"):
        resolve_secret({"p_command": "false"}, "p", "x")
    with pytest.raises(ConfigError, match="was not found"):
        resolve_secret({"p_command": "$(touch /tmp/cfbackup-pwned)"}, "p", "x")


def test_legacy_reader_sources_bash(tmp_path):
    conf = tmp_path / "dt.conf"
    conf.write_text(
        textwrap.dedent("""\
        # comment
        ROOT=/srv
        DEST='cf+http://box'
        INCLIST=( "/srv/a b"   # inline comment
                  /srv/c
                  "$(echo /srv/d)" )
        EXCLIST=("/srv/a b/tmp")
        GPG_KEY=ABCDEF12
        PASSPHRASE="p@ss word"
        CLOUDFILES_USERNAME=me
        CLOUDFILES_APIKEY=key
        STATIC_OPTIONS="--full-if-older-than 1M --volsize 50 --num-retries 3"
        CLEAN_UP_TYPE=remove-older-than
        CLEAN_UP_VARIABLE=6M
        echo this output must not confuse the reader
        """)
    )
    raw, warnings = load_legacy(conf)
    profile = raw["profiles"]["dt-cf-backup"]
    assert profile["include"] == ["/srv/a b", "/srv/c", "/srv/d"]
    assert profile["exclude"] == ["/srv/a b/tmp"]
    assert profile["target"] == "swift://box"
    assert profile["swift"] == {
        "auth_version": "1",
        "username": "me",
        "password": "key",
        "auth_url": "https://auth.api.rackspacecloud.com/v1.0",
    }
    assert profile["encryption"] == {
        "mode": "pubkey",
        "encrypt_keys": ["ABCDEF12"],
        "sign_key": "ABCDEF12",  # dt-s3-backup.sh: --encrypt-key and --sign-key ${GPG_KEY}
        "passphrase": "p@ss word",
    }
    assert profile["full_if_older_than"] == "1M" and profile["volsize"] == 50
    assert profile["extra_options"] == ["--num-retries=3"]
    assert profile["retention"] == {"remove_older_than": "6M"}
    build_config(raw, path=None)  # the normalized form validates like a native config


def test_legacy_old_defaults_apply():
    raw, _ = normalize({"ROOT": "/", "DEST": "file:///x"})
    profile = raw["profiles"]["dt-cf-backup"]
    assert profile["full_if_older_than"] == "14D"
    assert profile["retention"] == {"keep_full": 2}
    assert profile["encryption"]["mode"] == "symmetric"


def test_legacy_broken_bash_is_a_config_error(tmp_path):
    conf = tmp_path / "dt.conf"
    conf.write_text('ROOT="/\nDEST=x\n')
    with pytest.raises(ConfigError, match="bash could not read this file"):
        load_legacy(conf)


def _two(first: dict, second: dict) -> list[str]:
    """The problems of a config of profiles a and b (mode none, one Swift account)."""
    swift = {"auth_url": "http://auth.example/auth/v1.0", "username": "u:v", "password_env": "K"}
    raw = {
        "profiles": {
            name: {"source": "/srv", "swift": swift, "encryption": {"mode": "none"}, **body}
            for name, body in (("a", first), ("b", second))
        }
    }
    try:
        build_config(raw, path=None)
    except ConfigError as error:
        return [str(error)]
    return []


@pytest.mark.parametrize(
    ("outer", "inner"),
    [
        ("file:///x/tgt", "file:///x/tgt/b"),
        ("swift://c/a", "swift://c/a/b"),
        ("swift://c", "swift://c/a"),
    ],
)
def test_nested_targets_are_apart(outer, inner):
    """They were refused at load (every scheduled backup of a config that worked stopped), but
    duplicity matches its names from the start of a file name in the target's own folder and
    lists Swift under prefix/ only: neither sees the other's backups."""
    assert _two({"target": outer}, {"target": inner}) == []
    assert _two({"target": inner}, {"target": outer}) == []
    split = {"target": outer, "split_chains": True, "include": ["/srv/db"]}
    assert _two(split, {"target": inner}) == []  # b is not at the chain's place


def test_a_profile_at_another_s_place_is_refused():
    assert (
        "profiles a and b both back up to swift://c/a"
        in _two({"target": "swift://c/a"}, {"target": "swift://c/a"})[0]
    )
    assert "are the same place" in _two({"target": "swift://c/a/"}, {"target": "swift://c//a"})[0]
    slug = chains.slug_of("db")
    split = {"target": "swift://c/a", "split_chains": True, "include": ["/srv/db", "/srv/www"]}
    for first, second in ((split, {"target": f"swift://c/a/{slug}"}),
                          ({"target": f"swift://c/a/{slug}/"}, split)):  # fmt: skip
        problems = _two(first, second)
        assert problems, (first, second)
        assert f"target swift://c/a/{slug}" in problems[0], problems
        assert "keeps its chain of /db (split_chains), so each one's full backups and " \
            "retention would delete the other's backups: give each profile its own container " \
            "or prefix (such as " in problems[0], problems  # fmt: skip


def test_the_legacy_profile_s_hint_gives_a_c_that_pastes_and_runs(tmp_path, monkeypatch):
    """``cfbackup status dt-cf-backup`` reading a native config says to add ``-c
    ~/.dt-cf-backup.conf``: the path was printed raw, so a HOME holding a space or a byte
    that is not UTF-8 gave a -c that did not paste and run."""
    import os
    import re
    import subprocess

    home = tmp_path / os.fsdecode(b"my home \xe9")
    home.mkdir()
    (home / ".dt-cf-backup.conf").write_text("ROOT=/\n")
    monkeypatch.setenv("HOME", str(home))
    config = build_config(
        {"profiles": {"web": {"source": "/", "target": "file:///t"}}}, path=tmp_path / "c.toml"
    )
    with pytest.raises(ConfigError) as raised:
        config.profile("dt-cf-backup")
    message = raised.value.message
    printed = re.search(r"add -c (.*) to the command\.$", message)[1]
    assert "\udce9" not in message  # the prose shows the byte as \xe9
    assert subprocess.run(["bash", "-c", f"test -f {printed}"]).returncode == 0, printed
