"""The layout docs/architecture.md describes, kept true: no import cycle among cfbackup/ and
plugins/ modules, no plugin importing another plugin, core importing no plugin, and every module
in the module map.

Imports are read statically (``ast``), at every level: module top, functions, ``try`` blocks and
``if TYPE_CHECKING:`` blocks alike. A function-level import still makes one module need the
other, and a type named under TYPE_CHECKING is a dependency too: ``hookspecs -> runner ->
plugins -> hookspecs`` was such a cycle. An edge goes to the module imported (``from a.b import
c`` is a.b.c when that is a module, else a.b), never implicitly to the parent packages Python
also runs.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARCHITECTURE = REPO / "docs" / "architecture.md"
# where importable modules live: (directory, the import-name prefix of the files in it)
ROOTS = ((REPO / "cfbackup", "cfbackup"), (REPO / "plugins", ""))


def modules(roots=ROOTS) -> dict[str, Path]:
    """Import name -> file of every module under ``roots``."""
    found = {}
    for base, prefix in roots:
        for path in sorted(base.rglob("*.py")):
            parts = [*([prefix] if prefix else []), *path.relative_to(base).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules in ``known`` that module ``name`` imports, wherever the import statement is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def nearest(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {nearest(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + [node.module or ""])
            else:
                base = node.module or ""
            base = base.strip(".")
            for alias in node.names:
                wanted = f"{base}.{alias.name}"
                found.add(wanted if wanted in known else nearest(base))
    found.discard(None)
    found.discard(name)
    return found


def graph(roots=ROOTS) -> dict[str, set[str]]:
    known = modules(roots)
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each import cycle, as a path that comes back to its first module (Tarjan's strongly
    connected components, then one shortest loop through each)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    loops = []
    for component in components:
        start = min(component)
        paths = {start: [start]}
        todo = [start]
        while todo:  # breadth first: the shortest way back to start
            here = todo.pop(0)
            for nxt in sorted(edges[here] & component):
                if nxt == start:
                    loops.append([*paths[here], start])
                    todo = []
                    break
                if nxt not in paths:
                    paths[nxt] = [*paths[here], nxt]
                    todo.append(nxt)
    return loops


def plugin_of(module: str) -> str | None:
    top = module.split(".")[0]
    return top if top.startswith("cfbackup_") else None


def test_no_import_cycle_among_cfbackup_and_plugins():
    found = cycles(graph())
    assert not found, "import cycles (docs/architecture.md says which way imports run):\n" + (
        "\n".join(" -> ".join(loop) for loop in found)
    )


def test_no_plugin_imports_another_plugin_and_core_imports_none():
    wrong = []
    for module, targets in graph().items():
        for target in sorted(targets):
            theirs = plugin_of(target)
            if theirs and theirs != plugin_of(module):
                wrong.append(f"{module} imports {target}")
    assert not wrong, (
        "a plugin may use core (cfbackup.*) and itself only; shared code belongs in core: "
        + "; ".join(wrong)
    )


def test_every_module_is_in_the_module_map():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([^`]+)` \|", text, re.M))
    files = [
        str(path.relative_to(REPO))
        for path in (
            *modules().values(),
            *(REPO / "bench").glob("*.py"),
            *(REPO / "scripts").glob("*.py"),
            *(REPO / "tests" / "support").rglob("*.py"),
        )
    ]
    missing = sorted(f for f in files if f not in listed)
    assert not missing, f"not in docs/architecture.md's module map (add one line each): {missing}"
    gone = sorted(f for f in listed if f.endswith(".py") and not (REPO / f).exists())
    assert not gone, f"docs/architecture.md lists modules that do not exist: {gone}"


@pytest.fixture
def tree(tmp_path):
    """A small package to check the checker on."""

    def write(files: dict[str, str]):
        for name, text in files.items():
            path = tmp_path / "pkg" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return graph(((tmp_path / "pkg", "pkg"),))

    return write


def test_the_checker_sees_function_level_relative_and_type_checking_imports(tree):
    edges = tree(
        {
            "__init__.py": "",
            "a.py": "def f():\n    from pkg import b\n",
            "b.py": "import typing\nif typing.TYPE_CHECKING:\n    from .sub.c import C\n",
            "sub/__init__.py": "",
            "sub/c.py": "from .. import a\nimport os\n",
            "d.py": "from pkg.sub import c\nimport pkg.a\n",
        }
    )
    assert edges["pkg.a"] == {"pkg.b"} and edges["pkg.b"] == {"pkg.sub.c"}
    assert edges["pkg.sub.c"] == {"pkg.a"} and edges["pkg.d"] == {"pkg.sub.c", "pkg.a"}
    assert cycles(edges) == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]
    assert plugin_of("cfbackup_notify.senders") == "cfbackup_notify"
    assert plugin_of("cfbackup.cloud") is None
