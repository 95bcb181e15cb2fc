"""The import graph of the project's packages has no cycles, between packages or between modules.

Every `import` counts, also those inside functions and under `TYPE_CHECKING`: a lazy import hides a
cycle from the interpreter, not from the reader. The graph is read from the source with `ast`, so
nothing here is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("oci", "typedconfig", "registry", "storage_backends", "auth", "runtime", "dockyard", "bench")
# Which package may import which: the protocol code knows no server and no runtime, the runtime no server.
# auth and the storage backends own their typed options: neither reads the registry's config.
FORBIDDEN = {
    "oci": {"registry", "runtime", "auth", "storage_backends", "dockyard", "bench", "typedconfig"},
    "typedconfig": {"oci", "registry", "runtime", "auth", "storage_backends", "dockyard", "bench"},
    "auth": {"registry", "runtime", "storage_backends", "dockyard", "bench"},
    "runtime": {"registry", "auth", "storage_backends"},
    "registry": {"runtime"},
    "storage_backends": {"registry", "runtime", "auth", "oci"},
}
# Package edges known to remain, each named; none today.
KNOWN_PACKAGE_EDGES: set[tuple[str, str]] = set()

Graph = dict[str, set[str]]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _imported(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """The project modules `module` imports: `from a import b` means `a.b` when that is a module, else `a`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                yield f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target


def _resolve(name: str, known: set[str]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def module_graph() -> Graph:
    modules = _modules()
    known = set(modules)
    graph: Graph = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        for imported in _imported(tree, name, path.name == "__init__.py", known):
            target = _resolve(imported, known)
            if target is not None and target != name:
                graph[name].add(target)
    return graph


def package_graph(modules: Graph) -> Graph:
    graph: Graph = {package: set() for package in PACKAGES}
    for module, targets in modules.items():
        source = module.partition(".")[0]
        graph[source] |= {t.partition(".")[0] for t in targets} - {source}
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """Every strongly connected component with more than one node (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_graph_sees_top_level_and_lazy_imports() -> None:
    graph = module_graph()
    assert "registry.store" in graph["registry.app"]  # a top-level import
    assert "registry.gc" in graph["registry.app"]  # an import inside a function


def test_relative_imports_and_imported_submodules_resolve() -> None:
    known = {"p", "p.a", "p.b", "p.sub", "p.sub.a", "p.sub.c"}
    tree = ast.parse("from . import a\nfrom .b import thing\nfrom p.sub import c\nfrom p import x")
    assert set(_imported(tree, "p.sub.c", False, known)) == {"p.sub.a", "p.sub.b", "p.sub.c", "p"}
    tree = ast.parse("from .. import a\nfrom . import c")
    assert set(_imported(tree, "p.sub", True, known)) == {"p.a", "p.sub.c"}


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_cycle() -> None:
    assert cycles(module_graph()) == []


def test_no_package_cycle() -> None:
    graph = package_graph(module_graph())
    for source, target in KNOWN_PACKAGE_EDGES:
        assert target in graph[source], f"{source} no longer imports {target}: drop it from KNOWN_PACKAGE_EDGES"
        graph[source].discard(target)
    assert cycles(graph) == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_stay_inside_their_layer(package: str) -> None:
    graph = module_graph()
    crossing = {
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module.partition(".")[0] == package
        for target in targets
        if target.partition(".")[0] in FORBIDDEN[package]
    }
    assert crossing == set()
