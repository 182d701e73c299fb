"""Hostile input: whatever a config file holds, cfbackup answers with a ConfigError or a valid
config, never another exception, and never runs what a value says."""

from __future__ import annotations

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfbackup.config import build_config
from cfbackup.config.load import read_raw
from cfbackup.errors import ConfigError

values = st.recursive(
    st.none().map(lambda _: "")
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["$(touch /tmp/cfbackup-pwned)", "`id`", "; rm -rf /", "**", "/", "-x"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
keys = st.sampled_from(
    [
        "source",
        "target",
        "include",
        "exclude",
        "volsize",
        "encryption",
        "swift",
        "retention",
        "full_if_older_than",
        "name",
        "bogus",
        "extra_options",
        "disable_plugins",
        "verbosity",
    ]
)
profiles = st.dictionaries(keys, values, max_size=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=10), profiles, max_size=3), values)
def test_random_structures_validate_or_fail_clearly(profile_map, state_dir):
    raw = {"profiles": profile_map, "state_dir": state_dir}
    try:
        build_config(raw, path=None)
    except ConfigError as error:
        assert error.message and "\n" not in error.message[:200]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_random_bytes_as_a_file(tmp_path, data):
    path = tmp_path / "c.toml"
    path.write_bytes(b"[profiles.p]\n" + data)
    try:
        raw, kind, _ = read_raw(path)
        build_config(raw, path=path, kind=kind)
    except ConfigError:
        pass


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=60))
def test_shell_metacharacters_in_native_values_reach_duplicity_verbatim(tmp_path, text):
    """A value never passes through a shell: an accepted pattern is one item of duplicity's
    argv, byte for byte (no expansion, no splitting). That no shell runs it is proven by a
    real backup and restore: tests/end_to_end/test_failures.py::
    test_pattern_is_never_run_by_a_shell."""
    from cfbackup.duplicity.commands import backup_argv

    pattern = f"{tmp_path}/$(touch {tmp_path}/pwned){text}"
    raw = {
        "profiles": {
            "p": {
                "source": str(tmp_path),
                "target": f"file://{tmp_path}/t",
                "exclude": [pattern, f"{tmp_path}/`id`{text}"],
                "encryption": {"mode": "none"},
            }
        }
    }
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(raw))
    try:
        read = read_raw(path)
        config = build_config(read[0], path=path, kind=read[1])
    except ConfigError:
        return
    argv = backup_argv(config.profiles["p"])
    assert f"--exclude={pattern}" in argv
    assert f"--exclude={tmp_path}/`id`{text}" in argv
