"""Docs that tests keep honest: exit codes, hooks, the config reference, dependencies."""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

from cfbackup import hookspecs
from cfbackup.cli.context import CliContext
from cfbackup.config import load_config
from cfbackup.config.reference import render_reference
from cfbackup.errors import EXIT_CODE_MEANINGS, ExitCode

DOCS = Path(__file__).resolve().parents[2] / "docs"
REPO = DOCS.parent


def test_exit_code_table_matches_the_enum():
    rows = re.findall(r"^\| (\d+) \| (\w+) \| (.+) \|$", (DOCS / "exit-codes.md").read_text(), re.M)
    documented = {int(code): (name, meaning) for code, name, meaning in rows}
    assert documented == {int(c): (c.name, EXIT_CODE_MEANINGS[c]) for c in ExitCode}


def test_every_hook_is_documented_with_its_signature():
    text = (DOCS / "plugins.md").read_text()
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction):
        if not name.startswith("cfbackup_"):
            continue
        params = ", ".join(inspect.signature(function).parameters)
        assert f"### `{name}({params})`" in text, f"{name} is not documented in docs/plugins.md"
        assert function.__doc__, f"{name} has no docstring"


def test_config_reference_is_generated_from_the_schema():
    expected = render_reference(CliContext().plugin_sections())
    assert (DOCS / "config-reference.md").read_text() == expected, (
        "docs/config-reference.md is stale: run .venv/bin/cfbackup config reference "
        "> docs/config-reference.md"
    )


def test_example_configs_are_valid(tmp_path):
    sections = CliContext().plugin_sections()
    example = tmp_path / "example.toml"
    example.write_text((REPO / "conf" / "example.toml").read_text())
    config = load_config(example, sections)
    assert set(config.profiles) == {"system", "home"}


def test_every_dependency_is_explained():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    text = (DOCS / "dependencies.md").read_text().lower()
    for requirement in project["dependencies"]:
        name = re.split(r"[<>=;\[ ]", requirement, maxsplit=1)[0].lower()
        assert name in text, f"docs/dependencies.md does not say why {name} is there"


def test_every_builtin_plugin_has_a_page():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for name in project["entry-points"]["cfbackup"]:
        assert (DOCS / "plugins" / f"{name}.md").exists(), f"docs/plugins/{name}.md is missing"


def test_every_test_the_docs_cite_exists():
    """docs/reliability.md and the others cite the test that proves each promise
    (``test_file.py::test_name``): a renamed or deleted test must not leave a proof that is
    not there."""
    cited = {
        (found[1], found[2])
        for path in [*DOCS.rglob("*.md"), REPO / "README.txt"]
        for found in re.finditer(r"(test_\w+\.py)::(test_\w+)", path.read_text())
    }
    assert cited, "the docs cite no test: the pattern no longer matches"
    files = {p.name: p for p in (REPO / "tests").rglob("test_*.py")}
    missing = [
        f"{name}::{test}"
        for name, test in sorted(cited)
        if name not in files or not re.search(rf"^(async )?def {test}\(", files[name].read_text(),
                                              re.M)
    ]
    assert not missing, f"cited in docs/ but not in tests/: {missing}"
