"""Module boundaries: no import cycles between skillplan's parts, the data layer below the envs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Where each installed package's sources live (pyproject's package-dir mapping).
SOURCES = {"skillplan": ROOT / "skillplan", "skillplan.envs": ROOT / "envs", "skillplan.cli": ROOT / "cli"}


def _modules() -> dict[str, Path]:
    modules = {}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            name = ".".join([package, *parts])
            if package == "skillplan" and name.startswith(("skillplan.envs", "skillplan.cli")):
                continue
            modules[name] = path
    return modules


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The skillplan modules `name` imports anywhere in its source, function bodies included."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in known and m != name}


def _part(module: str) -> str:
    """The unit the boundaries are drawn between: a subpackage, or a benchmarking module."""
    parts = module.split(".")
    return module if parts[1:2] == ["benchmarking"] else ".".join(parts[:2])


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def _part_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {_part(m) for m in _imports(name, path, set(modules))}
        graph.setdefault(_part(name), set()).update(targets - {_part(name)})
    return graph


def test_the_scan_sees_the_known_dependencies():
    graph = _part_graph()
    assert "skillplan.data" in graph["skillplan.envs"]  # envs build on the data layer
    assert "skillplan.benchmarking.report" in graph["skillplan.benchmarking.suite"]
    assert {"skillplan.agents", "skillplan.pretrain"} <= graph["skillplan.cli"]  # imports inside functions


def test_skillplans_parts_import_each_other_without_cycles():
    assert _cycles(_part_graph()) == []


@pytest.mark.parametrize(("graph", "cycle"), [
    ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_the_cycle_finder_finds_cycles(graph, cycle):
    assert _cycles(graph) == cycle


def test_importing_skillplan_data_loads_no_scripted_demonstrator():
    code = ("import sys, skillplan.data; "
            "print(sorted(m for m in sys.modules if m.startswith(('skillplan.envs.generate', "
            "'skillplan.envs.scripted', 'skillplan.envs.skill_env'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
