"""The module graph: each layer imports only the layers below it, and no import cycle exists.

terminal (the foundation) < drivers < the apps and site tools (kiosk, rating_pad, central,
provisioning: none imports another) < careterm (the command line and the demo). bench and
tests sit outside and may import anything but each other (bench never imports tests).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

LAYER = {
    "terminal": 0,
    "drivers": 1,
    "kiosk": 2,
    "rating_pad": 2,
    "central": 2,
    "provisioning": 2,
    "careterm": 3,
}


def _modules() -> dict[str, Path]:
    out = {}
    for package in LAYER:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {owner(n) for n in _imports(path)}
        graph[name] = {t for t in targets if t and t != name}
    return graph


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = []
    for module, targets in _graph().items():
        mine = module.split(".")[0]
        for target in targets:
            theirs = target.split(".")[0]
            if theirs == mine:
                continue
            if LAYER[theirs] >= LAYER[mine]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_module_import_cycle() -> None:
    graph = _graph()
    # Tarjan's strongly connected components, iteratively (no recursion limit to meet).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    assert not cycles, cycles


def test_bench_never_imports_tests() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "bench").rglob("*.py")
        if any(n == "tests" or n.startswith("tests.") for n in _imports(p))
    ]
    assert not offenders, offenders
