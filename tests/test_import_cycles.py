"""No import cycle between the modules of one package (function-level imports included).

The layer contract keeps packages pointing down, but says nothing inside a package: there two
modules that import each other (even through a third, even inside a function) can be read only
together, and which one runs first decides what the other sees at import time. Each package's
direct children (a module, or a subpackage taken as a whole) must form an acyclic graph.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (the dev extra)")

ROOT = "chestxai"


def _child_of(package: str, module: str) -> str | None:
    """The direct child of ``package`` that ``module`` is or lies in (None: outside it, or it)."""
    prefix = package + "."
    if not module.startswith(prefix):
        return None
    return prefix + module[len(prefix) :].split(".")[0]


def package_edges(graph, package: str) -> dict[str, set[str]]:
    """Imports between ``package``'s direct children: ``{child: {children it imports}}``."""
    edges: dict[str, set[str]] = defaultdict(set)
    for module in graph.find_descendants(package):
        source = _child_of(package, module)
        for imported in graph.find_modules_directly_imported_by(module):
            target = _child_of(package, imported)
            if target is not None and target != source:
                edges[source].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _chain(graph, members: list[str]) -> str:
    """One import chain that closes the cycle, for the failure message."""
    a, b = members[0], members[1]
    there = graph.find_shortest_chains(importer=a, imported=b, as_packages=True)
    back = graph.find_shortest_chains(importer=b, imported=a, as_packages=True)
    return " ; ".join(" -> ".join(c) for c in [*sorted(there)[:1], *sorted(back)[:1]])


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(ROOT, cache_dir=None)


def test_cycles_finds_a_cycle_through_a_third_module() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []


def test_no_package_has_an_import_cycle_between_its_modules(graph) -> None:
    packages = sorted(m for m in graph.modules if graph.find_children(m))
    assert "chestxai.metrics" in packages and "chestxai.data" in packages
    problems = [
        f"{package}: {', '.join(members)} ({_chain(graph, members)})"
        for package in packages
        for members in cycles(package_edges(graph, package))
    ]
    assert not problems, "import cycles inside packages:\n" + "\n".join(problems)
